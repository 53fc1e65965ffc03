"""CONTRACT.md 1.4: documentation and client notice for the decisions that break
confidentiality, and `not-required` for every other decision."""

from __future__ import annotations

import pytest
from support.engine import expect, finding
from support.fhir import (
    PATIENT,
    consent,
    disclosure,
    document,
    documentation_note,
    notice,
    organization,
    patient,
    practitioner,
    related_person,
)

AE = "AuditEvent/ae1"
MINOR = "2010-03-01"
AGE_20 = "2004-07-01"


def scene(purposes=("THREAT",), *extra, birth_date="1980-04-01", recipient=None) -> list[dict]:
    kw = {"recipient": recipient} if recipient else {}
    return [patient(birth_date=birth_date), practitioner(), organization(), document(), *extra,
            disclosure(purposes=purposes, **kw)]


DOC_ROWS = [
    ("note-current-no-docStatus", scene(("THREAT",), documentation_note()), "present"),
    ("note-docStatus-final", scene(("THREAT",), documentation_note(doc_status="final")),
     "present"),
    ("note-docStatus-amended", scene(("THREAT",), documentation_note(doc_status="amended")),
     "present"),
    ("note-preliminary-draft-does-not-count",
     scene(("THREAT",), documentation_note(doc_status="preliminary")), "missing"),
    ("note-superseded", scene(("THREAT",), documentation_note(status="superseded")), "missing"),
    ("note-entered-in-error", scene(("THREAT",), documentation_note(status="entered-in-error")),
     "missing"),
    ("note-about-another-disclosure",
     scene(("THREAT",), documentation_note("AuditEvent/ae-other")), "missing"),
    ("note-written-by-consent-gap", scene(("THREAT",), documentation_note(tagged=True)),
     "missing"),
    ("note-with-another-tag",
     scene(("THREAT",), {**documentation_note(),
                         "meta": {"tag": [{"system": "urn:local:tag", "code": "reviewed"}]}}),
     "present"),
    ("note-without-subject",
     scene(("THREAT",), {k: v for k, v in documentation_note().items() if k != "subject"}),
     "present"),
    ("no-note", scene(("THREAT",)), "missing"),
    ("one-good-note-among-drafts",
     scene(("THREAT",), documentation_note(doc_status="preliminary"),
           documentation_note(reference="DocumentReference/note-2")), "present"),
]


@pytest.mark.parametrize(("resources", "want"), [pytest.param(r, w, id=i) for i, r, w in DOC_ROWS])
def test_documentation(resources, want):
    expect(finding(resources, "US-CA"), decision="required", documentation=want)


NOTICE_ROWS = [
    ("completed-to-patient", scene(("THREAT",), notice()), "US-CA", "sent"),
    ("not-done-with-statusReason",
     scene(("THREAT",), notice(status="not-done", status_reason="would endanger")), "US-CA",
     "withheld"),
    ("not-done-without-statusReason", scene(("THREAT",), notice(status="not-done")), "US-CA",
     "missing"),
    ("in-progress", scene(("THREAT",), notice(status="in-progress")), "US-CA", "missing"),
    ("to-the-patient-among-others",
     scene(("THREAT",), {**notice(), "recipient": [{"reference": "Practitioner/pr-src"},
                                                   {"reference": PATIENT}]}),
     "US-CA", "sent"),
    ("without-subject", scene(("THREAT",), {k: v for k, v in notice().items()
                                            if k != "subject"}), "US-CA", "sent"),
    ("to-a-practitioner-only", scene(("THREAT",), notice(recipient="Practitioner/pr-src")),
     "US-CA", "missing"),
    ("to-a-guardian",
     scene(("THREAT",), related_person(relationship="GUARD"),
           notice(recipient="RelatedPerson/rp1")), "US-CA", "sent"),
    ("to-a-parent-of-a-minor",
     scene(("THREAT",), related_person(relationship="MTH"),
           notice(recipient="RelatedPerson/rp1"), birth_date=MINOR), "US-CA", "sent"),
    ("to-a-parent-of-an-adult", scene(("THREAT",), related_person(relationship="PRN"),
                                      notice(recipient="RelatedPerson/rp1")), "US-CA",
     "missing"),
    ("to-a-friend", scene(("THREAT",), related_person(relationship="FRND"),
                          notice(recipient="RelatedPerson/rp1")), "US-CA", "missing"),
    ("about-another-disclosure", scene(("THREAT",), notice("AuditEvent/ae-other")), "US-CA",
     "missing"),
    ("written-by-consent-gap", scene(("THREAT",), notice(tagged=True)), "US-CA", "missing"),
    ("no-communication", scene(("THREAT",)), "US-CA", "missing"),
    ("abuse-report-about-a-minor-not-required", scene(("PUBHLTH",), birth_date=MINOR), None,
     "not-required"),
    ("abuse-report-about-a-minor-even-when-sent", scene(("PUBHLTH",), notice(),
                                                         birth_date=MINOR), None,
     "not-required"),
    ("abuse-report-about-an-adult", scene(("PUBHLTH",)), None, "missing"),
    ("abuse-report-about-a-20-year-old-in-MS-is-a-minor", scene(("PUBHLTH",), birth_date=AGE_20),
     "US-MS", "not-required"),
    ("abuse-report-about-a-20-year-old-federal", scene(("PUBHLTH",), birth_date=AGE_20), None,
     "missing"),
    ("threat-about-a-minor-still-needs-notice", scene(("THREAT",), birth_date=MINOR), "US-CA",
     "missing"),
]


@pytest.mark.parametrize(("resources", "jurisdiction", "want"),
                         [pytest.param(r, j, w, id=i) for i, r, j, w in NOTICE_ROWS])
def test_client_notice(resources, jurisdiction, want):
    expect(finding(resources, jurisdiction), decision="required", client_notice=want)


def test_abuse_report_about_minor_still_needs_documentation():
    got = finding(scene(("PUBHLTH",), birth_date=MINOR), None)
    expect(got, decision="required", basis="abuse-report", documentation="missing",
           client_notice="not-required")


BOTH = (documentation_note(), notice())
APPLIES_ROWS = [
    # the rows 1.4 names: every required decision, emergency treatment, serious threat
    ("required-duty-to-warn", scene(("THREAT",), *BOTH), "US-CA", "present", "sent"),
    ("required-abuse-report", scene(("PUBHLTH",), *BOTH), None, "present", "sent"),
    ("required-court-order",
     [*scene(("HLEGAL",), *BOTH)[:-1],
      {"resourceType": "DocumentReference", "id": "order", "status": "current",
       "date": "2025-05-01T00:00:00Z",
       "type": {"coding": [{"system": "https://consent-gap.dev/fhir/CodeSystem/legal-instrument",
                            "code": "court-order"}]}},
      disclosure(purposes=("HLEGAL",), instruments=("DocumentReference/order",))],
     None, "present", "sent"),
    ("permitted-emergency-treatment", scene(("ETREAT",), *BOTH), None, "present", "sent"),
    ("permitted-serious-threat", scene(("THREAT",), *BOTH), "US-TX", "present", "sent"),
    ("permitted-emergency-missing", scene(("ERTREAT",)), None, "missing", "missing"),
    # everything else: not-required, whatever the record holds
    ("permitted-treatment", scene(("TREAT",), *BOTH), None, "not-required", "not-required"),
    ("permitted-payment", scene(("HPAYMT",), *BOTH), None, "not-required", "not-required"),
    ("permitted-access", scene(("THREAT",), *BOTH, recipient=PATIENT), "US-CA", "not-required",
     "not-required"),
    ("authorized", scene(("PATRQT",), consent(), *BOTH), None, "not-required", "not-required"),
    ("unauthorized", scene(("PATRQT",), *BOTH), None, "not-required", "not-required"),
    ("review", scene(("GOV",), *BOTH), None, "not-required", "not-required"),
]


@pytest.mark.parametrize(("resources", "jurisdiction", "doc", "note"),
                         [pytest.param(r, j, d, n, id=i) for i, r, j, d, n in APPLIES_ROWS])
def test_which_decisions_need_documentation(resources, jurisdiction, doc, note):
    expect(finding(resources, jurisdiction), documentation=doc, client_notice=note)
