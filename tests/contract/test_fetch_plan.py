"""The fetch plans, over HTTP mocked with `responses`: what is asked, in how many requests."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from consent_gap.fetch_plan import (
    ChartCodes,
    all_patient_ids,
    changed_patient_ids,
    chart_searches,
    default_codes,
    fetch_charts,
    fetch_patient_chart,
    prefetch_templates,
)
from consent_gap.fhir import CapabilityIndex, FhirHttpError
from fhirfakes import BASE, bundle, outcome
from responses import matchers

CODES = default_codes()
DISCLOSE_SUBTYPE = CODES.disclosure_subtype
CONSENT_GAP_TAG = CODES.own_tag
CHANNEL = CODES.channels


def R(rtype, rid, **kw):
    return {"resourceType": rtype, "id": rid, **kw}


def _query(call):
    return urlsplit(call.request.url).path.rsplit("/", 1)[-1], parse_qsl(
        urlsplit(call.request.url).query)


def test_batch_is_fetched_in_five_searches_each_resource_once(mocked, client):
    pat1, pat2, rp = R("Patient", "p1"), R("Patient", "p2"), R("RelatedPerson", "rp1")
    consent, prov = R("Consent", "c1"), R("Provenance", "pv1")
    ae, doc = R("AuditEvent", "ae1"), R("DocumentReference", "d1")
    note = R("Communication", "n1")
    mocked.get(f"{BASE}/Patient", json=bundle([pat1, pat2, rp]))
    mocked.get(f"{BASE}/Consent", json=bundle([consent, prov]))
    mocked.get(f"{BASE}/AuditEvent", json=bundle([ae, doc, pat1]))  # pat1 again, included
    mocked.get(f"{BASE}/Communication", json=bundle([note]))

    got = fetch_charts(client, ["p1", "p2"], page_size=50)

    assert sorted((r["resourceType"], r["id"]) for r in got) == sorted(
        (r["resourceType"], r["id"]) for r in [pat1, pat2, rp, consent, prov, ae, doc, note])
    assert client.request_count == 5
    asked = [_query(c) for c in mocked.calls]
    assert asked[0] == ("Patient", [("_id", "p1,p2"), ("_revinclude", "RelatedPerson:patient"),
                                    ("_count", "50")])
    assert asked[1] == ("Consent", [("patient", "Patient/p1,Patient/p2"),
                                    ("_revinclude", "Provenance:target"), ("_count", "50")])
    assert asked[2] == ("AuditEvent", [
        ("patient", "Patient/p1,Patient/p2"), ("subtype", DISCLOSE_SUBTYPE),
        ("_include", "AuditEvent:entity"), ("_revinclude", "DocumentReference:related"),
        ("_count", "50")])
    assert asked[3] == ("Communication", [
        ("patient", "Patient/p1,Patient/p2"), ("category", CHANNEL),
        ("_revinclude", "DocumentReference:related"), ("_count", "50")])
    assert asked[4] == ("Communication", [
        ("recipient", "Patient/p1,Patient/p2,RelatedPerson/rp1"),
        ("_tag:not", CONSENT_GAP_TAG), ("_count", "50")])
    # `|` in the subtype token goes percent-encoded (Tomcat rejects a raw one)
    assert "%7Cdisclose" in mocked.calls[2].request.url


def test_communication_about_is_reverse_included_where_the_server_declares_it(mocked, client):
    caps = CapabilityIndex({"resourceType": "CapabilityStatement", "rest": [{"resource": [
        {"type": "AuditEvent", "searchRevInclude": ["DocumentReference:related",
                                                    "Communication:about"]},
        {"type": "Communication", "searchParam": [{"name": "about"}]}]}]})
    for rtype in ("Patient", "Consent", "AuditEvent", "Communication"):
        mocked.get(f"{BASE}/{rtype}", json=bundle([]))
    fetch_charts(client, ["p1"], caps=caps)
    assert client.request_count == 4
    assert ("_revinclude", "Communication:about") in _query(mocked.calls[2])[1]
    assert ("_revinclude", "Communication:about") in _query(mocked.calls[3])[1]


def test_disclosures_can_be_narrowed_by_date_but_consents_never():
    plan = chart_searches(["p1"], disclosed_since="2026-01-01")
    by_type = {s.type: dict(s.params) for s in plan}
    assert by_type["AuditEvent"]["date"] == "ge2026-01-01"
    assert by_type["Communication"]["sent"] == "ge2026-01-01"
    assert "date" not in by_type["Consent"] and "_lastUpdated" not in by_type["Consent"]
    assert chart_searches([]) == []


def test_long_batches_go_by_post(mocked, client):
    ids = [f"patient-{i:04d}" for i in range(200)]
    for rtype in ("Patient", "Consent", "AuditEvent", "Communication"):
        mocked.post(f"{BASE}/{rtype}/_search", json=bundle([]))
    fetch_charts(client, ids)
    assert [c.request.method for c in mocked.calls] == ["POST"] * 5


def test_all_patient_ids_reads_ids_only(mocked, client):
    mocked.get(f"{BASE}/Patient", json=bundle([R("Patient", "b"), R("Patient", "a")]))
    assert all_patient_ids(client) == ["a", "b"]
    assert _query(mocked.calls[0]) == ("Patient", [("_elements", "id"), ("_count", "1000")])


def test_changed_patients_come_from_included_patients(mocked, client):
    mocked.get(f"{BASE}/AuditEvent", json=bundle([R("AuditEvent", "ae1"), R("Patient", "p2")]))
    mocked.get(f"{BASE}/Consent", json=bundle([R("Consent", "c1"), R("Patient", "p1")]))
    mocked.get(f"{BASE}/Provenance", json=bundle([R("Provenance", "v"), R("Consent", "c9"),
                                                  R("Patient", "p3")]))
    mocked.get(f"{BASE}/DocumentReference", json=bundle([]))
    mocked.get(f"{BASE}/Communication", json=bundle([R("Patient", "p2")]))
    assert changed_patient_ids(client, "2026-11-28T00:00:00Z") == ["p1", "p2", "p3"]
    asked = dict(_query(c) for c in mocked.calls)
    assert ("_lastUpdated", "ge2026-11-28T00:00:00Z") in asked["Consent"]
    assert ("_include:iterate", "Consent:patient") in asked["Provenance"]
    assert ("_tag:not", CONSENT_GAP_TAG) in asked["DocumentReference"]


# -- completeness: what the server left out of its includes is fetched afterwards ------------

def _ref(text):
    return {"reference": text}


def _disclosure(aid, *entities, agents=()):
    return R("AuditEvent", aid, entity=[{"what": _ref(e)} for e in entities],
             agent=[{"who": _ref(a)} for a in agents])


def _q(**params):
    return [matchers.query_param_matcher(params)]


def _batch(mocked, audit, consent=(), notices=(), disclosed=()):
    """The five batch searches for p1, answering `audit` for the AuditEvent search,
    `disclosed` for the disclosure Communications and `notices` for the notice search."""
    mocked.get(f"{BASE}/Patient", json=bundle([R("Patient", "p1")]))
    mocked.get(f"{BASE}/Consent", json=bundle(list(consent)))
    mocked.get(f"{BASE}/AuditEvent", json=bundle(audit))
    mocked.get(f"{BASE}/Communication", json=bundle(list(disclosed)),
               match=[matchers.query_param_matcher({"category": CHANNEL}, strict_match=False)])
    mocked.get(f"{BASE}/Communication", json=bundle(list(notices)),
               match=[matchers.query_param_matcher({"_tag:not": CONSENT_GAP_TAG},
                                                   strict_match=False)])


def _keys(resources):
    return {(r["resourceType"], r["id"]) for r in resources}


def test_nothing_missing_means_no_follow_up_but_the_recipients_names(mocked, client):
    ae = _disclosure("ae1", "Patient/p1", "DocumentReference/d1", "Observation/o1",
                     agents=["Practitioner/dr1", "Organization/org1", "Device/dev1"])
    _batch(mocked, [ae, R("DocumentReference", "d1"), R("Observation", "o1")])
    mocked.get(f"{BASE}/Organization", json=bundle([R("Organization", "org1", name="Police")]),
               match=_q(_id="org1", _count="50"))
    mocked.get(f"{BASE}/Practitioner", json=bundle([R("Practitioner", "dr1")]),
               match=_q(_id="dr1", _count="50"))
    got = fetch_charts(client, ["p1"], page_size=50)
    # the engine reads Organizations and Practitioners by reference only: they are fetched
    # once per type for the batch, only so that the alerts and notes name the recipient;
    # the app's Device is never fetched
    assert client.request_count == 7
    assert {("Observation", "o1"), ("Organization", "org1"), ("Practitioner", "dr1")} <= \
        _keys(got)
    assert ("Device", "dev1") not in _keys(got)


def test_recipients_are_named_in_one_search_per_type_and_a_role_in_two_hops(mocked, client):
    one = _disclosure("ae1", "Patient/p1", "DocumentReference/d1",
                      agents=["Organization/o1", "PractitionerRole/r1"])
    two = _disclosure("ae2", "Patient/p1", "DocumentReference/d1", agents=["Organization/o2"])
    _batch(mocked, [one, two, R("DocumentReference", "d1")])
    mocked.get(f"{BASE}/Organization", json=bundle([R("Organization", "o1"),
                                                    R("Organization", "o2")]),
               match=_q(_id="o1,o2", _count="50"))
    role = R("PractitionerRole", "r1", practitioner=_ref("Practitioner/x1"))
    mocked.get(f"{BASE}/PractitionerRole", json=bundle([role]),
               match=_q(_id="r1", _count="50"))
    mocked.get(f"{BASE}/Practitioner", json=bundle([R("Practitioner", "x1")]),
               match=_q(_id="x1", _count="50"))
    got = fetch_charts(client, ["p1"], page_size=50)
    assert {("Organization", "o1"), ("Organization", "o2"), ("PractitionerRole", "r1"),
            ("Practitioner", "x1")} <= _keys(got)
    assert client.request_count == 5 + 3  # never one request per disclosure


def test_absent_recipient_is_fetched_by_id_in_one_follow_up(mocked, client):
    ae = _disclosure("ae1", "Patient/p1", "DocumentReference/d1",
                     agents=["Practitioner/dr1", "RelatedPerson/rp9"])
    _batch(mocked, [ae, R("DocumentReference", "d1")])
    mocked.get(f"{BASE}/RelatedPerson", json=bundle([R("RelatedPerson", "rp9")]),
               match=_q(_id="rp9", _count="50"))
    mocked.get(f"{BASE}/Practitioner", json=bundle([R("Practitioner", "dr1")]),
               match=_q(_id="dr1", _count="50"))
    got = fetch_charts(client, ["p1"], page_size=50)
    assert ("RelatedPerson", "rp9") in _keys(got)
    # 4 searches + 1 by _id + the notice search (+ the Practitioner, to name it, last); the
    # recipient is not an `_include`d entity, so nothing says the server dropped includes and
    # no reverse search follows
    assert client.request_count == 7
    assert _query(mocked.calls[4]) == ("RelatedPerson", [("_id", "rp9"), ("_count", "50")])
    # the notice search, run after the follow-up, covers the recipient found late
    assert ("recipient", "Patient/p1,RelatedPerson/rp9") in _query(mocked.calls[5])[1]


def test_dropped_include_is_fetched_and_reverse_includes_searched_again(mocked, client):
    """HAPI's include cap: the page came back without d2 (and, as HAPI spends its budget on
    reverse includes first, without the note n2 that documents ae2)."""
    ae1 = _disclosure("ae1", "Patient/p1", "DocumentReference/d1")
    ae2 = _disclosure("ae2", "Patient/p1", "DocumentReference/d2")
    _batch(mocked, [ae1, ae2, R("DocumentReference", "d1"), R("DocumentReference", "n1")])
    mocked.get(f"{BASE}/DocumentReference", json=bundle([R("DocumentReference", "d2")]),
               match=_q(_id="d2", _count="50"))
    mocked.get(f"{BASE}/DocumentReference",
               json=bundle([R("DocumentReference", "n1"), R("DocumentReference", "n2")]),
               match=_q(related="AuditEvent/ae1,AuditEvent/ae2", _count="50"))
    got = fetch_charts(client, ["p1"], page_size=50)
    assert {("DocumentReference", d) for d in ("d1", "d2", "n1", "n2")} <= _keys(got)
    assert len(got) == len(_keys(got))  # each once
    assert client.request_count == 7  # 5 searches + 1 by _id + 1 reverse search


def test_refused_follow_up_leaves_the_resource_out(mocked, client):
    ae = _disclosure("ae1", "Patient/p1", "Observation/o9", agents=["RelatedPerson/rp9"])
    note = R("Communication", "n1", recipient=[_ref("RelatedPerson/rp9")])
    _batch(mocked, [ae], notices=[note])
    mocked.get(f"{BASE}/Observation", status=403, json=outcome("forbidden"))
    mocked.get(f"{BASE}/RelatedPerson", status=404, json=outcome("gone"))
    got = fetch_charts(client, ["p1"], page_size=50)
    assert _keys(got) == {("Patient", "p1"), ("AuditEvent", "ae1"), ("Communication", "n1")}
    # each absent resource is asked for once, even when the notice names it again
    assert client.request_count == 7


def test_follow_up_ids_go_in_chunks(mocked, client):
    ids = [f"o{i:03d}" for i in range(120)]
    _batch(mocked, [_disclosure("ae1", "Patient/p1", *(f"Observation/{i}" for i in ids))])
    for chunk in (ids[:50], ids[50:100], ids[100:]):
        mocked.get(f"{BASE}/Observation", json=bundle([R("Observation", i) for i in chunk]),
                   match=_q(_id=",".join(chunk), _count="50"))
    mocked.get(f"{BASE}/DocumentReference", json=bundle([]),
               match=_q(related="AuditEvent/ae1", _count="50"))
    got = fetch_charts(client, ["p1"], page_size=50)
    assert {("Observation", i) for i in ids} <= _keys(got)
    asked = [dict(_query(c)[1])["_id"].count(",") + 1 for c in mocked.calls
             if _query(c)[0] == "Observation"]
    assert asked == [50, 50, 20]
    assert client.request_count == 5 + 3 + 1  # searches, _id chunks, one reverse search


def test_server_saying_incomplete_triggers_the_reverse_search(mocked, client):
    consents = [R("Consent", f"c{i}") for i in range(3)]
    warning = {"resourceType": "OperationOutcome", "id": "w", "issue": [
        {"severity": "warning", "code": "incomplete",
         "diagnostics": "Include result was truncated"}]}
    _batch(mocked, [], consent=[*consents, R("Provenance", "pv0"), warning])
    mocked.get(f"{BASE}/Provenance", json=bundle([R("Provenance", "pv0"), R("Provenance", "pv2")]),
               match=_q(target="Consent/c0,Consent/c1,Consent/c2", _count="50"))
    got = fetch_charts(client, ["p1"], page_size=50)
    assert {("Provenance", "pv0"), ("Provenance", "pv2")} <= _keys(got)
    assert not any(r["resourceType"] == "OperationOutcome" for r in got)
    assert client.request_count == 6


def test_reverse_search_refused_fails_the_batch(mocked, client):
    """A note or signature left out cannot be reported as unresolved: no silent decision."""
    warning = {"resourceType": "OperationOutcome", "id": "w",
               "issue": [{"severity": "warning", "code": "incomplete"}]}
    _batch(mocked, [], consent=[R("Consent", "c1"), warning])
    mocked.get(f"{BASE}/Provenance", status=403, json=outcome("forbidden"))
    with pytest.raises(FhirHttpError):
        fetch_charts(client, ["p1"], page_size=50)


def test_versioned_references_and_late_notice_recipients_are_followed_up(mocked, client):
    ae = _disclosure("ae1", "Patient/p1", "DocumentReference/d2/_history/3")
    note = R("Communication", "n1", recipient=[_ref("Patient/p1"), _ref("RelatedPerson/rp7")])
    _batch(mocked, [ae], notices=[note])
    mocked.get(f"{BASE}/DocumentReference", json=bundle([R("DocumentReference", "d2")]),
               match=_q(_id="d2", _count="50"))
    mocked.get(f"{BASE}/DocumentReference", json=bundle([]),
               match=_q(related="AuditEvent/ae1", _count="50"))
    mocked.get(f"{BASE}/RelatedPerson", json=bundle([R("RelatedPerson", "rp7")]),
               match=_q(_id="rp7", _count="50"))
    got = fetch_charts(client, ["p1"], page_size=50)
    assert {("DocumentReference", "d2"), ("RelatedPerson", "rp7")} <= _keys(got)
    assert [_query(c)[0] for c in mocked.calls] == [
        "Patient", "Consent", "AuditEvent", "Communication", "DocumentReference",
        "DocumentReference", "Communication", "RelatedPerson"]


# -- disclosures sent as Communications (CONTRACT 1.1) --------------------------------------

def test_a_disclosure_communication_brings_what_it_sent_and_its_legal_instrument(mocked, client):
    letter = R("Communication", "c1", subject=_ref("Patient/p1"),
               recipient=[_ref("Organization/law-1")], basedOn=[_ref("DocumentReference/sub-1")],
               payload=[{"contentReference": _ref("DocumentReference/d7")}])
    _batch(mocked, [], disclosed=[letter, R("DocumentReference", "note-c1")])
    mocked.get(f"{BASE}/DocumentReference", json=bundle([R("DocumentReference", "d7"),
                                                         R("DocumentReference", "sub-1")]),
               match=_q(_id="d7,sub-1", _count="50"))
    mocked.get(f"{BASE}/Organization", json=bundle([R("Organization", "law-1")]),
               match=_q(_id="law-1", _count="50"))
    got = fetch_charts(client, ["p1"], page_size=50)
    assert {("Communication", "c1"), ("DocumentReference", "note-c1"),
            ("DocumentReference", "d7"), ("DocumentReference", "sub-1"),
            ("Organization", "law-1")} <= _keys(got)
    # five searches, one follow-up, and the recipient, fetched only to be named
    assert client.request_count == 7


def test_the_channels_searched_are_the_ones_the_rules_name(tmp_path):
    codes = ChartCodes("a|1", "b|2", "https://clinic.example/ch|fax,https://clinic.example/ch|letter",
                       "t|x")
    comm = next(s for s in chart_searches(["p1"], codes) if s.type == "Communication")
    assert ("category", "https://clinic.example/ch|fax,https://clinic.example/ch|letter") \
        in comm.params
    no_channels = ChartCodes("a|1", "b|2", "", "t|x")
    assert [s.type for s in chart_searches(["p1"], no_channels)] == [
        "Patient", "Consent", "AuditEvent"]


def test_the_default_codes_come_from_the_shipped_rules():
    from consent_gap.mappings import load_rules

    rules = load_rules()
    assert default_codes() == ChartCodes.from_rules(rules)
    assert "iso-21089-lifecycle|disclose" in default_codes().disclosure_subtype
    assert "disclosure-channel|release-of-information" in default_codes().channels


def test_the_card_templates_are_the_one_patient_plan_with_the_rules_codes():
    templates = prefetch_templates(ChartCodes("t|1", "s|2", "", "o|3"))
    assert templates["disclosures"].startswith("AuditEvent?patient={{context.patientId}}&type=t|1")
    assert "subtype=s|2" in templates["disclosures"]


def test_one_patient_chart_names_the_patient_in_every_search(mocked, client):
    mocked.get(f"{BASE}/Patient/p1", json=R("Patient", "p1"))
    letter = R("Communication", "c1", payload=[{"contentReference": _ref("Observation/o1")}])
    for rtype, found in (("Consent", [R("Consent", "k1")]), ("AuditEvent", []),
                         ("DocumentReference", []), ("RelatedPerson", [])):
        mocked.get(f"{BASE}/{rtype}", json=bundle(found))
    mocked.get(f"{BASE}/Communication", json=bundle([letter]))
    mocked.get(f"{BASE}/Provenance", json=bundle([R("Provenance", "v1")]))
    mocked.get(f"{BASE}/Observation", json=bundle([R("Observation", "o1")]))
    got = fetch_patient_chart(client, "p1", workers=2)
    assert {("Consent", "k1"), ("Provenance", "v1"), ("Observation", "o1")} <= _keys(got)
    for call in mocked.calls:
        rtype, params = _query(call)
        if rtype == "Provenance":
            assert ("target", "Consent/k1") in params
        elif rtype != "p1":
            assert any(v.endswith("Patient/p1") for k, v in params
                       if k in ("patient", "recipient")), (rtype, params)
