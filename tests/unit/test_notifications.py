"""Subscription notifications: the endpoint's secret, what it queues (type and id, nothing of
the body), the queue's coalescing, the drain's settling and its one re-check per patient, and
the Subscriptions `subscribe` builds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from consent_gap.mappings import load_rules
from consent_gap.scan import notifications as notes
from consent_gap.scan.notifications import ANY, NotifyQueue, drain, patient_searches
from consent_gap.web import create_app
from consent_gap.web.config import WebConfig
from consent_gap.writeback import WritebackError
from consent_gap.writeback import subscriptions as subs

SECRET = "0123456789abcdef-secret"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'cp.db'}"


def client_for(db, secret=SECRET):
    app = create_app(config=WebConfig(secret_key="k", notify_secret=secret, database_url=db))
    return app.test_client()


def queued(db):
    queue = NotifyQueue(db)
    try:
        return [(q.resource_type, q.resource_id) for q in queue.pending()]
    finally:
        queue.close()


@pytest.mark.parametrize("headers", [{}, {"X-Consent-Gap-Secret": "wrong-secret-000000"},
                                     {"X-Consent-Gap-Secret": SECRET[:-1]},
                                     {"X-Consent-Gap-Secret": SECRET + "x"},
                                     {"Authorization": f"Bearer {SECRET}"}])
def test_a_missing_or_wrong_secret_is_401_and_queues_nothing(db, headers):
    response = client_for(db).put("/fhir-notify/AuditEvent/ae1", data="{}", headers=headers)
    assert response.status_code == 401
    assert queued(db) == []


def test_without_a_configured_secret_every_notification_is_refused(db):
    response = client_for(db, secret=None).put(
        "/fhir-notify/AuditEvent/ae1", headers={"X-Consent-Gap-Secret": ""})
    assert response.status_code == 401
    assert queued(db) == []


def test_hapi_payload_delivery_queues_the_type_and_id_of_the_path_only(db):
    forged = {"resourceType": "AuditEvent", "id": "other",
              "entity": [{"what": {"reference": "Patient/victim"}}]}
    response = client_for(db).put("/fhir-notify/AuditEvent/ae1", json=forged,
                                  headers={"X-Consent-Gap-Secret": SECRET})
    assert response.status_code == 204
    assert response.data == b""  # HAPI reads a body as a resource and retries on junk
    assert queued(db) == [("AuditEvent", "ae1")]


def test_a_burst_about_one_resource_is_one_row(db):
    app = client_for(db)
    for _ in range(50):
        assert app.put("/fhir-notify/Consent/c1",
                       headers={"X-Consent-Gap-Secret": SECRET}).status_code == 204
    assert queued(db) == [("Consent", "c1")]


@pytest.mark.parametrize("path", ["/fhir-notify/Patient/p1", "/fhir-notify/AuditEvent/a%20b",
                                  "/fhir-notify/*/*"])
def test_an_unwatched_type_or_a_bad_id_is_400(db, path):
    response = client_for(db).put(path, headers={"X-Consent-Gap-Secret": SECRET})
    assert response.status_code == 400
    assert queued(db) == []


def test_a_post_names_its_resource_or_queues_an_incremental_recheck(db):
    app = client_for(db)
    headers = {"X-Consent-Gap-Secret": SECRET}
    assert app.post("/fhir-notify", json={"resourceType": "Consent", "id": "c9"},
                    headers=headers).status_code == 204
    assert app.post("/fhir-notify", headers=headers).status_code == 204
    assert app.post("/fhir-notify", data=b"not json", headers=headers).status_code == 204
    assert queued(db) == [("Consent", "c9"), (ANY, ANY)]


def test_the_endpoint_needs_no_csrf_token_but_the_secret(db):
    response = client_for(db).post("/fhir-notify", headers={"X-Consent-Gap-Secret": SECRET,
                                                            "Origin": "https://evil.test"})
    assert response.status_code == 204


# ---- the drain ---------------------------------------------------------------------------------

class FakeServer:
    """Answers the patient searches: resource id -> patient id (None: no patient)."""

    def __init__(self, patients):
        self.patients = patients
        self.searches = []

    def search(self, rtype, params, page_size=None):
        self.searches.append((rtype, params))
        ids = dict(params)["_id"].split(",")
        for rid in ids:
            patient = self.patients.get((rtype, rid))
            yield {"resourceType": rtype, "id": rid}
            if patient:
                yield {"resourceType": "Patient", "id": patient}


class Runs:
    def __init__(self, status="ok"):
        self.calls = []
        self.status = status

    def __call__(self, **kw):
        self.calls.append(kw)
        return SimpleNamespace(status=self.status)


def fill(db, items, when):
    queue = NotifyQueue(db)
    for rtype, rid in items:
        queue.put(rtype, rid, now=when)
    return queue


def test_fifty_notifications_are_one_recheck_per_patient(db):
    items = [("AuditEvent", f"ae{i}") for i in range(40)] + [("Consent", f"c{i}")
                                                             for i in range(10)]
    queue = fill(db, items, T0)
    server = FakeServer({**{("AuditEvent", f"ae{i}"): f"p{i % 3}" for i in range(40)},
                         **{("Consent", f"c{i}"): "p1" for i in range(10)}})
    runs = Runs()
    result = drain(queue, server, runs, now=T0 + timedelta(seconds=3))
    assert runs.calls == [{"patients": ["p0", "p1", "p2"]}]
    assert result.notifications == 50 and result.scans == 1
    assert queue.pending() == []
    assert {rtype for rtype, _ in server.searches} == {"AuditEvent", "Consent"}
    assert len(server.searches) == 2  # ids in chunks of 50, one search per type


def test_a_burst_still_arriving_waits_until_it_settles(db):
    queue = fill(db, [("AuditEvent", "ae1")], T0)
    runs = Runs()
    server = FakeServer({("AuditEvent", "ae1"): "p1"})
    assert drain(queue, server, runs, now=T0 + timedelta(seconds=1)).scans == 0
    assert runs.calls == [] and len(queue.pending()) == 1
    # a steady trickle still drains after MAX_WAIT
    for second in range(1, 16):
        queue.put("AuditEvent", f"t{second}", now=T0 + timedelta(seconds=second))
    assert drain(queue, server, runs, now=T0 + timedelta(seconds=16)).scans == 1


def test_a_resource_the_server_does_not_tie_to_a_patient_rechecks_nobody(db):
    queue = fill(db, [("Provenance", "pr1")], T0)
    runs = Runs()
    result = drain(queue, FakeServer({}), runs, now=T0 + timedelta(seconds=5))
    assert runs.calls == [] and result.patients == []
    assert queue.pending() == []


def test_a_failed_recheck_keeps_the_rows_then_drops_them_after_max_attempts(db):
    queue = fill(db, [("AuditEvent", "ae1")], T0)
    server = FakeServer({("AuditEvent", "ae1"): "p1"})
    runs = Runs(status="failed")
    for attempt in range(1, notes.MAX_ATTEMPTS):
        drain(queue, server, runs, now=T0 + timedelta(seconds=5))
        assert queue.pending()[0].attempts == attempt
    drain(queue, server, runs, now=T0 + timedelta(seconds=5))
    assert queue.pending() == []


def test_an_id_less_notification_runs_the_incremental_scan_once(db):
    queue = fill(db, [(ANY, ANY), ("AuditEvent", "ae1")], T0)
    runs = Runs()
    result = drain(queue, FakeServer({}), runs, now=T0 + timedelta(seconds=5))
    assert runs.calls == [{}] and result.incremental


def test_patient_searches_follow_the_incremental_selectors_includes():
    searches = {s.type: dict(s.params) for s in patient_searches(
        [("AuditEvent", "a1"), ("Provenance", "pr1"), ("Communication", "cm1")])}
    assert searches["AuditEvent"]["_include"] == "AuditEvent:patient"
    assert searches["Provenance"]["_include:iterate"] == "Consent:patient"
    assert searches["Communication"]["_tag:not"].endswith("|consent-gap")  # our alerts: no loop
    assert all("_lastUpdated" not in params for params in searches.values())


# ---- the Subscriptions -------------------------------------------------------------------------

def test_the_four_subscriptions_validate_and_carry_the_secret_header():
    rules = load_rules(None)
    built = [subs.subscription(w, "https://app.test/fhir-notify", SECRET)
             for w in subs.wanted(rules)]
    assert [b["criteria"].split("?")[0] for b in built] == [
        "AuditEvent", "Communication", "Consent", "Provenance"]
    assert "subtype=http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle|disclose" \
        in built[0]["criteria"]
    assert "release-of-information" in built[1]["criteria"]
    assert "_tag:not=https://consent-gap.dev/fhir/tag|consent-gap" in built[3]["criteria"]
    for b in built:
        assert b["channel"] == {"type": "rest-hook", "endpoint": "https://app.test/fhir-notify",
                                "payload": "application/fhir+json",
                                "header": [f"X-Consent-Gap-Secret: {SECRET}"]}
    assert len({subs.tag_code(w.kind, "https://app.test/fhir-notify")
                for w in subs.wanted(rules)}) == 4
    assert subs.tag_code("consents", "https://a.test/n") != subs.tag_code("consents",
                                                                           "https://b.test/n")


def test_a_subscription_is_up_to_date_only_when_it_does_what_is_wanted():
    want = subs.wanted(load_rules(None))[0]
    desired = subs.subscription(want, "https://app.test/fhir-notify", SECRET)
    assert subs.up_to_date({**desired, "status": "active"}, desired)
    assert not subs.up_to_date({**desired, "status": "off"}, desired)
    other = subs.subscription(want, "https://app.test/fhir-notify", SECRET + "2")
    assert not subs.up_to_date({**other, "status": "active"}, desired)


def test_an_update_goes_with_if_match_and_a_create_with_if_none_exist():
    want = subs.wanted(load_rules(None))[2]
    desired = subs.subscription(want, "https://app.test/n", SECRET)
    create = subs.transaction(desired, endpoint="https://app.test/n", kind=want.kind,
                              device="Device/d1", timestamp="2026-12-01T00:00:00Z", current=None)
    assert create["entry"][0]["request"]["ifNoneExist"].startswith(
        "_tag=https://consent-gap.dev/fhir/subscription|consents-")
    target = create["entry"][1]["resource"]["target"]
    assert target == [{"reference": create["entry"][0]["fullUrl"]}]
    update = subs.transaction(desired, endpoint="https://app.test/n", kind=want.kind,
                              device="Device/d1", timestamp="2026-12-01T00:00:00Z",
                              current={"id": "s1", "meta": {"versionId": "3"}})
    assert update["entry"][0]["request"] == {"method": "PUT", "url": "Subscription/s1",
                                             "ifMatch": 'W/"3"'}


def test_an_invalid_subscription_is_never_built():
    with pytest.raises(WritebackError):
        subs.validate({"resourceType": "Subscription", "status": "nonsense"})


def test_removal_deletes_the_provenance_with_the_subscription():
    bundle = subs.removal("Subscription/s1", ["pv1", "pv2"])
    assert [e["request"] for e in bundle["entry"]] == [
        {"method": "DELETE", "url": "Provenance/pv1"},
        {"method": "DELETE", "url": "Provenance/pv2"},
        {"method": "DELETE", "url": "Subscription/s1"}]


def test_subscribe_without_a_secret_is_a_usage_error(monkeypatch, capsys):
    from consent_gap.cli import main

    monkeypatch.delenv("CONSENT_GAP_NOTIFY_SECRET", raising=False)
    monkeypatch.delenv("CONSENT_GAP_CONFIG", raising=False)
    assert main(["subscribe", "--fhir-base", "http://fhir.test/fhir"]) == 2
    assert "CONSENT_GAP_NOTIFY_SECRET" in capsys.readouterr().err
