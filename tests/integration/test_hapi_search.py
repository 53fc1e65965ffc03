"""HAPI FHIR answers the reads and searches the product makes (plugin/consent_gap/fetch_plan.py
and scan.py), on a small chart this module writes with ids unique to the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

DISCLOSE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle|disclose"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
TAG_SYSTEM = "https://consent-gap.dev/fhir/tag"
DEVICE_ID_SYSTEM = "https://consent-gap.dev/fhir/device"


def _ref(r: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"{r['resourceType']}/{r['id']}"}


def _audit(aid: str, patient: dict, recipient: dict, subtype: str, recorded: str) -> dict:
    return {
        "resourceType": "AuditEvent", "id": aid,
        "type": {"system": DCM, "code": "110106", "display": "Export"},
        "subtype": [{"system": LIFECYCLE, "code": subtype}],
        "action": "R", "recorded": recorded,
        "agent": [{"requestor": False, "who": _ref(recipient),
                   "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                        "code": "IRCP"}]}}],
        "source": {"observer": {"display": "integration test"}},
        "entity": [{"what": _ref(patient)}],
    }


def _consent(cid: str, patient: dict) -> dict:
    return {
        "resourceType": "Consent", "id": cid, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": _ref(patient), "dateTime": "2026-01-05",
    }


def build_chart(run: str) -> dict[str, dict[str, Any]]:
    """Two patients with Consents, a signature, disclosures, a note and notices."""
    c: dict[str, dict[str, Any]] = {}
    c["p1"] = {"resourceType": "Patient", "id": f"{run}-p1", "birthDate": "1990-01-01"}
    c["p2"] = {"resourceType": "Patient", "id": f"{run}-p2", "birthDate": "2012-01-01"}
    c["rp"] = {"resourceType": "RelatedPerson", "id": f"{run}-rp", "patient": _ref(c["p2"])}
    c["org"] = {"resourceType": "Organization", "id": f"{run}-police", "name": "Police"}
    c["c1"] = _consent(f"{run}-c1", c["p1"])
    c["c2"] = _consent(f"{run}-c2", c["p2"])
    c["sig"] = {
        "resourceType": "Provenance", "id": f"{run}-sig", "target": [_ref(c["c1"])],
        "recorded": "2026-01-05T10:00:00Z", "agent": [{"who": _ref(c["p1"])}],
        "signature": [{"type": [{"system": "urn:iso-astm:E1762-95:2013",
                                 "code": "1.2.840.10065.1.12.1.7"}],
                       "when": "2026-01-05T10:00:00Z", "who": _ref(c["p1"])}],
    }
    c["a1"] = _audit(f"{run}-a1", c["p1"], c["org"], "disclose", "2026-03-01T12:00:00Z")
    c["a2"] = _audit(f"{run}-a2", c["p1"], c["org"], "access", "2025-06-01T12:00:00Z")
    c["a3"] = _audit(f"{run}-a3", c["p2"], c["org"], "disclose", "2026-03-02T12:00:00Z")
    c["note"] = {
        "resourceType": "DocumentReference", "id": f"{run}-note", "status": "current",
        "subject": _ref(c["p1"]), "content": [{"attachment": {"contentType": "text/plain",
                                                              "data": "bm90ZQ=="}}],
        "context": {"related": [_ref(c["a1"])]},
    }
    c["alert"] = {
        "resourceType": "Communication", "id": f"{run}-alert", "status": "completed",
        "subject": _ref(c["p1"]), "recipient": [_ref(c["org"])],
        "meta": {"tag": [{"system": TAG_SYSTEM, "code": "consent-gap"}]},
    }
    c["notice"] = {
        "resourceType": "Communication", "id": f"{run}-notice", "status": "completed",
        "subject": _ref(c["p2"]), "recipient": [_ref(c["rp"])],
    }
    c["device"] = {
        "resourceType": "Device", "id": f"{run}-device",
        "identifier": [{"system": DEVICE_ID_SYSTEM, "value": f"{run}-app"}],
    }
    return c


@pytest.fixture(scope="module")
def chart(fhir, run_id) -> dict[str, Any]:
    """The chart, written in one transaction (client-assigned ids, PUT entries)."""
    before = (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="seconds")
    resources = build_chart(run_id)
    bundle = {
        "resourceType": "Bundle", "type": "transaction",
        "entry": [{"resource": r, "request": {"method": "PUT",
                                              "url": f"{r['resourceType']}/{r['id']}"}}
                  for r in resources.values()],
    }
    r = fhir.post("", bundle)
    assert r.status_code == 200, r.text[:1000]
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert all(s.startswith("201") for s in statuses), statuses
    return {"r": resources, "ref": {k: f"{v['resourceType']}/{v['id']}"
                                     for k, v in resources.items()}, "before": before}


@pytest.mark.parametrize("key", ["p1", "rp", "org", "c1", "sig", "a1", "note", "alert", "device"])
def test_read_each_resource_type(fhir, chart, key):
    r = fhir.get(chart["ref"][key])
    assert r.status_code == 200
    body = r.json()
    assert (body["resourceType"], body["id"]) == (chart["r"][key]["resourceType"],
                                                   chart["r"][key]["id"])
    assert body["meta"]["versionId"] == "1"


def test_consent_by_patient(fhir, chart):
    ref = chart["ref"]
    assert fhir.found("Consent", {"patient": ref["p1"]}) == {ref["c1"]}
    assert fhir.found("Consent", {"patient": f"{ref['p1']},{ref['p2']}"}) == {ref["c1"], ref["c2"]}


def test_consent_revinclude_signing_provenance(fhir, chart):
    ref = chart["ref"]
    bundle = fhir.search("Consent", [("patient", ref["p1"]), ("_revinclude", "Provenance:target")])
    assert fhir.ids(fhir.entries(bundle, "match")) == {ref["c1"]}
    assert fhir.ids(fhir.entries(bundle, "include")) == {ref["sig"]}


def test_audit_event_by_patient_subtype_and_date(fhir, chart):
    ref = chart["ref"]
    assert fhir.found("AuditEvent", {"patient": ref["p1"]}) == {ref["a1"], ref["a2"]}
    assert fhir.found("AuditEvent", {"patient": ref["p1"], "subtype": DISCLOSE}) == {ref["a1"]}
    both = f"{ref['p1']},{ref['p2']}"
    disclosures = fhir.found("AuditEvent", {"patient": both, "subtype": DISCLOSE})
    assert disclosures == {ref["a1"], ref["a3"]}
    p1 = ("patient", ref["p1"])
    assert fhir.found("AuditEvent", [p1, ("date", "ge2026-01-01")]) == {ref["a1"]}
    assert fhir.found("AuditEvent", [p1, ("date", "lt2026-01-01")]) == {ref["a2"]}


def test_audit_event_includes_entity_and_revincludes_notes(fhir, chart):
    """The product's disclosure search: the disclosed data and the notes come along."""
    ref = chart["ref"]
    bundle = fhir.search("AuditEvent", [
        ("patient", ref["p1"]), ("subtype", DISCLOSE),
        ("_include", "AuditEvent:entity"), ("_revinclude", "DocumentReference:related")])
    assert fhir.ids(fhir.entries(bundle, "match")) == {ref["a1"]}
    assert fhir.ids(fhir.entries(bundle, "include")) == {ref["p1"], ref["note"]}


def test_document_reference_by_related(fhir, chart):
    ref = chart["ref"]
    assert fhir.found("DocumentReference", {"related": ref["a1"]}) == {ref["note"]}
    assert fhir.found("DocumentReference", {"related": ref["a3"]}) == set()


def test_communication_by_patient_recipient_and_tag(fhir, chart):
    ref = chart["ref"]
    assert fhir.found("Communication", {"patient": ref["p1"]}) == {ref["alert"]}
    assert fhir.found("Communication", {"recipient": f"{ref['p2']},{ref['rp']}"}) == {ref["notice"]}
    tagged = f"{TAG_SYSTEM}|consent-gap"
    assert fhir.found("Communication", {"patient": ref["p1"], "_tag:not": tagged}) == set()
    assert fhir.found("Communication", {"patient": ref["p1"], "_tag": tagged}) == {ref["alert"]}


def test_provenance_by_target(fhir, chart):
    ref = chart["ref"]
    assert fhir.found("Provenance", {"target": ref["c1"]}) == {ref["sig"]}
    assert fhir.found("Provenance", {"target": ref["c2"]}) == set()


def test_patient_revinclude_related_person(fhir, chart):
    ref = chart["ref"]
    bundle = fhir.search("Patient", [("_id", f"{chart['r']['p1']['id']},{chart['r']['p2']['id']}"),
                                     ("_revinclude", "RelatedPerson:patient")])
    assert fhir.ids(fhir.entries(bundle, "match")) == {ref["p1"], ref["p2"]}
    assert fhir.ids(fhir.entries(bundle, "include")) == {ref["rp"]}


def test_last_updated_with_include_finds_changed_patients(fhir, chart):
    """The scan's change query: disclosures updated since a time, with their patients."""
    ref = chart["ref"]
    params = [("_lastUpdated", f"ge{chart['before']}"), ("subtype", DISCLOSE),
              ("_include", "AuditEvent:patient"), ("_count", "500")]
    bundle = fhir.search("AuditEvent", params)
    assert {ref["a1"], ref["a3"]} <= fhir.ids(fhir.entries(bundle, "match"))
    assert {ref["p1"], ref["p2"]} <= fhir.ids(fhir.entries(bundle, "include"))
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat(timespec="seconds")
    none = fhir.found("AuditEvent", [("_lastUpdated", f"ge{later}"), ("patient", ref["p1"])])
    assert none == set()


def test_provenance_include_iterate_reaches_the_patient(fhir, chart):
    ref = chart["ref"]
    bundle = fhir.search("Provenance", [
        ("target", ref["c1"]), ("_include", "Provenance:target:Consent"),
        ("_include:iterate", "Consent:patient")])
    assert fhir.ids(fhir.entries(bundle, "include")) == {ref["c1"], ref["p1"]}


def test_device_by_identifier(fhir, chart, run_id):
    assert fhir.found("Device", {"identifier": f"{DEVICE_ID_SYSTEM}|{run_id}-app"}) == {
        chart["ref"]["device"]}


def test_patient_everything(fhir, chart):
    """$everything returns the patient's compartment (across pages) and nobody else's."""
    ref = chart["ref"]
    got: set[str] = set()
    url: str | None = f"{ref['p1']}/$everything"
    for _ in range(20):
        if url is None:
            break
        r = fhir.get(url)
        assert r.status_code == 200, r.text[:500]
        got |= fhir.ids(fhir.entries(r.json()))
        url = next((link["url"] for link in r.json().get("link", [])
                    if link["relation"] == "next"), None)
    assert {ref["p1"], ref["c1"], ref["a1"], ref["a2"], ref["note"], ref["alert"]} <= got
    assert not {ref["p2"], ref["c2"], ref["a3"], ref["notice"]} & got


def test_capability_statement_declares_what_the_product_needs(fhir):
    """The product checks the CapabilityStatement before a scan; HAPI must declare these."""
    r = fhir.get("metadata")
    assert r.status_code == 200
    rest = r.json()["rest"][0]
    by_type = {res["type"]: res for res in rest["resource"]}
    needs = {
        "Consent": ({"patient", "_lastUpdated"}, {"Provenance:target"}),
        "AuditEvent": ({"patient", "subtype", "date", "_lastUpdated"},
                       {"DocumentReference:related"}),
        "DocumentReference": ({"related", "patient"}, set()),
        "Communication": ({"patient", "recipient"}, set()),
        "Provenance": ({"target"}, set()),
        "Device": ({"identifier"}, set()),
    }
    for rtype, (params, revincludes) in needs.items():
        declared = {p["name"] for p in by_type[rtype].get("searchParam", [])}
        assert params <= declared, (rtype, params - declared)
        assert revincludes <= set(by_type[rtype].get("searchRevInclude", [])), rtype
    assert "AuditEvent:entity" in by_type["AuditEvent"].get("searchInclude", [])
    operations = {op["name"] for op in by_type["Patient"].get("operation", [])}
    assert {"everything", "export"} <= operations
