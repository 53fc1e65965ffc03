"""wording: one home for the words of every code, and a code without words stops the start."""

from __future__ import annotations

import re

import pytest
from consent_gap import wording
from consent_gap.domain import (
    REASON_CODES,
    ClientNotice,
    Conclusion,
    Decision,
    Disposition,
    Documentation,
    Scenario,
    Step,
)
from consent_gap.mappings import MappingsError, load_rules
from tablecopy import edit

CONTRACT_STEPS = {  # CONTRACT 6.2's table, every code it names
    "disclose-within-authorization", "record-disclosure", "minimum-necessary", "inform-client",
    "document", "notify-who-can-prevent-harm", "warn-intended-victim", "notify-law-enforcement",
    "report-to-protective-services", "disclose-only-what-the-order-names", "do-not-disclose",
    "consult-legal-counsel", "assert-privilege", "obtain-authorization",
    "consult-before-disclosing", "document-and-monitor",
}
CONTRACT_BASES = {  # CONTRACT 1.3's basis column
    "hipaa-164.524-access", "hipaa-164.506-treatment", "hipaa-164.506-payment",
    "hipaa-164.506-operations", "hipaa-164.506-emergency-treatment", "duty-to-warn-or-protect",
    "hipaa-164.512(j)-serious-threat", "abuse-report", "hipaa-164.512(e)-court-order",
}


def test_the_contracts_code_sets_are_the_products():
    assert {str(s) for s in Step} == CONTRACT_STEPS
    assert {str(s) for s in Scenario} == {
        "suicidal-ideation-no-plan", "suicide-risk-imminent", "threat-to-person", "child-abuse",
        "elder-or-dependent-adult-abuse", "subpoena", "court-order", "client-request",
        "emergency", "treatment-coordination", "billing", "consultation-or-supervision"}
    assert {str(d) for d in Disposition} == {
        "authorization-on-file", "documentation-completed", "not-a-disclosure",
        "breach-assessment"}
    assert {str(c) for c in Conclusion} == {"low-probability", "breach"}


def test_every_code_has_plain_words_not_the_code_itself():
    rules = load_rules()
    rows = (rules.exceptions.access, *rules.exceptions.rows, rules.exceptions.other_purpose,
            rules.exceptions.no_purpose)
    words = (
        [wording.reason(c) for c in REASON_CODES]
        + [wording.basis(c) for c in CONTRACT_BASES]
        + [wording.rule(row.id) for row in rows]
        + [wording.decision(d) for d in Decision]
        + [wording.documentation(d) for d in Documentation]
        + [wording.client_notice(n) for n in ClientNotice]
        + [wording.step(s) for s in Step]
        + [wording.scenario(s).label for s in Scenario]
        + [wording.disposition(d).label for d in Disposition]
        + [wording.disposition(d).effect for d in Disposition]
        + [wording.conclusion(c) for c in Conclusion]
    )
    for text in words:
        assert text.strip() and not re.fullmatch(r"[a-z0-9().-]+", text), text
    # one phrase per reason: two codes never read the same
    assert len({wording.reason(c) for c in REASON_CODES}) == len(REASON_CODES)
    assert wording.unworded(rules) == []


def test_an_unknown_code_raises_instead_of_showing_blank():
    with pytest.raises(wording.WordingError, match="no-such-reason"):
        wording.reason("no-such-reason")
    with pytest.raises(wording.WordingError):
        wording.step("no-such-step")
    with pytest.raises(wording.WordingError):
        wording.basis("hipaa-999")


def test_a_product_code_without_words_fails_the_import_check(monkeypatch):
    monkeypatch.delitem(wording.STEPS, Step.ASSERT_PRIVILEGE)
    with pytest.raises(wording.WordingError, match="step 'assert-privilege'"):
        wording._check_own()
    monkeypatch.undo()
    monkeypatch.delitem(wording.REASONS, "purpose-missing")
    with pytest.raises(wording.WordingError, match="reason 'purpose-missing'"):
        wording._check_own()


def test_a_basis_the_tables_use_without_words_stops_the_start(folder):
    edit(folder, "exceptions.toml", 'basis = "hipaa-164.506-payment"',
         'basis = "state-billing-statute"')
    with pytest.raises(MappingsError, match=r"exceptions.toml: row 'payment': basis "
                                            r"'state-billing-statute' has no wording"):
        load_rules(folder)


def test_a_rule_row_without_words_stops_the_start(folder):
    edit(folder, "exceptions.toml", 'id = "government"', 'id = "government-agency"')
    with pytest.raises(MappingsError, match="rule id 'government-agency' has no wording"):
        load_rules(folder)


def test_steps_of_a_duty_to_warn_name_the_states_rule():
    note = "Cal. Civ. Code 43.92: warn the victim and notify law enforcement."
    assert wording.step(Step.WARN_INTENDED_VICTIM, note).endswith(note)
    assert wording.step(Step.NOTIFY_LAW_ENFORCEMENT, note).endswith(note)
    assert note not in wording.step(Step.DOCUMENT, note)
    assert "{rule}" not in wording.step(Step.WARN_INTENDED_VICTIM)
    assert "{" not in "".join(wording.step(s) for s in Step)


def test_the_guide_has_no_words_of_its_own_for_steps_or_scenarios():
    """One home: the guide's step and scenario words are wording's, and the loader refuses a
    guide table whose step, scenario or recipient has no words."""
    from consent_gap.wording import guide

    assert not hasattr(guide, "STEP_TEXT")
    assert guide.step_text(Step.DOCUMENT) == wording.step(Step.DOCUMENT)
    assert {c: wording.scenario(c).label for c in Scenario} == guide.SCENARIO_TEXT
    assert guide.LABEL_TEXT is wording.LABELS


def test_a_guide_recipient_without_words_stops_the_start(monkeypatch):
    from consent_gap.wording import guide

    rules = load_rules()
    code = next(iter(guide.RECIPIENT_TEXT))
    monkeypatch.delitem(guide.RECIPIENT_TEXT, code)
    assert f"guide.toml: recipient {code} has no wording" in wording.unworded(rules)


def test_the_seeds_five_elements_are_the_document_step():
    text = wording.step(Step.DOCUMENT)
    for element in ("nature of the threat or situation", "who was informed and why",
                    "how the client responded", "supporting evidence or consultations",
                    "steps taken to minimise harm"):
        assert element in text


def test_every_kind_of_write_has_words_and_a_missing_one_stops_the_import(monkeypatch):
    from consent_gap.writeback import Kind

    assert all(wording.kind(k) for k in Kind)
    monkeypatch.delitem(wording.KINDS, "alert")
    with pytest.raises(wording.WordingError, match="kind of write 'alert'"):
        wording.require(wording.KINDS, Kind, "kind of write")


def test_the_accountings_ground_for_a_basis_is_required_too(monkeypatch):
    rules = load_rules()
    monkeypatch.delitem(wording.GROUNDS, "abuse-report")
    assert wording.unworded(rules) == [
        "exceptions.toml: row 'abuse-report': basis 'abuse-report' has no wording as a ground"]
    monkeypatch.undo()
    monkeypatch.delitem(wording.PURPOSES, "GOV")
    assert wording.unworded(rules) == ["exceptions.toml: row 'government': purpose 'GOV' has "
                                       "no wording"]
    assert wording.purpose("GOV") == "for the purpose recorded as GOV"  # data may carry any
