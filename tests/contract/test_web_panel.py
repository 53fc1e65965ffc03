"""The panel, the JSON API and the actions against a fake EHR (HTTP mocked): what they show is
what `evaluate` decides on the same resources; actions write through conditional creates."""

from __future__ import annotations

import copy
import re

import pytest
import responses
from consent_gap import wording
from consent_gap.evaluate import evaluate
from consent_gap.smart import discovery
from consent_gap.web import create_app
from consent_gap.web.config import WebConfig
from markupsafe import escape as html_escape
from webfakes import ISS, FakeEhr, example_resources

APPS: list = []


@pytest.fixture(autouse=True)
def _fresh_discovery_cache():
    discovery.clear_cache()
    yield
    # Prefetches started at /callback run on: let them end inside this test's HTTP mock.
    while APPS:
        APPS.pop().extensions["consent_gap.prefetch"].wait_idle()


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def launch(mocked, example, patient, jurisdiction=None, resources=None, **ehr):
    resources = resources if resources is not None else example_resources(example)
    fake = FakeEhr(mocked, resources, patient, **ehr)
    app = create_app(config=WebConfig(
        allowed_issuers=(ISS,), secret_key="k", public_url="https://app.test",
        jurisdiction=jurisdiction, privacy_officer="Practitioner/po-1"))
    APPS.append(app)
    client = app.test_client()
    response = client.get(f"/launch?iss={ISS}&launch=L")
    state = re.search(r"state=([^&]+)", response.headers["Location"]).group(1)
    panel_url = client.get(f"/callback?code=c&state={state}").headers["Location"]
    return client, fake, panel_url, resources


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.mark.parametrize("example,patient,jurisdiction", [
    ("02-authorization-expired.json", "p-pnholt", None),
    ("06-duty-to-warn-ca.json", "p-dhpike", "US-CA"),
    ("07-duty-to-warn-tx.json", "p-lteague", "US-TX"),
])
def test_api_findings_is_what_evaluate_decides_on_the_same_data(mocked, example, patient,
                                                                 jurisdiction):
    client, _, _, resources = launch(mocked, example, patient, jurisdiction)
    response = client.get("/api/findings")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body == evaluate(resources, jurisdiction).to_json()
    assert list(body) == ["ruleset", "findings", "problems"]
    assert body["findings"], "the example has disclosures"


def test_panel_shows_each_finding_with_its_decision_and_counts(mocked):
    client, fake, panel_url, resources = launch(mocked, "02-authorization-expired.json",
                                                "p-pnholt")
    html = client.get(panel_url).get_data(as_text=True)
    report = evaluate(resources)
    for finding in report.findings:
        assert f'data-disclosure="{finding.disclosure}" data-decision="{finding.decision}"' in html
        for item in finding.decided_by:  # what decided it, in words, never the bare code
            assert f"<code>{item}</code>" not in html
            if not item.startswith("Consent/"):
                assert html_escape(wording.trace(item)) in html
    unauthorized = sum(f.decision == "unauthorized" for f in report.findings)
    assert f'data-decision="unauthorized">{unauthorized}</strong>' in html
    # the Consent checked is named by its text or signature date, never its id, in the list
    # of authorizations and the facts of the finding (the id stays in a data attribute)
    assert 'data-consent="Consent/c-pnholt-roi"' in html
    assert "<code>Consent/c-pnholt-roi</code>" not in html
    assert '<rect x="' in html  # its period on the timeline
    # the patient banner (need_patient_banner is true)
    assert '<strong class="banner-name">Priya Nandakumar-Holt</strong>' in html
    assert "born 1979-11-02" in html
    # reads only: nothing was written by showing the panel
    assert fake.transactions == []


def test_panel_hides_the_banner_when_the_ehr_shows_its_own(mocked):
    client, _, panel_url, _ = launch(mocked, "02-authorization-expired.json", "p-pnholt",
                                     need_patient_banner=False)
    assert 'class="banner"' not in client.get(panel_url).get_data(as_text=True)


def test_consent_text_with_script_renders_inert(mocked):
    resources = copy.deepcopy(example_resources("02-authorization-expired.json"))
    for resource in resources:
        if resource["resourceType"] == "Consent":
            resource["text"] = {"status": "generated",
                                "div": '<div xmlns="http://www.w3.org/1999/xhtml">Release to '
                                       '&lt;script&gt;alert(1)&lt;/script&gt; '
                                       '<script>alert(2)</script></div>'}
        if resource["resourceType"] == "Patient":
            resource["name"] = [{"text": "<img src=x onerror=alert(3)>"}]
    client, _, panel_url, _ = launch(mocked, None, "p-pnholt", resources=resources)
    html = client.get(panel_url).get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(3)&gt;" in html
    assert html.count("<script") == 1  # only the local panel.js


def test_draft_note_writes_a_preliminary_documentreference_once_confirmed(mocked):
    client, fake, panel_url, _ = launch(mocked, "07-duty-to-warn-tx.json", "p-lteague", "US-TX")
    html = client.get(panel_url).get_data(as_text=True)
    assert "Draft the documentation note" in html
    form = {"csrf_token": csrf_of(html), "disclosure": "AuditEvent/ae-lteague-1"}
    response = client.post(f"{panel_url}/draft-note", data=form,
                           headers={"Origin": "https://app.test"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("#finding-1")
    (bundle,) = fake.transactions
    docs = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference"]
    assert len(docs) == 1
    doc = docs[0]
    assert doc["resource"]["docStatus"] == "preliminary"
    assert doc["request"]["ifNoneExist"].startswith("identifier=")
    assert doc["resource"]["context"]["related"] == [{"reference": "AuditEvent/ae-lteague-1"}]
    assert any(e["resource"]["resourceType"] == "Provenance" for e in bundle["entry"])
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The draft documentation note was saved in the chart." in page
    # words on screen; the resource only in the link's href, which opens it in the EHR
    link = re.search(r'<a class="notice-link" href="([^"]+)"[^>]*>([^<]+)</a>', page)
    assert link, page
    assert re.search(r"/DocumentReference/[^/\s]+$", link.group(1)), link.group(1)
    assert link.group(2) == "Open the draft documentation note"
    notice = re.search(r'<div class="notice notice-ok"[^>]*>(.*?)</div>', page, re.S).group(1)
    assert "DocumentReference/" not in re.sub(r'href="[^"]*"', "", notice)
    # shown once
    assert "saved in the chart" not in client.get(panel_url).get_data(as_text=True)


def test_a_token_without_write_scopes_shows_no_action_and_writes_nothing(mocked):
    """The granted scope, not the requested one, decides: a read-only grant hides every
    button, and a hand-made POST of each action is refused without a request to the EHR."""
    client, fake, panel_url, _ = launch(mocked, "02-authorization-expired.json", "p-pnholt",
                                        scope="launch openid fhirUser patient/*.rs")
    html = client.get(panel_url).get_data(as_text=True)
    assert 'data-decision="unauthorized"' in html  # a finding that would offer actions
    assert 'class="actions"' not in html and "act-" not in html
    assert "does not let consent-gap write to the chart" in html
    disclosure = re.search(r'data-disclosure="([^"]+)"', html).group(1)
    with client.session_transaction() as session:  # no form on the page: no token in it
        session["csrf"] = token = "t" * 43
    for action in ("draft-note", "notify-officer", "client-notice"):
        response = client.post(f"{panel_url}/{action}",
                               data={"csrf_token": token, "disclosure": disclosure,
                                     "outcome": "sent"})
        assert response.status_code == 303
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert page.count("does not let consent-gap write") == 2  # the refusal, the note
    assert fake.transactions == []


def test_the_same_action_twice_sends_the_same_conditional_create(mocked):
    client, fake, panel_url, _ = launch(mocked, "07-duty-to-warn-tx.json", "p-lteague", "US-TX")
    token = csrf_of(client.get(panel_url).get_data(as_text=True))
    for _ in range(2):
        client.post(f"{panel_url}/draft-note",
                    data={"csrf_token": token, "disclosure": "AuditEvent/ae-lteague-1"})
    first, second = fake.transactions
    # the same conditional creates (the same keys and identifiers; the times written may
    # differ by a second between the two presses)
    def keys(bundle):
        return [(e["fullUrl"], e["request"], e["resource"].get("identifier"),
                 e["resource"].get("meta")) for e in bundle["entry"]]

    assert keys(first) == keys(second)


def test_notify_officer_writes_the_alert_and_finding_note(mocked):
    client, fake, panel_url, _ = launch(mocked, "02-authorization-expired.json", "p-pnholt")
    html = client.get(panel_url).get_data(as_text=True)
    disclosure = re.search(r'data-disclosure="([^"]+)" data-decision="unauthorized"', html).group(1)
    client.post(f"{panel_url}/notify-officer",
                data={"csrf_token": csrf_of(html), "disclosure": disclosure})
    (bundle,) = fake.transactions
    written = [e["resource"] for e in bundle["entry"]]
    alert = next(r for r in written if r["resourceType"] == "Communication")
    assert alert["priority"] == "urgent"
    assert {"reference": "Practitioner/po-1"} in alert["recipient"]
    assert any(r["resourceType"] == "DocumentReference" for r in written)


def test_client_notice_withheld_needs_a_reason_then_records_it(mocked):
    client, fake, panel_url, _ = launch(mocked, "02-authorization-expired.json", "p-pnholt")
    html = client.get(panel_url).get_data(as_text=True)
    disclosure = re.search(r'data-disclosure="([^"]+)"', html).group(1)
    token = csrf_of(html)
    client.post(f"{panel_url}/client-notice",
                data={"csrf_token": token, "disclosure": disclosure, "outcome": "withheld"})
    assert fake.transactions == []
    assert "Give the reason" in client.get(panel_url).get_data(as_text=True)
    client.post(f"{panel_url}/client-notice",
                data={"csrf_token": token, "disclosure": disclosure, "outcome": "withheld",
                      "reason": "Telling the client would endanger the victim."})
    (bundle,) = fake.transactions
    notice = next(e["resource"] for e in bundle["entry"]
                  if e["resource"]["resourceType"] == "Communication")
    assert notice["status"] == "not-done"
    assert notice["statusReason"]["text"].startswith("Telling the client")
    assert notice["recipient"] == [{"reference": "Patient/p-pnholt"}]
    assert notice["about"] == [{"reference": disclosure}]
    assert "tag" not in notice.get("meta", {})  # a person's record: CONTRACT 1.4 counts it


def test_action_on_a_disclosure_of_another_chart_writes_nothing(mocked):
    client, fake, panel_url, _ = launch(mocked, "07-duty-to-warn-tx.json", "p-lteague", "US-TX")
    token = csrf_of(client.get(panel_url).get_data(as_text=True))
    client.post(f"{panel_url}/draft-note",
                data={"csrf_token": token, "disclosure": "AuditEvent/someone-else"})
    assert fake.transactions == []
    assert "not in this client" in client.get(panel_url).get_data(as_text=True)


def test_a_launch_id_of_another_session_is_useless(mocked):
    client, _fake, panel_url, _ = launch(mocked, "07-duty-to-warn-tx.json", "p-lteague", "US-TX")
    other = client.application.test_client()
    assert other.get(panel_url).status_code == 401
    assert other.post(f"{panel_url}/draft-note", data={"disclosure": "x"}).status_code == 403


def test_first_panel_uses_the_chart_prefetched_at_callback_then_reads_afresh(mocked):
    resources = example_resources("02-authorization-expired.json")
    fake = FakeEhr(mocked, resources, "p-pnholt")
    app = create_app(config=WebConfig(allowed_issuers=(ISS,), secret_key="k",
                                      public_url="https://app.test"))
    APPS.append(app)
    client = app.test_client()
    state = re.search(r"state=([^&]+)",
                      client.get(f"/launch?iss={ISS}&launch=L").headers["Location"]).group(1)
    panel_url = client.get(f"/callback?code=c&state={state}").headers["Location"]
    lid = panel_url.rsplit("/", 1)[1]
    prefetched = app.extensions["consent_gap.prefetch"]._pending[lid][1]
    prefetched.result(timeout=10)  # the reads started at /callback
    reads_at_callback = len(fake.fhir_calls())
    assert reads_at_callback > 0
    first = client.get(panel_url).get_data(as_text=True)
    assert len(fake.fhir_calls()) == reads_at_callback  # nothing read again
    assert 'data-decision="unauthorized"' in first
    client.get(panel_url)
    assert len(fake.fhir_calls()) == 2 * reads_at_callback  # taken once: later pages read anew


@pytest.mark.parametrize(("scope", "with_task"), [
    ("launch openid fhirUser patient/*.rs patient/DocumentReference.c patient/Communication.c "
     "patient/Provenance.c patient/Device.c", False),
    ("launch openid fhirUser patient/*.rs patient/DocumentReference.c patient/Communication.c "
     "patient/Provenance.c patient/Device.c patient/Task.c", True),
])
def test_notify_officer_writes_the_task_when_the_ehr_lets_the_app_create_tasks(
        mocked, scope, with_task):
    """CONTRACT 7: the Task goes in the alert's transaction; without Task.c (DESIGN's panel
    scopes) the alert goes alone and the next scan writes the Task, dated at the alert."""
    client, fake, panel_url, _ = launch(mocked, "02-authorization-expired.json", "p-pnholt",
                                        scope=scope)
    html = client.get(panel_url).get_data(as_text=True)
    disclosure = re.search(r'data-disclosure="([^"]+)" data-decision="unauthorized"',
                           html).group(1)
    client.post(f"{panel_url}/notify-officer",
                data={"csrf_token": csrf_of(html), "disclosure": disclosure})
    (bundle,) = fake.transactions
    tasks = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"]
    assert len(tasks) == (1 if with_task else 0)
    if with_task:
        assert tasks[0]["focus"] == {"reference": disclosure}
        assert tasks[0]["owner"] == {"reference": "Practitioner/po-1"}


def test_head_of_the_panel_reads_nothing_from_the_ehr(mocked):
    client, fake, panel_url, _ = launch(mocked, "02-authorization-expired.json", "p-pnholt")
    client.get(panel_url)  # the prefetched chart is used up
    reads = len(fake.fhir_calls())
    response = client.head(panel_url)
    assert response.status_code == 200
    assert response.data == b""
    assert len(fake.fhir_calls()) == reads  # no chart read, nothing decided
    assert client.head(panel_url.rsplit("/", 1)[0] + "/unknown").status_code == 401


def test_consent_text_entities_are_escaped_once(mocked):
    resources = copy.deepcopy(example_resources("02-authorization-expired.json"))
    for resource in resources:
        if resource["resourceType"] == "Consent":
            resource["text"] = {"status": "generated",
                                "div": '<div xmlns="http://www.w3.org/1999/xhtml">Release to '
                                       'Smith &amp; Jones, &quot;counsel&quot; &#8212; '
                                       'records &lt; 2024</div>'}
    client, _, panel_url, _ = launch(mocked, None, "p-pnholt", resources=resources)
    html = client.get(panel_url).get_data(as_text=True)
    assert "Smith &amp; Jones" in html
    assert "&amp;amp;" not in html and "&amp;quot;" not in html and "&amp;lt;" not in html
    assert "\u2014 records &lt; 2024" in html
