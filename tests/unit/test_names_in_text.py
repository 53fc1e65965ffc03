"""Names and words, never ids, in every human text the product writes (issue 12): the
explanation, the alert, the finding note, the documentation draft, the reminder, the Task's
description. The ids stay where the contract puts them: the finding's JSON fields and the
written resources' structured elements (`about`, `context.related`, `focus`, `subject`)."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from consent_gap.domain import Authorization, DataItem, Decision
from consent_gap.evaluate import evaluate, evaluator
from consent_gap.wording import names as named
from consent_gap.writeback import Kind, WriteContext, plan
from support.fhir import (
    consent,
    disclosure,
    document,
    instrument,
    provision,
    related_person,
    world,
)

#: A resource id in text: "Organization/org-rcpt", "Consent/c1", "AuditEvent/ae1" ...
ID_IN_TEXT = re.compile(r"\b(Organization|Practitioner|PractitionerRole|RelatedPerson|Consent|"
                        r"AuditEvent|Communication|DocumentReference|Patient|Observation)/\S")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _auth(ref: str, signed: str | None) -> Authorization:
    return Authorization(reference=ref, patient="Patient/p1", status="active",
                         signed_at=_when(signed) if signed else None)


def test_consents_are_named_by_kind_and_day_and_told_apart_by_time():
    names = named.consents([
        _auth("Consent/a", "2025-01-02T10:00:00Z"), _auth("Consent/b", "2025-01-02T15:30:00Z"),
        _auth("Consent/c", "2024-03-01T00:00:00Z"), _auth("Consent/d", None),
        _auth("Consent/r", "2024-03-01T08:00:00Z")],
        is_authorization=lambda a: a.reference != "Consent/r")
    assert names == {
        "Consent/a": "the authorization signed on 2025-01-02 at 10:00 UTC",
        "Consent/b": "the authorization signed on 2025-01-02 at 15:30 UTC",
        "Consent/c": "the authorization signed on 2024-03-01",
        "Consent/d": "an undated authorization",
        "Consent/r": "the consent form signed on 2024-03-01",  # a restriction: no authorization
    }
    assert named.consent({}, "Consent/zz") == "an authorization on file"


@pytest.mark.parametrize(("item", "words"), [
    (DataItem("DocumentReference/d1", "DocumentReference", kind="Progress note",
              title="Session 3", resolved=True), "Progress note: Session 3"),
    (DataItem("Observation/o1", "Observation", resolved=True), "Observation"),
    (DataItem(None, None, labels=(("http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                   "PSYTHPN"),)), "Psychotherapy notes"),
    (DataItem("DocumentReference/x", "DocumentReference",
              labels=(("http://terminology.hl7.org/CodeSystem/v3-ActCode", "PSYTHPN"),)),
     "Psychotherapy notes"),
])
def test_a_record_is_worded_without_its_id(item, words):
    assert named.record_words(item) == words


def test_the_explanation_names_each_consent_checked_never_its_id():
    expired = consent(prov=provision(end="2025-03-01T00:00:00Z"))
    finding = evaluate(world(expired, disclosure())).findings[0]
    assert finding.decision is Decision.UNAUTHORIZED
    assert finding.basis is None and finding.consents_checked[0][0] == "Consent/c1"
    assert ("the authorization signed on 2025-01-10 (the authorization had expired)"
            in finding.explanation)
    assert not ID_IN_TEXT.search(finding.explanation), finding.explanation


def test_the_explanation_of_an_authorized_disclosure_names_the_authorization():
    finding = evaluate(world(consent(), disclosure())).findings[0]
    assert finding.decision is Decision.AUTHORIZED
    assert finding.basis == "Consent/c1"  # the JSON keeps the id (CONTRACT 2)
    assert finding.to_json()["basis"] == "Consent/c1"
    assert "covered by the client's authorization signed on 2025-01-10" in finding.explanation
    assert not ID_IN_TEXT.search(finding.explanation)


def _texts(writes) -> dict[Kind, str]:
    """The human text of each write: a Communication's message, a document's content, a
    Task's description."""
    out = {}
    for write in writes:
        resource = write.resource
        if resource["resourceType"] == "Communication":
            out[write.kind] = resource["payload"][0]["contentString"]
        elif resource["resourceType"] == "DocumentReference":
            out[write.kind] = base64.b64decode(
                resource["content"][0]["attachment"]["data"]).decode()
        elif resource["resourceType"] == "Task":
            out[write.kind] = resource["description"]
    return out


def _flagged_chart():
    """Two disclosures to a named Organization, with an expired authorization on file: one
    at the client's request (unauthorized: alert, note, Task) and one under a court order
    (required: a documentation draft and a reminder)."""
    court = instrument("DocumentReference/order-1", "court-order")
    court["content"][0]["attachment"]["title"] = "Order of the Alden Superior Court"
    expired = consent(prov=provision(end="2025-03-01T00:00:00Z"))
    return world(expired, court,
                 disclosure("AuditEvent/ae1"),
                 disclosure("AuditEvent/ae2", purposes=("HLEGAL",),
                            instruments=("DocumentReference/order-1",)))


def test_the_scans_evaluator_names_what_its_alerts_and_notes_mention():
    resources = _flagged_chart()
    plain = evaluator()(resources)
    assert plain.names == {}  # the CLI's evaluate pays for no names
    report = evaluator(named=True)(resources)
    assert report.names["Organization/org-rcpt"] == "Recipient"
    assert report.names["Consent/c1"] == "the authorization signed on 2025-01-10"
    assert report.names["DocumentReference/order-1"] == \
        "Document: Order of the Alden Superior Court"
    assert report.names["DocumentReference/d1"].startswith("Document")


def test_no_human_text_written_names_a_resource_by_id():
    resources = _flagged_chart()
    report = evaluator(named=True)(resources)
    context = WriteContext(privacy_officer="Practitioner/po-1", organization="Organization/o",
                           now=NOW, names=report.names)
    kinds_seen: set[Kind] = set()
    for finding in report.findings:
        writes = plan(finding, context).writes
        assert writes, finding.decision
        for kind, text in _texts(writes).items():
            kinds_seen.add(kind)
            assert not ID_IN_TEXT.search(text), (kind, text)
            assert "Recipient" in text  # the recipient by its name
    assert {Kind.ALERT, Kind.FINDING_NOTE, Kind.TASK, Kind.DOCUMENTATION_DRAFT} <= kinds_seen
    alert = next(w for f in report.findings for w in plan(f, context).writes
                 if w.kind is Kind.ALERT)
    # the ids are in the structured elements
    assert alert.resource["about"][0]["reference"].startswith("AuditEvent/")
    assert "to Recipient on 2025-06-01" in alert.resource["payload"][0]["contentString"]


def test_the_patient_as_recipient_is_the_client_never_the_name():
    # psychotherapy notes to the client: the access row becomes review (CONTRACT 1.3)
    notes = document("DocumentReference/pn", labels=("PSYTHPN",))
    resources = world(notes, disclosure(recipient="Patient/p1", data=("DocumentReference/pn",)))
    resources[0]["name"] = [{"family": "Doe", "given": ["Jane"]}]
    report = evaluator(named=True)(resources)
    finding = report.findings[0]
    assert finding.decision is Decision.REVIEW
    assert report.names.get(finding.recipient) == "the client"
    texts = _texts(plan(finding, WriteContext(now=NOW, names=report.names)).writes)
    assert texts and all("Doe" not in text and "Jane" not in text for text in texts.values())


def test_a_representative_recipient_is_named():
    rp = related_person("RelatedPerson/rp1", relationship="FRND")
    rp["name"] = [{"given": ["Sam"], "family": "Lee"}]
    report = evaluator(named=True)(world(rp, disclosure(recipient="RelatedPerson/rp1",
                                                        purposes=("FAMRQT",))))
    finding = report.findings[0]
    assert finding.decision is Decision.REVIEW
    alert = next(w for w in plan(finding, WriteContext(now=NOW, names=report.names)).writes
                 if w.kind is Kind.ALERT)
    assert "to Sam Lee on" in alert.resource["payload"][0]["contentString"]


def test_identifiers_do_not_depend_on_the_names():
    """The written resources are keyed by finding, not by text: a rerun with names (or with
    other names) matches what a run without them wrote, so it writes nothing."""
    report = evaluator(named=True)(_flagged_chart())
    for finding in report.findings:
        bare = plan(finding, WriteContext(now=NOW))
        worded = plan(finding, WriteContext(now=NOW, names=report.names))
        assert [w.value for w in bare.writes] == [w.value for w in worded.writes]
        assert bare.provenance_key == worded.provenance_key
        other = plan(finding, replace(WriteContext(now=NOW), names={"x": "y"}))
        assert [w.value for w in other.writes] == [w.value for w in bare.writes]
