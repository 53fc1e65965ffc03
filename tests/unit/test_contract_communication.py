"""CONTRACT.md 1.1, "A disclosure may also be a Communication": which Communications are
disclosures, each row of its table, the problems it names, and 1.4's documentation and client
notice of such a disclosure. Everything else (1.2-1.4) is the AuditEvent's rules, unchanged."""

from __future__ import annotations

import pytest
from support.engine import expect, finding, findings, report
from support.fhir import (
    ACT_CODE,
    CHANNEL,
    DATA,
    PATIENT,
    RECIPIENT,
    SOURCE,
    actor,
    bundle,
    consent,
    disclosure,
    document,
    documentation_note,
    instrument,
    notice,
    organization,
    patient,
    practitioner,
    provision,
    ref,
    sent_disclosure,
)

CM = "Communication/cm1"
NPI = ("http://hl7.org/fhir/sid/us-npi", "1234567890")


def scene(*extra, cm=None) -> list[dict]:
    """The patient, the sender, the recipient, the data and one disclosure Communication."""
    return [patient(), practitioner(), organization(), document(), *extra,
            cm if cm is not None else sent_disclosure(purposes=("TREAT",))]


def one(resources: list[dict], jurisdiction: str | None = None) -> dict:
    return finding(resources, jurisdiction, disclosure=CM)


def problems(resources: list[dict]) -> list[dict]:
    return report(resources)["problems"]


def read(resources: list[dict]):
    """The Finding object (with the write-back context the JSON leaves out)."""
    from consent_gap.evaluate import evaluate

    (found,) = [f for f in evaluate(bundle(resources)).findings if f.disclosure == CM]
    return found


# --- which Communications are disclosures ------------------------------------------------------

DETECTION = [
    ("completed-on-the-channel", sent_disclosure(), True),
    *[(f"status-{s}", sent_disclosure(status=s), False)
      for s in ("preparation", "in-progress", "not-done", "on-hold", "stopped",
                "entered-in-error", "unknown")],
    ("no-category", sent_disclosure(channel=None), False),
    ("category-alert", sent_disclosure(channel=(
        "http://terminology.hl7.org/CodeSystem/communication-category", "alert")), False),
    ("channel-code-in-another-system",
     sent_disclosure(channel=("http://example.org/other", "release-of-information")), False),
    ("channel-system-other-code", sent_disclosure(channel=(CHANNEL, "fax")), False),
    ("about-an-AuditEvent-is-a-client-notice",
     sent_disclosure(about=("AuditEvent/ae-x",)), False),
    ("about-a-Communication-is-a-client-notice",
     sent_disclosure(about=("Communication/cm-x",)), False),
    ("about-an-absolute-AuditEvent-url-is-a-client-notice",
     sent_disclosure(about=("https://ehr.example/fhir/AuditEvent/ae-x",)), False),
    ("written-by-consent-gap", sent_disclosure(tagged=True), False),
]


@pytest.mark.parametrize(("cm", "is_disclosure"),
                         [pytest.param(c, d, id=i) for i, c, d in DETECTION])
def test_which_communications_are_disclosures(cm, is_disclosure):
    got = report(scene(cm=cm))
    assert [f["disclosure"] for f in got["findings"]] == ([CM] if is_disclosure else [])
    assert got["problems"] == []


def test_the_channel_is_one_coding_among_several_categories():
    cm = sent_disclosure()
    cm["category"] = [{"coding": [{"system": "urn:local", "code": "letter"}]},
                      {"coding": [{"system": "urn:local", "code": "x"},
                                  {"system": CHANNEL, "code": "release-of-information"}]}]
    assert [f["disclosure"] for f in findings(scene(cm=cm))] == [CM]


def test_about_something_else_than_a_disclosure_keeps_it_a_disclosure():
    """Decision: only an `about` naming an AuditEvent or a Communication makes it a notice; a
    letter about (say) the request it answers is still the disclosure."""
    cm = sent_disclosure(about=("DocumentReference/request-1",))
    assert [f["disclosure"] for f in findings(scene(cm=cm))] == [CM]


def test_another_tag_does_not_exclude_it():
    cm = {**sent_disclosure(), "meta": {"tag": [{"system": "urn:local:tag", "code": "sent"}]}}
    assert [f["disclosure"] for f in findings(scene(cm=cm))] == [CM]


def test_a_channel_listed_in_the_practices_tables_is_a_disclosure(tmp_path):
    """The channels are data: a practice lists its own letter or fax codes in disclosures.toml."""
    import importlib.resources
    import shutil
    from pathlib import Path

    from consent_gap.evaluate import evaluate
    from consent_gap.mappings import load_rules

    folder = tmp_path / "mappings"
    shutil.copytree(Path(str(importlib.resources.files("consent_gap.mappings_data"))), folder,
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    table = folder / "disclosures.toml"
    text = table.read_text()
    default = f'{{ system = "{CHANNEL}", code = "release-of-information" }}'
    assert default in text
    table.write_text(text.replace(default, '{ system = "urn:local:channel", code = "fax" }'))
    rules = load_rules(folder)
    fax = sent_disclosure(channel=("urn:local:channel", "fax"))
    roi = sent_disclosure("Communication/cm2")
    got = evaluate(bundle(scene(roi, cm=fax)), rules=rules).findings
    assert [f.disclosure for f in got] == [CM]


def test_a_communication_and_an_audit_event_are_two_disclosures_in_contract_order():
    cm = sent_disclosure(sent="2025-05-01T10:00:00Z")
    ae = disclosure(when="2025-07-01T10:00:00Z")
    cm_late = sent_disclosure("Communication/cm0", sent="2025-07-01T10:00:00Z")
    got = [f["disclosure"] for f in findings(scene(ae, cm_late, cm=cm))]
    assert got == [CM, "AuditEvent/ae1", "Communication/cm0"]


# --- when: `sent` ---------------------------------------------------------------------------

WHEN = [
    ("instant", "2025-06-01T10:00:00Z", "2025-06-01T10:00:00Z"),
    ("offset-converted-to-utc", "2025-06-01T12:00:00+02:00", "2025-06-01T10:00:00Z"),
    ("date-alone-is-its-first-instant", "2025-06-01", "2025-06-01T00:00:00Z"),
]


@pytest.mark.parametrize(("sent", "occurred"), [pytest.param(s, o, id=i) for i, s, o in WHEN])
def test_when_is_sent(sent, occurred):
    assert one(scene(cm=sent_disclosure(sent=sent)))["occurred"] == occurred


def test_sent_decides_against_the_authorizations_period():
    """`sent` is the time the checks use: after the Consent's end, the authorization expired."""
    cm = sent_disclosure(sent="2026-02-01T00:00:00Z")
    expect(one(scene(consent(), cm=cm)), decision="unauthorized",
           reasons_include=["authorization-expired"])


def test_no_sent_is_a_problem_not_a_disclosure():
    resources = scene(cm=sent_disclosure(sent=None))
    assert findings(resources) == []
    assert [p["resource"] for p in problems(resources)] == [CM]
    assert "sent" in problems(resources)[0]["message"]


def test_sent_that_is_not_a_date_is_a_problem():
    resources = scene(cm=sent_disclosure(sent="last Tuesday"))
    assert findings(resources) == []
    assert problems(resources) == [{"resource": CM, "message": "sent is not a date"}]


def test_a_notice_without_sent_is_no_problem():
    """Only a disclosure Communication needs `sent`; a not-done or draft one is not read."""
    assert problems(scene(cm=sent_disclosure(sent=None, status="in-progress"))) == []


# --- patient: `subject` ------------------------------------------------------------------------

def test_patient_is_the_subject():
    assert one(scene(cm=sent_disclosure()))["patient"] == PATIENT


def test_a_subject_that_is_not_a_patient_gives_no_patient():
    cm = sent_disclosure(patient_ref="Group/g1")
    assert one(scene(cm=cm))["patient"] is None


def test_the_subjects_consents_are_the_candidates():
    """The patient read from `subject` is the one whose Consents are checked (1.2)."""
    expect(one(scene(consent(), cm=sent_disclosure())), decision="authorized", basis="Consent/c1")
    other = sent_disclosure(patient_ref="Patient/p2")
    expect(one([patient("Patient/p2"), *scene(consent(), cm=other)]),
           decision="unauthorized", reasons_include=["no-authorization"])


# --- recipient: the one `recipient` ------------------------------------------------------------

def test_recipient_by_reference_is_checked_against_the_authorization():
    expect(one(scene(consent(), cm=sent_disclosure())), recipient=RECIPIENT,
           decision="authorized")
    elsewhere = sent_disclosure(recipients=[ref("Organization/org-other")])
    expect(one([organization("Organization/org-other"), *scene(consent(), cm=elsewhere)]),
           recipient="Organization/org-other", decision="unauthorized",
           reasons_include=["recipient-not-covered"])


def test_recipient_by_identifier_matches_an_actor_by_identifier():
    cm = sent_disclosure(recipients=[ref(identifier=NPI)])
    auth = consent(prov=provision(recipients=(), actors=[actor(None, identifier=NPI)]))
    got = one(scene(auth, cm=cm))
    expect(got, decision="authorized", recipient="|".join(NPI))


def test_recipient_the_patient_is_the_access_row():
    cm = sent_disclosure(recipients=[ref(PATIENT)], purposes=("PATRQT",))
    expect(one(scene(cm=cm)), decision="permitted", basis="hipaa-164.524-access")


def test_treatment_to_an_organization_recipient_is_permitted():
    expect(one(scene(cm=sent_disclosure(purposes=("TREAT",)))), decision="permitted",
           basis="hipaa-164.506-treatment")


def test_a_recipient_named_only_by_display_is_one_recipient_naming_no_one():
    """Decision: a recipient with a display only is still the one recipient (not a problem);
    it names no resource, so treatment to it is not treatment to a provider (review)."""
    cm = sent_disclosure(recipients=[{"display": "Dr. Ames' office"}], purposes=("TREAT",))
    expect(one(scene(cm=cm)), recipient=None, decision="review",
           reasons_include=["recipient-not-a-provider"])


@pytest.mark.parametrize(("recipients", "count"), [
    pytest.param([], "no recipient", id="no-recipient"),
    pytest.param([ref(RECIPIENT), ref("Organization/org-2")], "2 recipients",
                 id="two-recipients"),
    pytest.param([ref(RECIPIENT), ref(PATIENT), ref(identifier=NPI)], "3 recipients",
                 id="three-recipients"),
])
def test_not_exactly_one_recipient_is_a_problem(recipients, count):
    resources = scene(cm=sent_disclosure(recipients=recipients))
    assert findings(resources) == []
    assert problems(resources) == [{
        "resource": CM,
        "message": f"is a disclosure Communication with {count}: "
                   "record one Communication per recipient"}]


def test_the_recipient_problem_spares_the_rest_of_the_data_set():
    two = sent_disclosure(recipients=[ref(RECIPIENT), ref("Organization/org-2")])
    good = sent_disclosure("Communication/cm2")
    got = report(scene(good, disclosure(), cm=two))
    assert [f["disclosure"] for f in got["findings"]] == ["AuditEvent/ae1", "Communication/cm2"]
    assert [p["resource"] for p in got["problems"]] == [CM]


# --- people to notify: `sender` ----------------------------------------------------------------

@pytest.mark.parametrize(("sender", "notify"), [
    pytest.param(SOURCE, (SOURCE,), id="practitioner"),
    pytest.param("PractitionerRole/prr1", ("PractitionerRole/prr1",), id="practitioner-role"),
    pytest.param("Organization/org-src", (), id="organization-not-notified"),
    pytest.param("Patient/p1", (), id="patient-not-notified"),
    pytest.param(None, (), id="no-sender"),
])
def test_people_to_notify_is_the_sender_when_a_person(sender, notify):
    assert read(scene(cm=sent_disclosure(sender=sender))).notify == notify


# --- purposes: `reasonCode` in ActReason -------------------------------------------------------

def test_purposes_are_the_act_reason_reason_codes_in_order():
    cm = sent_disclosure(purposes=("TREAT", "HPAYMT", "TREAT"),
                         other_purposes=[{"system": "urn:local:why", "code": "TREAT"}])
    assert one(scene(cm=cm))["purposes"] == ["TREAT", "HPAYMT"]


def test_no_purpose_is_review():
    expect(one(scene(cm=sent_disclosure(purposes=()))), decision="review",
           reasons_first="purpose-missing")


def test_a_reason_code_in_another_system_is_no_purpose():
    cm = sent_disclosure(purposes=(), other_purposes=[{"system": "urn:local", "code": "TREAT"}])
    expect(one(scene(cm=cm)), purposes=[], reasons_first="purpose-missing")


def test_the_purpose_is_checked_against_the_authorization():
    expect(one(scene(consent(), cm=sent_disclosure(purposes=("HMARKT",)))),
           decision="review", reasons=["purpose-unmapped", "purpose-not-covered"])


# --- legal instrument: `basedOn` or `payload.contentReference` ---------------------------------

SUBPOENA = "DocumentReference/subpoena-1"
ORDER = "DocumentReference/order-1"


@pytest.mark.parametrize("where", ["based_on", "instruments"])
def test_a_subpoena_alone_is_unauthorized(where):
    cm = sent_disclosure(purposes=("HLEGAL",), **{where: (SUBPOENA,)})
    got = one(scene(instrument(SUBPOENA, "subpoena"), cm=cm))
    expect(got, decision="unauthorized", basis=None, accountable=True,
           reasons_first="subpoena-without-court-order")
    assert read(scene(instrument(SUBPOENA, "subpoena"), cm=cm)).instruments == (SUBPOENA,)
    assert SUBPOENA not in read(scene(instrument(SUBPOENA, "subpoena"), cm=cm)).disclosed


@pytest.mark.parametrize("where", ["based_on", "instruments"])
def test_a_court_order_is_required(where):
    cm = sent_disclosure(purposes=("HLEGAL",), **{where: (ORDER,)})
    expect(one(scene(instrument(ORDER, "court-order"), cm=cm)), decision="required",
           basis="hipaa-164.512(e)-court-order", accountable=True)


def test_a_subpoena_and_an_assurance_from_both_places_is_review():
    assurance = "DocumentReference/assure-1"
    cm = sent_disclosure(purposes=("HLEGAL",), based_on=(SUBPOENA,), instruments=(assurance,))
    got = one(scene(instrument(SUBPOENA, "subpoena"),
                    instrument(assurance, "satisfactory-assurance"), cm=cm))
    expect(got, decision="review", reasons_first="legal-review-needed")


def test_an_instrument_dated_after_the_disclosure_in_the_payload_is_data():
    late = instrument(ORDER, "court-order", date="2025-07-01T00:00:00Z")
    cm = sent_disclosure(purposes=("HLEGAL",), instruments=(ORDER,))
    expect(one(scene(late, cm=cm)), decision="review", reasons_first="legal-review-needed")
    assert ORDER in read(scene(late, cm=cm)).disclosed


def test_an_instrument_dated_after_the_disclosure_in_based_on_counts_for_nothing():
    late = instrument(ORDER, "court-order", date="2025-07-01T00:00:00Z")
    cm = sent_disclosure(purposes=("HLEGAL",), based_on=(ORDER,))
    expect(one(scene(late, cm=cm)), decision="review", reasons_first="legal-review-needed")
    assert read(scene(late, cm=cm)).disclosed == (DATA,)


def test_an_undated_instrument_does_not_count():
    cm = sent_disclosure(purposes=("HLEGAL",), based_on=(SUBPOENA,))
    expect(one(scene(instrument(SUBPOENA, "subpoena", date=None), cm=cm)), decision="review",
           reasons_first="legal-review-needed")


def test_based_on_a_document_that_is_not_an_instrument_is_neither_instrument_nor_data():
    cm = sent_disclosure(purposes=("HLEGAL",), based_on=("DocumentReference/request-1",))
    resources = scene(document("DocumentReference/request-1"), cm=cm)
    expect(one(resources), decision="review", reasons_first="legal-review-needed")
    assert read(resources).disclosed == (DATA,)


# --- data disclosed: every other `payload.contentReference` ------------------------------------

def test_the_payloads_references_are_the_data_disclosed():
    second = "DocumentReference/d2"
    cm = sent_disclosure(data=(DATA, second))
    assert read(scene(document(second), cm=cm)).disclosed == (DATA, second)


def test_the_labels_of_a_disclosed_resource_count():
    """Psychotherapy notes sent under an authorization that does not name them."""
    notes = document(labels=("PSYTHPN",))
    resources = [patient(), practitioner(), organization(), notes, consent(),
                 sent_disclosure()]
    expect(one(resources), decision="unauthorized",
           reasons_include=["psychotherapy-notes-need-specific-authorization"])


def test_a_payload_resource_missing_from_the_data_set_is_unresolved():
    cm = sent_disclosure(data=("DocumentReference/not-here",))
    expect(one(scene(consent(), cm=cm)), decision="review", reasons_first="data-unresolved")


def test_content_string_alone_means_the_data_is_unresolved():
    cm = sent_disclosure(data=(), strings=("Summary of treatment: ...",))
    expect(one(scene(consent(), cm=cm)), decision="review", reasons_first="data-unresolved",
           accountable=False)


def test_content_string_beside_referenced_data_is_the_covering_letter():
    cm = sent_disclosure(strings=("Please find enclosed the records you asked for.",))
    expect(one(scene(consent(), cm=cm)), decision="authorized", basis="Consent/c1")


def test_content_string_beside_only_an_instrument_is_still_unresolved_data():
    """The instrument is not data; the text sent is, and nothing describes it."""
    cm = sent_disclosure(data=(), instruments=(ORDER,), purposes=("TREAT",),
                         strings=("The records are: ...",))
    expect(one(scene(instrument(ORDER, "court-order"), cm=cm)), decision="review",
           reasons_first="data-unresolved")


def test_an_attachment_is_data_the_record_does_not_describe():
    """Decision: a `contentAttachment` is unresolved data even beside referenced data (what
    the PDF or fax holds is not in the structured record), so an authorization cannot be
    shown to cover it: review."""
    cm = sent_disclosure(attachments=1)
    expect(one(scene(consent(), cm=cm)), decision="review", reasons_first="data-unresolved")


def test_no_payload_at_all_is_no_disclosed_entity():
    cm = sent_disclosure(data=())
    expect(one(scene(consent(), cm=cm)), decision="review", reasons_first="data-unresolved")


def test_a_part2_label_on_the_payload_resource_narrows_the_table():
    part2 = document(labels=((ACT_CODE, "42CFRPart2"),))
    resources = [patient(), practitioner(), organization(), part2,
                 sent_disclosure(purposes=("TREAT",))]
    expect(one(resources), decision="unauthorized", reasons_first="part2-consent-required")


# --- 1.4: documentation and client notice of a Communication disclosure -----------------------

def threat(*extra) -> list[dict]:
    return scene(*extra, cm=sent_disclosure(purposes=("THREAT",)))


@pytest.mark.parametrize(("extra", "documentation", "client_notice"), [
    pytest.param((), "missing", "missing", id="neither"),
    pytest.param((documentation_note(CM),), "present", "missing", id="note-related-to-it"),
    pytest.param((notice(CM),), "missing", "sent", id="notice-about-it"),
    pytest.param((notice(CM, status="not-done", status_reason="risk of harm"),), "missing",
                 "withheld", id="notice-withheld"),
    pytest.param((documentation_note(CM), notice(CM)), "present", "sent", id="both"),
    pytest.param((documentation_note("AuditEvent/ae1"), notice("AuditEvent/ae1")), "missing",
                 "missing", id="about-another-disclosure"),
    pytest.param((documentation_note(CM, doc_status="preliminary"),), "missing", "missing",
                 id="preliminary-note"),
    pytest.param((documentation_note(CM, tagged=True), notice(CM, tagged=True)), "missing",
                 "missing", id="written-by-consent-gap"),
    pytest.param((notice(CM, recipient=RECIPIENT),), "missing", "missing",
                 id="notice-to-someone-else"),
])
def test_documentation_and_notice_point_at_the_communication(extra, documentation,
                                                             client_notice):
    got = one(threat(*extra))
    expect(got, decision="permitted", basis="hipaa-164.512(j)-serious-threat",
           documentation=documentation, client_notice=client_notice)


def test_the_client_notice_is_not_itself_a_disclosure():
    """The notice to the client about the disclosure is on the channel too (a letter): its
    `about` makes it a notice, so there is one finding, and it counts as sent."""
    letter = {**notice(CM, reference="Communication/n1"),
              "category": [{"coding": [{"system": CHANNEL, "code": "release-of-information"}]}],
              "sent": "2025-06-02T10:00:00Z"}
    got = findings(threat(letter))
    assert [f["disclosure"] for f in got] == [CM]
    assert got[0]["client_notice"] == "sent"


def test_a_required_communication_disclosure_owes_both():
    cm = sent_disclosure(purposes=("THREAT",))
    expect(one(scene(cm=cm), "US-CA"), decision="required", basis="duty-to-warn-or-protect",
           documentation="missing", client_notice="missing")
    expect(one(scene(documentation_note(CM), notice(CM), cm=cm), "US-CA"),
           decision="required", documentation="present", client_notice="sent")


def test_not_required_for_an_authorized_communication_disclosure():
    expect(one(scene(consent(), cm=sent_disclosure())), decision="authorized",
           documentation="not-required", client_notice="not-required")
