"""What the privacy office writes (CONTRACT 7, 7.1): the Task's update keeps what was there
and appends who and why, goes with If-Match on the version read, in one transaction with the
assessment, the notice draft and one Provenance; all valid R4."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from consent_gap import breach
from consent_gap.writeback import FINDING_SYSTEM, office, validate
from consent_gap.writeback.tasks import read_task

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
TASK = {
    "resourceType": "Task", "id": "t-1",
    "meta": {"versionId": "3", "lastUpdated": "2026-12-01T00:00:00Z",
             "tag": [{"system": "https://consent-gap.dev/fhir/tag", "code": "consent-gap"}]},
    "identifier": [{"system": FINDING_SYSTEM, "value": "abc"}],
    "status": "requested", "intent": "order", "priority": "urgent",
    "code": {"coding": [{"system": "https://consent-gap.dev/fhir/CodeSystem/task",
                         "code": "review-disclosure"}]},
    "focus": {"reference": "AuditEvent/ae-1"}, "for": {"reference": "Patient/p-1"},
    "authoredOn": "2026-11-02T09:30:00Z",
    "restriction": {"period": {"end": "2027-01-01T09:30:00Z"}},
    "note": [{"text": "earlier note by a person", "time": "2026-11-03T00:00:00Z"}],
}


def state() -> office.TaskState:
    return office.TaskState(TASK)


def test_the_update_appends_the_note_and_keeps_everything_else():
    updated = office.updated_task(state(), status="completed", business="not-a-disclosure",
                                  author="Practitioner/po-1", why="internal transfer", now=NOW)
    assert updated["status"] == "completed"
    assert updated["businessStatus"]["coding"] == [
        {"system": "https://consent-gap.dev/fhir/CodeSystem/disposition",
         "code": "not-a-disclosure"}]
    assert updated["note"][0] == TASK["note"][0]  # what a person wrote stays
    assert updated["note"][1] == {"time": "2026-12-07T08:00:00Z", "text": "internal transfer",
                                  "authorReference": {"reference": "Practitioner/po-1"}}
    for key in ("identifier", "focus", "for", "authoredOn", "restriction", "priority", "code"):
        assert updated[key] == TASK[key]
    assert "versionId" not in updated["meta"]


def test_the_transaction_updates_with_if_match_and_one_provenance_targets_all():
    answers = breach.read_assessment({
        "secured": "no", "exception": "none", "conclusion": "breach",
        **{f"rating-{c}": "high" for c, _ in breach.FACTORS},
        **{f"evidence-{c}": "text" for c, _ in breach.FACTORS}})
    response = office.response_resource(state(), answers, patient="Patient/p-1",
                                        author="Practitioner/po-1", now=NOW)
    notice = office.notice_draft(state(), "the notice", patient="Patient/p-1",
                                 disclosure="AuditEvent/ae-1", organization=None, now=NOW)
    updated = office.updated_task(
        state(), status="in-progress", business="breach", author="Practitioner/po-1",
        why="assessed", now=NOW, outputs=(("breach-risk-assessment", response.full_url),
                                          ("breach-notice-draft", notice.full_url)))
    bundle = office.disposition_transaction(state(), updated, creations=(response, notice),
                                            author="Practitioner/po-1", device="Device/app",
                                            now=NOW, with_questionnaire=True)
    entries = bundle["entry"]
    kinds = [e["resource"]["resourceType"] for e in entries]
    assert kinds == ["Questionnaire", "QuestionnaireResponse", "DocumentReference", "Task",
                     "Provenance"]
    questionnaire, qr, doc, task, provenance = entries
    assert questionnaire["request"]["ifNoneExist"] == f"url={office.QUESTIONNAIRE_URL}"
    assert task["request"] == {"method": "PUT", "url": "Task/t-1", "ifMatch": 'W/"3"'}
    assert qr["request"]["ifNoneExist"].startswith(f"identifier={FINDING_SYSTEM}|")
    assert qr["resource"]["status"] == "completed"
    assert qr["resource"]["questionnaire"] == office.QUESTIONNAIRE_URL
    assert qr["resource"]["subject"] == {"reference": "Patient/p-1"}
    assert qr["resource"]["author"] == {"reference": "Practitioner/po-1"}
    assert doc["resource"]["docStatus"] == "preliminary"
    assert base64.b64decode(doc["resource"]["content"][0]["attachment"]["data"]) == (
        b"the notice")
    targets = [t["reference"] for t in provenance["resource"]["target"]]
    assert targets == ["Task/t-1", qr["fullUrl"], doc["fullUrl"]]
    assert [a["who"]["reference"] for a in provenance["resource"]["agent"]] == [
        "Practitioner/po-1", "Device/app"]
    for entry in entries:
        validate(entry["resource"])
    assert [code for code, _ in read_task({**task["resource"], "meta": {"versionId": "4"}})
            .outputs] == ["breach-risk-assessment", "breach-notice-draft"]
    flat = office.answers_of(qr["resource"])
    assert flat["conclusion"] == "breach" and flat["rating-nature"] == "high"
    assert flat["secured"] is False and flat["affected"] == 1


def test_the_same_submission_gives_the_same_identifiers_and_a_new_version_new_ones():
    one = office.response_resource(state(), _low(), patient=None, author=None, now=NOW)
    again = office.response_resource(state(), _low(), patient=None, author=None, now=NOW)
    later = office.TaskState({**TASK, "meta": {"versionId": "4"}})
    other = office.response_resource(later, _low(), patient=None, author=None, now=NOW)
    assert one.value == again.value != other.value


def _low() -> breach.Assessment:
    return breach.read_assessment({
        "secured": "no", "exception": "none", "conclusion": "low-probability",
        **{f"rating-{c}": "low" for c, _ in breach.FACTORS},
        **{f"evidence-{c}": "text" for c, _ in breach.FACTORS}})


def test_a_task_read_without_a_version_is_never_updated():
    task = office.TaskState({k: v for k, v in TASK.items() if k != "meta"})
    updated = office.updated_task(task, status="completed", business="not-a-disclosure",
                                  author=None, why="x", now=NOW)
    with pytest.raises(ValueError, match="version"):
        office.disposition_transaction(task, updated, author=None, device=None, now=NOW)


def test_the_notice_holds_the_164_404c_contents():
    text = office.notice_text(client="Ada Client", occurred="2026-10-01",
                              discovered="2026-11-02", recipient="Acme Employer",
                              kinds=["DocumentReference/note-1"], practice="Oak Clinic",
                              deadline="2027-01-01")
    for heading in ("## What happened", "## What information was involved",
                    "## What you can do", "## What we are doing", "## How to reach us"):
        assert heading in text
    assert "2026-10-01" in text and "2026-11-02" in text and "2027-01-01" in text


def test_read_task_reads_what_the_worklist_shows():
    view = read_task(TASK)
    assert (view.id, view.version, view.status, view.priority) == ("t-1", "3", "requested",
                                                                    "urgent")
    assert view.decision == "unauthorized" and view.open
    assert view.deadline == datetime(2027, 1, 1, 9, 30, tzinfo=UTC)
    assert view.notes[0].text == "earlier note by a person"


def test_the_notices_deadlines_go_on_the_task_as_dated_outputs():
    updated = office.updated_task(state(), status="in-progress", business="breach",
                                  author=None, why="assessed", now=NOW,
                                  dates=(("hhs-notice-deadline", "2027-03-01"),))
    validate(updated)
    view = read_task(updated)
    assert view.date_of("hhs-notice-deadline") == "2027-03-01"
    assert view.date_of("media-notice-deadline") is None


def test_an_authorization_on_file_covers_the_disclosure_on_the_re_check():
    """The Consent the officer attaches (CONTRACT 7, authorization-on-file): signed by its
    scan, for the disclosure's recipient and purposes; the engine then authorizes."""
    import json
    from pathlib import Path

    from consent_gap.evaluate import evaluate

    path = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
    resources = [e["resource"] for e in json.loads(
        (path / "02-authorization-expired.json").read_text())["entry"]]
    (finding,) = evaluate(resources, "US-CA").findings
    assert finding.decision == "unauthorized"
    occurred = finding.occurred[:10]
    form = office.SignedForm(b"%PDF-1.4 scan", "application/pdf", "signed.pdf",
                             signed=f"{int(occurred[:4]) - 1}{occurred[4:]}",
                             expires=f"{int(occurred[:4]) + 1}{occurred[4:]}",
                             signer=finding.patient)
    consent = office.authorization_on_file(state(), form, patient=finding.patient,
                                           recipient=finding.recipient,
                                           purposes=finding.purposes, organization=None,
                                           now=NOW)
    assert consent.resource["status"] == "active"
    assert "tag" not in consent.resource["meta"]  # a person's record: the engine reads it
    assert consent.resource["sourceAttachment"]["contentType"] == "application/pdf"
    stored = {**consent.resource, "id": "c-on-file"}
    (again,) = evaluate([*resources, stored], "US-CA").findings
    assert again.decision == "authorized" and again.basis == "Consent/c-on-file"
    # a form that expired before the disclosure does not cover it
    early = office.SignedForm(b"x", "application/pdf", "x.pdf", signed="2001-01-01",
                              expires="2002-01-01", signer=finding.patient)
    stale = office.authorization_on_file(state(), early, patient=finding.patient,
                                         recipient=finding.recipient,
                                         purposes=finding.purposes, organization=None, now=NOW)
    (still,) = evaluate([*resources, {**stale.resource, "id": "c-old"}], "US-CA").findings
    assert still.decision == "unauthorized"


def test_the_same_form_is_one_consent_and_other_terms_another():
    form = office.SignedForm(b"scan", "application/pdf", "a.pdf", "2025-01-01", "2026-01-01",
                             "Patient/p-1")
    def made(f):
        return office.authorization_on_file(state(), f, patient="Patient/p-1",
                                            recipient="Organization/o-1", purposes=("HPAYMT",),
                                            organization=None, now=NOW).value
    assert made(form) == made(form)
    assert made(form) != made(office.SignedForm(b"scan", "application/pdf", "a.pdf",
                                                "2025-01-01", "2027-01-01", "Patient/p-1"))
