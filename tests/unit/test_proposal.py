"""CONTRACT 6.1, 6.2 and 6.4: refusals, the steps table, the scenarios, the answer's fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from consent_gap.domain import ClientNotice, Decision, Documentation, Finding
from consent_gap.evaluate import evaluator
from consent_gap.mappings import load_rules
from consent_gap.proposal import ProposalError, check, read_proposal, step_codes
from consent_gap.wording.guide import missing_words, step_text
from support.fhir import (
    DATA,
    PATIENT,
    RECIPIENT,
    bundle,
    consent,
    instrument,
    nested,
    provision,
    related_person,
    restriction,
    world,
)

NOW = datetime(2025, 6, 1, 10, tzinfo=UTC)
RULES = load_rules()


def answer(proposal: dict, *resources, jurisdiction: str | None = None):
    decide = evaluator(jurisdiction, rules=RULES)
    chart = bundle(world(*resources))
    read = read_proposal({"patient": PATIENT, "at": "2025-06-01T10:00:00Z",
                          "recipient": {"reference": RECIPIENT},
                          "data": [{"reference": DATA}], **proposal}, RULES, now=NOW)
    return check(chart, read, decide, rules=RULES, place=decide.place)


# ------------------------------------------------------------------------- 6.1 refusals

REFUSALS = [
    ({"purposes": ["NOPE"]}, "purposes[0]: unknown purpose code 'NOPE'"),
    ({"purposes": "THREAT"}, "purposes: must be a list"),
    ({"recipient": {"reference": "police"}}, "recipient.reference: 'police' is not a reference"),
    ({"recipient": {"reference": "Organization/a b"}}, "recipient.reference:"),
    ({"recipient": {"identifier": {"system": "urn:x"}}}, "recipient.identifier.value:"),
    ({"recipient": {}}, "recipient: needs a reference or an identifier"),
    ({"data": [{"reference": "not a ref"}]}, "data[0].reference:"),
    ({"data": [{"labels": [{"code": "PSYTHPN"}]}]}, "data[0].labels[0].system:"),
    ({"instruments": ["DocumentReference/"]}, "instruments[0]:"),
    ({"instruments": ["Binary/b1"]}, "instruments[0]: must reference a DocumentReference"),
    ({"patient": "Practitioner/x"}, "patient: must reference a Patient"),
    ({"patient": "p1"}, "patient: 'p1' is not a reference"),
    ({"at": "yesterday"}, "at: 'yesterday' is not a date-time"),
    ({"scenario": "gossip"}, "scenario: unknown scenario 'gossip'"),
]


@pytest.mark.parametrize(("change", "message"), REFUSALS)
def test_an_invalid_proposal_is_refused_naming_the_field(change, message):
    data = {"patient": PATIENT, "purposes": ["THREAT"], **change}
    with pytest.raises(ProposalError) as error:
        read_proposal(data, RULES, now=NOW)
    assert str(error.value).startswith(message.split(":")[0] + ":")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_patient_other_than_the_launched_one_is_refused():
    with pytest.raises(ProposalError, match=r"^patient: 'Patient/other' is not the launched"):
        read_proposal({"patient": "Patient/other"}, RULES, now=NOW, patient=PATIENT)
    assert read_proposal({}, RULES, now=NOW, patient=PATIENT).patient == PATIENT


def test_a_patient_the_chart_does_not_hold_is_refused():
    with pytest.raises(ProposalError, match=r"^patient: 'Patient/zz' is not the chart's patient"):
        answer({"patient": "Patient/zz", "purposes": ["TREAT"]})


def test_the_cli_refuses_a_bad_proposal_with_exit_2_and_one_line(tmp_path, capsys):
    from consent_gap.cli import main
    from support.fhir import bundle as make_bundle

    chart = tmp_path / "chart.json"
    import json
    chart.write_text(json.dumps(make_bundle(world())))
    proposal = tmp_path / "p.json"
    proposal.write_text(json.dumps({"patient": PATIENT, "recipient": {"reference": "x"}}))
    assert main(["check", str(chart), "--proposal", str(proposal)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "recipient.reference" in err
    proposal.write_text(json.dumps({"patient": PATIENT, "purposes": ["TREAT"],
                                    "recipient": {"reference": RECIPIENT},
                                    "data": [{"reference": DATA}]}))
    assert main(["check", str(chart), "--proposal", str(proposal)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["finding"]["decision"] == "permitted"
    assert [s["code"] for s in out["steps"]] == ["record-disclosure"]
    assert set(out) == {"finding", "steps", "can_draft_authorization"}
    assert main(["check", str(chart), "--proposal", str(proposal), "--format", "text"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("decision: permitted (hipaa-164.506-treatment)")
    assert "1. [record-disclosure]" in text
    assert main(["check", str(chart), "--proposal", str(proposal), "--jurisdiction",
                 "CA"]) == 2
    assert "did you mean US-CA?" in capsys.readouterr().err


def test_any_actreason_code_is_known_and_decided_as_evaluate_decides_it():
    got = answer({"purposes": ["LEGAL"]})  # ActReason, outside the PurposeOfUse hierarchy
    assert str(got.finding.decision) == "review"
    assert got.finding.reasons[0] == "purpose-unmapped"
    for code in ("XYZ", "threat", "TREAT "):
        with pytest.raises(ProposalError, match=r"^purposes\[0\]: unknown purpose code"):
            read_proposal({"patient": PATIENT, "purposes": [code]}, RULES, now=NOW)


def test_defaults_at_is_now_and_scenario_fills_purposes():
    read = read_proposal({"patient": PATIENT, "scenario": "child-abuse"}, RULES, now=NOW)
    assert read.at == NOW and read.purposes == ("PUBHLTH",)
    given = read_proposal({"patient": PATIENT, "scenario": "child-abuse",
                           "purposes": ["THREAT"]}, RULES, now=NOW)
    assert given.purposes == ("THREAT",)


# ------------------------------------------------------------------------- 6.2 steps table

def finding(decision, basis=None, reasons=(), documentation="not-required",
            notice="not-required") -> Finding:
    return Finding(disclosure="AuditEvent/x", patient=PATIENT, occurred="2025-06-01T10:00:00Z",
                   recipient=RECIPIENT, purposes=("X",), decision=Decision(decision),
                   basis=basis, reasons=tuple(reasons), accountable=True,
                   documentation=Documentation(documentation),
                   client_notice=ClientNotice(notice), explanation="")


OWED = {"documentation": "missing", "notice": "missing"}
STEPS = [
    (finding("authorized", "Consent/c1"), False,
     ["disclose-within-authorization", "record-disclosure"]),
    (finding("permitted", "hipaa-164.524-access"), False, ["record-disclosure"]),
    (finding("permitted", "hipaa-164.506-treatment"), False, ["record-disclosure"]),
    (finding("permitted", "hipaa-164.506-payment"), False,
     ["minimum-necessary", "record-disclosure"]),
    (finding("permitted", "hipaa-164.506-operations"), False,
     ["minimum-necessary", "record-disclosure"]),
    (finding("permitted", "hipaa-164.506-emergency-treatment", **OWED), False,
     ["minimum-necessary", "inform-client", "document", "record-disclosure"]),
    (finding("permitted", "hipaa-164.512(j)-serious-threat", **OWED), False,
     ["notify-who-can-prevent-harm", "inform-client", "document", "record-disclosure"]),
    (finding("required", "duty-to-warn-or-protect", **OWED), False,
     ["warn-intended-victim", "notify-law-enforcement", "inform-client", "document",
      "record-disclosure"]),
    (finding("required", "abuse-report", **OWED), False,
     ["report-to-protective-services", "inform-client", "document", "record-disclosure"]),
    (finding("required", "hipaa-164.512(e)-court-order", **OWED), False,
     ["disclose-only-what-the-order-names", "inform-client", "document", "record-disclosure"]),
    (finding("unauthorized", reasons=["subpoena-without-court-order", "no-authorization"]),
     True, ["do-not-disclose", "consult-legal-counsel", "assert-privilege"]),
    (finding("unauthorized", reasons=["no-authorization"]), False, ["do-not-disclose"]),
    (finding("unauthorized", reasons=["no-authorization"]), True,
     ["do-not-disclose", "obtain-authorization"]),
    (finding("review", reasons=["legal-review-needed"]), False, ["consult-before-disclosing"]),
    (finding("review", reasons=["legal-review-needed"]), True,
     ["consult-before-disclosing", "obtain-authorization"]),
    # 1.4 rule: a minor's abuse report needs no notice: inform-client left out
    (finding("required", "abuse-report", documentation="missing"), False,
     ["report-to-protective-services", "document", "record-disclosure"]),
    # a winning serious-threat row beside a treatment basis: both added before the record
    (finding("permitted", "hipaa-164.506-treatment", **OWED), False,
     ["inform-client", "document", "record-disclosure"]),
]


@pytest.mark.parametrize(("got", "draftable", "want"), STEPS)
def test_the_steps_table_of_6_2(got, draftable, want):
    assert list(step_codes(RULES.guide, got, draftable)) == want


def test_every_step_scenario_and_recipient_has_words():
    assert missing_words(RULES.guide) == []
    for code in RULES.guide.step_codes():
        assert step_text(code).strip()


def test_the_duty_to_warn_steps_name_the_states_rule():
    place = RULES.jurisdiction("US-CA")
    assert "Cal. Civ. Code 43.92" in step_text("warn-intended-victim", place)
    assert "Cal. Civ. Code 43.92" in step_text("notify-law-enforcement", place)
    assert "{rule}" not in step_text("warn-intended-victim", None)


# ------------------------------------------------------------------------- answers end to end

CASES = [
    # scenario, extra resources, jurisdiction, extra proposal, decision, basis, steps
    ("threat-to-person", (), "US-CA", {}, "required", "duty-to-warn-or-protect",
     ["warn-intended-victim", "notify-law-enforcement", "inform-client", "document",
      "record-disclosure"]),
    ("threat-to-person", (), "US-TX", {}, "permitted", "hipaa-164.512(j)-serious-threat",
     ["notify-who-can-prevent-harm", "inform-client", "document", "record-disclosure"]),
    ("suicide-risk-imminent", (), None, {}, "permitted", "hipaa-164.512(j)-serious-threat",
     ["notify-who-can-prevent-harm", "inform-client", "document", "record-disclosure"]),
    ("child-abuse", (), None, {}, "required", "abuse-report",
     ["report-to-protective-services", "inform-client", "document", "record-disclosure"]),
    ("elder-or-dependent-adult-abuse", (), None, {}, "required", "abuse-report",
     ["report-to-protective-services", "inform-client", "document", "record-disclosure"]),
    ("subpoena", (instrument("DocumentReference/sub", "subpoena"),), None,
     {"instruments": ["DocumentReference/sub"]}, "unauthorized", None,
     ["do-not-disclose", "consult-legal-counsel", "assert-privilege"]),
    ("court-order", (instrument("DocumentReference/ord", "court-order"),), None,
     {"instruments": ["DocumentReference/ord"]}, "required", "hipaa-164.512(e)-court-order",
     ["disclose-only-what-the-order-names", "inform-client", "document", "record-disclosure"]),
    ("client-request", (), None, {}, "unauthorized", None,
     ["do-not-disclose", "obtain-authorization"]),
    ("client-request", (consent(),), None, {}, "authorized", "Consent/c1",
     ["disclose-within-authorization", "record-disclosure"]),
    ("emergency", (), None, {}, "permitted", "hipaa-164.506-emergency-treatment",
     ["minimum-necessary", "inform-client", "document", "record-disclosure"]),
    ("treatment-coordination", (), None, {}, "permitted", "hipaa-164.506-treatment",
     ["record-disclosure"]),
    ("billing", (), None, {}, "permitted", "hipaa-164.506-payment",
     ["minimum-necessary", "record-disclosure"]),
    ("consultation-or-supervision", (), None, {}, "permitted", "hipaa-164.506-operations",
     ["minimum-necessary", "record-disclosure"]),
]


@pytest.mark.parametrize(("scenario", "extra", "jurisdiction", "change", "decision", "basis",
                          "steps"), CASES, ids=[f"{c[0]}-{c[4]}" for c in CASES])
def test_each_scenario_of_6_4(scenario, extra, jurisdiction, change, decision, basis, steps):
    got = answer({"scenario": scenario, **change}, *extra, jurisdiction=jurisdiction)
    assert got.finding is not None
    assert (str(got.finding.decision), got.finding.basis) == (decision, basis)
    assert list(got.step_codes) == steps
    assert got.to_json()["finding"]["disclosure"] is None


def test_suicidal_ideation_without_a_plan_answers_no_finding():
    got = answer({"scenario": "suicidal-ideation-no-plan"}).to_json()
    assert got["finding"] is None
    assert [s["code"] for s in got["steps"]] == ["document-and-monitor"]
    assert got["can_draft_authorization"] is False


def test_every_scenario_of_the_contract_is_in_the_table():
    assert list(RULES.guide.scenarios) == [
        "suicidal-ideation-no-plan", "suicide-risk-imminent", "threat-to-person", "child-abuse",
        "elder-or-dependent-adult-abuse", "subpoena", "court-order", "client-request",
        "emergency", "treatment-coordination", "billing", "consultation-or-supervision"]
    purposes = {code: s.purposes for code, s in RULES.guide.scenarios.items()}
    assert purposes["threat-to-person"] == ("THREAT",)
    assert purposes["subpoena"] == ("HLEGAL",) and purposes["billing"] == ("HPAYMT",)


# ------------------------------------------------------------------------- can_draft

def test_draftable_needs_a_recipient_and_a_purpose():
    assert answer({"purposes": ["PATRQT"]}).can_draft_authorization is True
    assert answer({"purposes": ["PATRQT"], "recipient": None}).can_draft_authorization is False
    assert answer({"purposes": []}).can_draft_authorization is False  # review, no purpose


def test_not_draftable_when_an_active_consents_deny_matches():
    denying = consent(prov=provision(provisions=[nested("deny", recipients=(RECIPIENT,))]),
                      reference="Consent/c9")
    got = answer({"purposes": ["PATRQT"]}, denying)
    assert str(got.finding.decision) in ("unauthorized", "review")
    assert got.can_draft_authorization is False
    assert "obtain-authorization" not in got.step_codes


def test_not_draftable_when_a_restriction_matches():
    got = answer({"purposes": ["HPAYMT"]}, restriction())
    assert str(got.finding.decision) == "unauthorized"
    assert got.can_draft_authorization is False


def test_a_minors_abuse_report_owes_no_notice():
    from support.fhir import patient
    chart = [patient(birth_date="2015-01-01")]
    decide = evaluator(None, rules=RULES)
    read = read_proposal({"patient": PATIENT, "at": "2025-06-01T10:00:00Z",
                          "scenario": "child-abuse", "recipient": {"reference": RECIPIENT},
                          "data": [{"reference": DATA}]}, RULES, now=NOW)
    from support.fhir import document, organization
    got = check(bundle(chart, organization(), document()), read, decide, rules=RULES)
    assert got.finding.client_notice == "not-required"
    assert "inform-client" not in got.step_codes and "document" in got.step_codes


def test_described_data_is_resolved_and_narrowed():
    got = answer({"purposes": ["TREAT"], "data": [{"labels": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSYTHPN"}]}]})
    assert str(got.finding.decision) == "unauthorized"
    assert "psychotherapy-notes-need-specific-authorization" in got.finding.reasons


@pytest.mark.parametrize("item", [{}, {"description": "the letter we talked about"}])
def test_data_neither_referenced_nor_labelled_is_unresolved(item):
    got = answer({"purposes": ["TREAT"], "data": [item]})
    assert str(got.finding.decision) == "review"
    assert got.finding.reasons[0] == "data-unresolved"


def test_a_guardian_recipient_is_the_access_row():
    got = answer({"purposes": ["PATRQT"], "recipient": {"reference": "RelatedPerson/rp1"}},
                 related_person())
    assert got.finding.basis == "hipaa-164.524-access"
