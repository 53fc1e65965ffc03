"""The panel's view model on the example charts: bars from Consent periods, grouped reasons,
which actions apply, the banner."""

from __future__ import annotations

import json
from pathlib import Path

from consent_gap import wording
from consent_gap.evaluate import evaluate
from consent_gap.web.config import PANEL_SCOPES, WebConfig
from consent_gap.web.context import Launch
from consent_gap.web.view import (
    NO_WRITE_SCOPE,
    Action,
    _grouped,
    banner_of,
    build_view,
    permitted_actions,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"


def resources(name: str) -> list[dict]:
    return [e["resource"] for e in json.loads((EXAMPLES / name).read_text())["entry"]]


def launch(patient: str, banner: bool = True, scope: str = PANEL_SCOPES) -> Launch:
    return Launch(lid="L", iss="https://ehr.test/fhir", token_endpoint="t", patient=patient,
                  access_token="a", expires_at=0, need_patient_banner=banner, scope=scope)


def test_revoked_consent_is_a_revoked_bar_ending_at_its_revocation():
    data = resources("03-authorization-revoked.json")
    view = build_view(launch("p-mferris"), evaluate(data, "US-CA"),
                      WebConfig(jurisdiction="US-CA"))
    (bar,) = view.timeline.bars
    assert bar.ref == "Consent/c-mferris-family" and bar.state == "revoked"
    (row,) = view.authorizations
    assert row.period == "2025-01-15 to 2025-04-30" and row.state == "revoked"
    (item,) = view.findings
    assert item.finding.decision == "review"
    assert [g.reason for g in item.consents] == ["authorization-revoked"]
    assert item.reasons[0].code == "family-involvement-review"
    assert item.reasons[0].text == wording.reason("family-involvement-review")
    assert not item.can_alert  # no privacy officer configured
    counts = {c.decision: c.n for c in view.counts}
    assert counts == {"review": 1}  # zero counts are not shown


def test_missing_documentation_offers_the_draft_and_an_officer_enables_alerts():
    data = resources("07-duty-to-warn-tx.json")
    view = build_view(launch("p-lteague"), evaluate(data, "US-TX"),
                      WebConfig(jurisdiction="US-TX", privacy_officer="Practitioner/po"))
    (item,) = view.findings
    assert item.finding.documentation == "missing" and item.can_draft
    assert not item.can_notice  # the notice was sent
    assert not item.can_alert  # permitted: nothing to alert about
    assert view.banner is not None and view.banner.birth_date


def test_banner_only_when_the_ehr_asks():
    data = resources("07-duty-to-warn-tx.json")
    view = build_view(launch("p-lteague", banner=False), evaluate(data, "US-TX"),
                      WebConfig())
    assert view.banner is None
    assert banner_of(None, "Patient/nobody") is None


def test_reasons_group_consents_in_first_seen_order():
    groups = _grouped((("Consent/a", "authorization-expired"), ("Consent/b", None),
                       ("Consent/c", "authorization-expired")),
                      {"Consent/a": "A", "Consent/b": "B", "Consent/c": "C"})
    assert [(g.reason, g.refs) for g in groups] == [
        ("authorization-expired", ("A", "C")), ("", ("B",))]
    # a Consent whose name is not at hand is said in words, never by its id
    unnamed = _grouped((("Consent/a", "authorization-expired"),))
    assert unnamed[0].refs == ("an authorization on file",)
    assert groups[1].label == "it covers the disclosure"


def test_timeline_marks_match_the_findings_in_order():
    data = resources("02-authorization-expired.json")
    report = evaluate(data)
    view = build_view(launch("p-pnholt"), report, WebConfig())
    assert [m.anchor for m in view.timeline.marks] == [f.anchor for f in view.findings]
    assert [m.decision for m in view.timeline.marks] == [str(f.decision) for f in report.findings]


def test_banner_shows_the_official_name_normalize_read():
    data = resources("07-duty-to-warn-tx.json")
    view = build_view(launch("p-lteague"), evaluate(data, "US-TX"), WebConfig())
    assert view.banner is not None
    assert (view.banner.name, view.banner.birth_date, view.banner.gender) == (
        "Lucinda Marrow-Teague", "1990-04-12", "female")


def test_consent_label_is_its_narrative_as_plain_text():
    data = resources("03-authorization-revoked.json")
    (consent,) = [r for r in data if r["resourceType"] == "Consent"
                  and r["id"] == "c-mferris-family"]
    view = build_view(launch("p-mferris"), evaluate(data, "US-CA"), WebConfig())
    summaries = {row.ref: row.text for row in view.authorizations}
    label = summaries["Consent/c-mferris-family"]
    assert label and "<" not in label
    assert label.split()[0] in consent["text"]["div"]


def test_the_granted_scopes_decide_which_actions_show():
    """Each button needs create on what it writes, its Provenance and the app's Device."""
    assert permitted_actions(PANEL_SCOPES.split()) == frozenset(Action)
    assert permitted_actions(["patient/*.rs", "launch", "openid"]) == frozenset()
    assert permitted_actions(["patient/*.write"]) == frozenset(Action)  # SMART v1
    assert permitted_actions(["user/*.cruds"]) == frozenset(Action)
    no_device = ["patient/DocumentReference.c", "patient/Communication.c",
                 "patient/Provenance.c"]
    assert permitted_actions(no_device) == frozenset()
    notices_only = ["patient/Communication.c", "patient/Provenance.c", "patient/Device.c"]
    assert permitted_actions(notices_only) == {Action.CLIENT_NOTICE}
    # narrowed by a query: the server decides, so the app does not count it
    narrowed = ["patient/DocumentReference.c?category=x", "patient/Provenance.c",
                "patient/Device.c"]
    assert Action.DRAFT_NOTE not in permitted_actions(narrowed)


def test_a_read_only_token_shows_no_action_and_says_why():
    data = resources("07-duty-to-warn-tx.json")
    config = WebConfig(jurisdiction="US-TX", privacy_officer="Practitioner/po")
    view = build_view(launch("p-lteague", scope="launch openid patient/*.rs"),
                      evaluate(data, "US-TX"), config)
    (item,) = view.findings
    assert item.finding.documentation == "missing"
    assert not (item.can_draft or item.can_notice or item.can_alert)
    assert view.write_note == NO_WRITE_SCOPE
    assert build_view(launch("p-lteague"), evaluate(data, "US-TX"), config).write_note is None


def named_view(name: str, patient: str, state: str | None = None, written=None):
    """The panel's view as web/panel.py builds it: recipients read by read_released."""
    from consent_gap import normalize
    from consent_gap.mappings import load_rules

    data = resources(name)
    report = evaluate(data, state)
    rules = load_rules()
    releases = normalize.read_released(data, rules, [f.disclosure for f in report.findings])
    return build_view(launch(patient), report, WebConfig(jurisdiction=state), rules, releases,
                      written)


def test_the_panel_names_the_recipient_purpose_and_consent_never_their_ids():
    view = named_view("02-authorization-expired.json", "p-pnholt")
    (item,) = view.findings
    assert item.consents and view.timeline.bars and view.timeline.marks
    assert item.recipient and "/" not in item.recipient  # a name, not Organization/x
    assert item.finding.recipient and item.finding.recipient not in item.recipient
    assert item.purposes == "; ".join(wording.purpose(p) for p in item.finding.purposes)
    for group in item.consents:
        assert not any(ref.startswith("Consent/") for ref in group.refs)
    for trace in item.decided_by:
        assert "Consent/" not in trace.text
    for mark in view.timeline.marks:
        assert item.recipient in mark.title and "AuditEvent/" not in mark.title
    for bar in view.timeline.bars:
        assert not bar.label.startswith("Consent/")


def test_findings_needing_action_come_first_and_the_summary_says_so():
    from consent_gap.domain import Decision
    from consent_gap.web.view import ACTION_FIRST, action_first, counts, summary_line

    rank = [Decision.UNAUTHORIZED, Decision.REVIEW, Decision.REQUIRED, Decision.PERMITTED,
            Decision.AUTHORIZED]
    views = []
    for name, state in (("01-authorized-lawyer.json", None), ("09-subpoena-only.json", None),
                        ("06-duty-to-warn-ca.json", "US-CA"),
                        ("11-treatment-coordination.json", None)):
        report = evaluate(resources(name), state)
        patient = report.findings[0].patient.split("/", 1)[1]
        views += named_view(name, patient, state).findings
    ordered = action_first(reversed(views))
    first = [Decision(v.finding.decision) for v in ordered if v.pending]
    then = [Decision(v.finding.decision) for v in ordered if not v.pending]
    assert [v.pending for v in ordered] == sorted((v.pending for v in ordered), reverse=True)
    assert first == sorted(first, key=rank.index) and then == sorted(then, key=rank.index)
    decisions = first + then
    assert len(set(decisions)) >= 3
    shown = counts([v.finding for v in views])
    assert all(c.n for c in shown)  # zero counts hidden
    line = summary_line(shown)
    assert "owing" in summary_line(shown, 2)
    assert line.startswith("Needs action:")
    for c in shown:
        assert (f"{c.n} {c.label.lower()}" in line) == (c.decision in ACTION_FIRST)
    assert summary_line(()) == wording.PANEL_NO_DISCLOSURES


def test_a_draft_already_written_is_shown_instead_of_the_draft_button():
    from consent_gap import writeback
    from consent_gap.domain import Written

    plain = named_view("07-duty-to-warn-tx.json", "p-lteague", "US-TX")
    (item,) = plain.findings
    assert item.finding.documentation == "missing" and item.can_draft and item.draft is None
    value = writeback.identifier_value(item.finding, writeback.Kind.DOCUMENTATION_DRAFT)
    draft = Written("DocumentReference/d1", value, "preliminary", "2026-01-02T10:00:00Z")
    (item,) = named_view("07-duty-to-warn-tx.json", "p-lteague", "US-TX",
                         written={value: draft}).findings
    assert item.draft == draft and not item.can_draft
    assert plain.link("DocumentReference/d1") == "https://ehr.test/fhir/DocumentReference/d1"
    assert [label for label, _ in item.notes] == [wording.PANEL_DRAFT_NOTE]


def test_consents_the_engine_rejects_are_not_drawn():
    data = resources("13-npp-only-employer.json")
    report = evaluate(data)
    patient = report.findings[0].patient.split("/", 1)[1]
    view = named_view("13-npp-only-employer.json", patient)
    assert not view.timeline.bars and not view.authorizations
