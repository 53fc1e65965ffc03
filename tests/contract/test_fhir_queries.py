"""The fetch plans, over HTTP mocked with `responses`: what is asked, in how many requests."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from consent_gap.fhir import CapabilityIndex
from consent_gap.fhir.queries import (
    CONSENT_GAP_TAG,
    DISCLOSE_SUBTYPE,
    all_patient_ids,
    changed_patient_ids,
    chart_searches,
    fetch_chart,
    fetch_charts,
)
from fhirfakes import BASE, bundle


def R(rtype, rid, **kw):
    return {"resourceType": rtype, "id": rid, **kw}


def _query(call):
    return urlsplit(call.request.url).path.rsplit("/", 1)[-1], parse_qsl(
        urlsplit(call.request.url).query)


def test_batch_is_fetched_in_four_searches_each_resource_once(mocked, client):
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
    assert client.request_count == 4
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
        ("recipient", "Patient/p1,Patient/p2,RelatedPerson/rp1"),
        ("_tag:not", CONSENT_GAP_TAG), ("_count", "50")])
    # `|` in the subtype token goes percent-encoded (Tomcat rejects a raw one)
    assert "%7Cdisclose" in mocked.calls[2].request.url


def test_communication_about_is_reverse_included_where_the_server_declares_it(mocked, client):
    caps = CapabilityIndex({"resourceType": "CapabilityStatement", "rest": [{"resource": [
        {"type": "AuditEvent", "searchRevInclude": ["DocumentReference:related",
                                                    "Communication:about"]},
        {"type": "Communication", "searchParam": [{"name": "about"}]}]}]})
    for rtype in ("Patient", "Consent", "AuditEvent"):
        mocked.get(f"{BASE}/{rtype}", json=bundle([]))
    fetch_chart(client, "p1", caps=caps)
    assert client.request_count == 3
    assert ("_revinclude", "Communication:about") in _query(mocked.calls[2])[1]


def test_disclosures_can_be_narrowed_by_date_but_consents_never():
    plan = chart_searches(["p1"], disclosed_since="2026-01-01")
    by_type = {s.type: dict(s.params) for s in plan}
    assert by_type["AuditEvent"]["date"] == "ge2026-01-01"
    assert "date" not in by_type["Consent"] and "_lastUpdated" not in by_type["Consent"]
    assert chart_searches([]) == []


def test_long_batches_go_by_post(mocked, client):
    ids = [f"patient-{i:04d}" for i in range(200)]
    for rtype in ("Patient", "Consent", "AuditEvent", "Communication"):
        mocked.post(f"{BASE}/{rtype}/_search", json=bundle([]))
    fetch_charts(client, ids)
    assert [c.request.method for c in mocked.calls] == ["POST"] * 4


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
