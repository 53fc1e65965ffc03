"""The Bulk Data export client (fhir/bulk.py) over HTTP mocked with `responses`: kick-off with
`Prefer: respond-async`, polling that honours Retry-After (bounded) and reports X-Progress, the
manifest, NDJSON streamed with the token only when required and only on the server's origin,
errors, and the DELETE of a stopped job. Then the bulk scan's spool: each resource in the
chart of the patient the paging plan would put it in; the follow-ups of a Group export; the
look-ups of what the export cannot show."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest
import responses
from consent_gap.checkpoint import CheckpointStore
from consent_gap.domain import ClientNotice, Decision, Documentation, Finding
from consent_gap.fhir.auth import BearerAuth
from consent_gap.fhir.bulk import (
    BulkExport,
    BulkExportError,
    retry_after_seconds,
    updated_before,
)
from consent_gap.fhir.client import FhirClient
from consent_gap.fhir.errors import FhirHttpError
from consent_gap.scan import ScanOptions
from consent_gap.scan.bulk import (
    IN_EXPORT,
    INCLUDE_CAP,
    BulkScanner,
    Spool,
    _kept,
    group_followups,
    signature_searches,
)
from consent_gap.writeback import FINDING_SYSTEM, WriteContext, plan, planned_values, tasks

BASE = "https://fhir.test/r4"
STATUS = f"{BASE}/$export-poll-status?_jobId=j1"


def client(auth=None) -> FhirClient:
    return FhirClient(BASE, auth=auth, sleep=lambda s: None, retries=1)


def manifest(requires_token=True, url=f"{BASE}/Binary/f1") -> dict:
    return {"transactionTime": "2026-12-01T10:00:00Z", "request": f"{BASE}/$export",
            "requiresAccessToken": requires_token,
            "output": [{"type": "Consent", "url": url, "count": 2}], "error": []}


def kick(rsps, path="$export", status=202, location=STATUS):
    headers = {"Content-Location": location} if location else {}
    rsps.add(responses.GET, f"{BASE}/{path}", status=status, headers=headers)


@responses.activate
def test_kick_off_asks_respond_async_with_the_types_filter_and_since():
    kick(responses)
    export = BulkExport(client(), types=["Patient", "Consent"],
                        type_filters=["AuditEvent?subtype=x|disclose"],
                        since="2026-11-30T00:00:00Z")
    assert export.kick_off() == STATUS
    request = responses.calls[0].request
    assert request.headers["Prefer"] == "respond-async"
    assert request.headers["Accept"] == "application/fhir+json"
    query = responses.calls[0].request.params
    assert query["_type"] == "Patient,Consent"
    assert query["_typeFilter"] == "AuditEvent?subtype=x|disclose"
    assert query["_since"] == "2026-11-30T00:00:00Z"


@responses.activate
def test_a_group_export_goes_to_the_groups_operation():
    kick(responses, path="Group/g1/$export")
    BulkExport(client(), group="g1").kick_off()
    assert responses.calls[0].request.url.startswith(f"{BASE}/Group/g1/$export")


@pytest.mark.parametrize("status", [200, 400])
@responses.activate
def test_a_kick_off_that_is_not_202_is_an_error(status):
    kick(responses, status=status, location=None)
    with pytest.raises((BulkExportError, FhirHttpError)):
        BulkExport(client()).kick_off()


@responses.activate
def test_a_status_url_on_another_origin_is_refused():
    kick(responses, location="https://evil.test/status")
    with pytest.raises(BulkExportError, match="another origin"):
        BulkExport(client()).kick_off()


@responses.activate
def test_polling_honours_retry_after_within_bounds_and_reports_progress():
    kick(responses)
    responses.add(responses.GET, STATUS, status=202,
                  headers={"Retry-After": "7", "X-Progress": "Exported 10 of 50"})
    responses.add(responses.GET, STATUS, status=202, headers={"Retry-After": "3600"})
    responses.add(responses.GET, STATUS, status=202)
    responses.add(responses.GET, STATUS, json=manifest())
    waits, progress = [], []
    export = BulkExport(client(), sleep=waits.append, on_progress=progress.append,
                        max_wait=60)
    export.kick_off()
    result = export.wait()
    assert waits == [7.0, 60.0, 2.0]  # as asked; capped; the default without Retry-After
    assert progress == ["Exported 10 of 50"]
    assert result.transaction_time == "2026-12-01T10:00:00Z"
    assert [(o.type, o.count) for o in result.output] == [("Consent", 2)]


@responses.activate
def test_a_failed_export_raises_with_the_servers_outcome():
    kick(responses)
    responses.add(responses.GET, STATUS, status=500, json={
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": "job failed"}]})
    export = BulkExport(client())
    export.kick_off()
    with pytest.raises(FhirHttpError, match="job failed"):
        export.wait()


def test_retry_after_as_seconds_or_an_http_date():
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


NDJSON = b'{"resourceType":"Consent","id":"c1"}\n\n{"resourceType":"Consent","id":"c2"}\n'


@responses.activate
def test_files_stream_with_the_token_when_required():
    kick(responses)
    responses.add(responses.GET, STATUS, json=manifest(requires_token=True))
    responses.add(responses.GET, f"{BASE}/Binary/f1", body=NDJSON)
    export = BulkExport(client(BearerAuth("tok-123")))
    export.kick_off()
    files = export.wait().output
    assert [r["id"] for r in export.resources(files[0])] == ["c1", "c2"]
    download = responses.calls[-1].request
    assert download.headers["Authorization"] == "Bearer tok-123"
    assert download.headers["Accept"] == "application/fhir+ndjson"


@responses.activate
def test_files_that_need_no_token_never_get_it():
    kick(responses)
    responses.add(responses.GET, STATUS,
                  json=manifest(requires_token=False, url="https://bucket.test/f1"))
    responses.add(responses.GET, "https://bucket.test/f1", body=NDJSON)
    export = BulkExport(client(BearerAuth("tok-123")))
    export.kick_off()
    list(export.lines(export.wait().output[0]))
    assert "Authorization" not in responses.calls[-1].request.headers


@responses.activate
def test_a_token_is_never_sent_to_another_origin():
    kick(responses)
    responses.add(responses.GET, STATUS,
                  json=manifest(requires_token=True, url="https://bucket.test/f1"))
    export = BulkExport(client(BearerAuth("tok-123")))
    export.kick_off()
    with pytest.raises(BulkExportError, match="another origin"):
        list(export.lines(export.wait().output[0]))


@responses.activate
def test_leaving_the_block_early_deletes_the_job():
    kick(responses)
    responses.add(responses.GET, STATUS, status=202)
    responses.add(responses.DELETE, STATUS, status=202)

    def interrupt(_seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), BulkExport(client(), sleep=interrupt) as export:
        export.kick_off()
        export.wait()
    assert responses.calls[-1].request.method == "DELETE"
    assert responses.calls[-1].request.url == STATUS


def test_updated_before_since():
    old = {"meta": {"lastUpdated": "2026-12-01T09:59:59.999+00:00"}}
    new = {"meta": {"lastUpdated": "2026-12-01T10:00:00.000Z"}}
    assert updated_before(old, "2026-12-01T10:00:00Z")
    assert not updated_before(new, "2026-12-01T10:00:00Z")
    assert not updated_before({}, "2026-12-01T10:00:00Z")
    assert not updated_before(old, None)


# ---- the spool ---------------------------------------------------------------------------------

def _lines(*resources: dict) -> list[bytes]:
    return [json.dumps(r).encode() for r in resources]


def ref(target: str) -> dict:
    return {"reference": target}


def test_each_resource_goes_to_the_chart_the_paging_plan_would_put_it_in(tmp_path: Path):
    spool = Spool(tmp_path)
    spool.add(_lines({"resourceType": "Patient", "id": "p1"},
                     {"resourceType": "Patient", "id": "p2"},
                     {"resourceType": "RelatedPerson", "id": "rp1", "patient": ref("Patient/p1")}))
    spool.add(_lines(
        {"resourceType": "Consent", "id": "c1", "patient": ref("Patient/p1"),
         "performer": [ref("RelatedPerson/rp1")]},
        {"resourceType": "Provenance", "id": "pv1", "target": [ref("Consent/c1")]},
        {"resourceType": "AuditEvent", "id": "ae1",
         "entity": [{"what": ref("Patient/p1")}, {"what": ref("DocumentReference/shared")},
                    {"what": ref("Observation/o1")}],
         "agent": [{"who": ref("Organization/org1")}]},
        {"resourceType": "AuditEvent", "id": "ae2",
         "entity": [{"what": ref("Patient/p2")}, {"what": ref("DocumentReference/shared")}]},
        {"resourceType": "DocumentReference", "id": "shared"},
        {"resourceType": "DocumentReference", "id": "note1",
         "context": {"related": [ref("AuditEvent/ae1")]}},
        {"resourceType": "Communication", "id": "n1", "recipient": [ref("RelatedPerson/rp1")]},
        {"resourceType": "Provenance", "id": "ours", "target": [ref("Communication/alert")]},
    ))
    spool.assign()
    assert spool.patients() == ["p1", "p2"]
    p1 = {(r["resourceType"], r["id"]) for r in spool.chart(["p1"])}
    p2 = {(r["resourceType"], r["id"]) for r in spool.chart(["p2"])}
    assert p1 == {("Patient", "p1"), ("RelatedPerson", "rp1"), ("Consent", "c1"),
                  ("Provenance", "pv1"), ("AuditEvent", "ae1"),
                  ("DocumentReference", "shared"), ("DocumentReference", "note1"),
                  ("Communication", "n1")}
    assert p2 == {("Patient", "p2"), ("AuditEvent", "ae2"), ("DocumentReference", "shared")}
    both = spool.chart(["p1", "p2"])
    assert len(both) == len({(r["resourceType"], r["id"]) for r in both}) == 10
    spool.close()


def test_a_group_export_searches_what_the_patient_compartment_leaves_out():
    """By patient, so the searches need nothing from the export and run while the server
    builds it: the Consents with their signing Provenances (the paging plan's search), the
    paging plan's reverse includes of AuditEvent and Communication (chained), and the
    notices to the patients' RelatedPersons."""
    both = "Patient/p1,Patient/p2"
    assert [(s.type, s.params) for s in signature_searches(["p1", "p2"])] == [
        ("Consent", (("patient", both), ("_revinclude", "Provenance:target")))]
    searches = {(s.type, s.params) for s in group_followups(["p1", "p2"])}
    assert searches == {("DocumentReference", (("related:AuditEvent.patient", both),)),
                        ("DocumentReference", (("related:Communication.patient", both),)),
                        ("Communication", (("recipient:RelatedPerson.patient", both),))}


def test_group_followups_name_at_most_a_hundred_patients_a_search_and_fifty_for_signatures():
    patients = [f"p{i:03}" for i in range(250)]
    searches = group_followups(patients)
    assert len(searches) == 3 * 3
    named = [s.params[0][1].split(",") for s in searches if s.type == "Communication"]
    assert [len(n) for n in named] == [100, 100, 50]
    assert [p for chunk in named for p in chunk] == [f"Patient/{p}" for p in patients]
    signed = [s.params[0][1].split(",") for s in signature_searches(patients)]
    assert [len(n) for n in signed] == [50] * 5
    assert [p for chunk in signed for p in chunk] == [f"Patient/{p}" for p in patients]


def _signature_page(provenances: int, outcome: bool = False) -> dict:
    entries = [{"resource": {"resourceType": "Consent", "id": "c1"}}]
    entries += [{"resource": {"resourceType": "Provenance", "id": f"pv{i}",
                              "target": [{"reference": "Consent/c1"}]}}
                for i in range(provenances)]
    if outcome:
        entries.append({"resource": {"resourceType": "OperationOutcome", "issue": [
            {"severity": "warning", "code": "incomplete"}]}})
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


@pytest.mark.parametrize(("provenances", "outcome", "chained"), [
    (3, False, False), (3, True, True), (INCLUDE_CAP, False, True)])
@responses.activate
def test_signatures_come_with_the_consents_or_chained_when_they_may_be_cut(
        tmp_path: Path, provenances: int, outcome: bool, chained: bool):
    """Only the Provenances are kept (the Consents come with the export); when the server
    says it left includes out, or brought as many as it may cut at, the same patients'
    signatures are searched chained, which includes nothing."""
    responses.add(responses.GET, f"{BASE}/Consent", json=_signature_page(provenances, outcome))
    responses.add(responses.GET, f"{BASE}/Provenance", json={
        "resourceType": "Bundle", "type": "searchset",
        "entry": [{"resource": {"resourceType": "Provenance", "id": "chained"}}]})
    store = CheckpointStore(f"sqlite:///{tmp_path / 'state.db'}")
    scanner = BulkScanner(client(), store, ScanOptions(BASE, dry_run=True),
                          evaluator=lambda resources: None)
    search = signature_searches(["p1"])[0]
    got = scanner._signatures(search, threading.Event())
    store.close()
    if chained:
        assert [r["id"] for r in got] == ["chained"]
        asked = responses.calls[-1].request
        assert asked.url.startswith(f"{BASE}/Provenance?")
        assert "target%3AConsent.patient=Patient%2Fp1" in asked.url
    else:
        assert [r["id"] for r in got] == ["pv0", "pv1", "pv2"]
        assert len(responses.calls) == 1


def _finding(disclosure: str, patient: str | None) -> Finding:
    return Finding(disclosure=disclosure, patient=patient, occurred="2026-11-01T10:00:00Z",
                   recipient=None, purposes=(), decision=Decision.UNAUTHORIZED, basis=None,
                   reasons=("purpose-missing",), accountable=True,
                   documentation=Documentation.MISSING,
                   client_notice=ClientNotice.NOT_REQUIRED, explanation="")


def test_the_bulk_scan_looks_up_only_what_its_export_cannot_show(tmp_path: Path):
    """Our alerts and notes name the patient as subject, so the export holds those already
    written for the chart's patients: only Tasks, and the writes for a patient outside the
    chart, are looked up; what the chart has is present, as in the paging scan."""
    ours, theirs = _finding("AuditEvent/a1", "Patient/p1"), _finding("AuditEvent/a9", "Patient/p9")
    alert = next(v for t, v in planned_values(ours) if t == "Communication")
    chart = [{"resourceType": "Patient", "id": "p1"},
             {"resourceType": "Communication", "id": "c7", "sent": "2026-11-02T10:00:00Z",
              "identifier": [{"system": FINDING_SYSTEM, "value": alert}]},
             {"resourceType": "AuditEvent", "id": "a1"}]
    assert [r.get("id") for r in _kept(chart)] == ["p1", "c7"]
    store = CheckpointStore(f"sqlite:///{tmp_path / 'state.db'}")
    scanner = BulkScanner(client(), store, ScanOptions(BASE, dry_run=True),
                          evaluator=lambda resources: None)
    asked: dict[str, set[str]] = {}

    def search(rtype: str, params: list[tuple[str, str]]) -> list[dict]:
        tokens = dict(params)["identifier"].split(",")
        asked.setdefault(rtype, set()).update(t.split("|")[1] for t in tokens)
        return []

    scanner._search = search  # type: ignore[method-assign]
    # An incremental run's charts are fetched as the paging scan fetches them: all looked up.
    scanner._present([ours, theirs], _kept(chart), WriteContext())
    assert asked["Communication"] == {v for f in (ours, theirs) for t, v in planned_values(f)
                                      if t == "Communication"} - {alert}
    asked.clear()
    scanner._charts_from_export = True  # what _full sets: the charts come from the spool
    present = scanner._present([ours, theirs], _kept(chart), WriteContext())
    assert present == {alert: tasks.Present("Communication/c7", present[alert].written)}
    assert asked == {
        "Task": {v for f in (ours, theirs) for t, v in planned_values(f) if t == "Task"},
        "Communication": {v for t, v in planned_values(theirs) if t == "Communication"},
        "DocumentReference": {v for t, v in planned_values(theirs)
                              if t == "DocumentReference"}}
    store.close()


def test_our_writes_the_bulk_scan_does_not_look_up_name_their_patient_as_subject():
    """What `IN_EXPORT` rests on: every write of those types is in its patient's compartment
    (subject), so the patient's export holds it once written."""
    finding = dataclasses.replace(_finding("AuditEvent/a1", "Patient/p1"),
                                  client_notice=ClientNotice.MISSING)
    writes = plan(finding, WriteContext(privacy_officer="Practitioner/po")).writes
    exported = [w for w in writes if w.resource_type in IN_EXPORT]
    assert {w.resource_type for w in writes} - IN_EXPORT == {"Task"}
    assert len(exported) == 4  # the alert, the finding's note, the draft, the reminder
    assert all(w.resource["subject"] == {"reference": "Patient/p1"} for w in exported)
