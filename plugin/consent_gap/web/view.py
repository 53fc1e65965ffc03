"""What the panel template shows, built from the engine's report and the normalized chart.

Pure (no Flask, no I/O) so it can be tested on fixture bundles: counts by decision, the
timeline geometry, each finding with its readable reasons and the Consents checked, and which
actions apply to it.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from consent_gap import wording, writeback
from consent_gap.domain import (
    Authorization,
    ClientNotice,
    Decision,
    Documentation,
    Finding,
    Person,
    Problem,
    Releases,
    Written,
)
from consent_gap.engine import is_authorization
from consent_gap.evaluate import Report
from consent_gap.mappings import Rules
from consent_gap.smart.scopes import may_create
from consent_gap.wording import names as named
from consent_gap.wording import notes

from .config import WebConfig
from .context import Launch
from .timeline import DECISION_ORDER, STYLES, DecisionStyle, Span, Timeline, layout


class Action(StrEnum):
    """The panel's buttons (each a POST route of web/actions.py)."""

    DRAFT_NOTE = "draft-note"
    CLIENT_NOTICE = "client-notice"
    NOTIFY_OFFICER = "notify-officer"


#: What each button writes.
ACTION_KINDS: dict[Action, tuple[writeback.Kind, ...]] = {
    Action.DRAFT_NOTE: (writeback.Kind.DOCUMENTATION_DRAFT,),
    Action.CLIENT_NOTICE: (writeback.Kind.CLIENT_NOTICE,),
    Action.NOTIFY_OFFICER: (writeback.Kind.ALERT, writeback.Kind.FINDING_NOTE),
}

#: Shown when the token's scopes hide a button the chart would otherwise offer.
NO_WRITE_SCOPE = ("This sign-in does not let consent-gap write to the chart, so its actions are "
                  "hidden. Ask your EHR administrator to grant the app's write scopes.")


def permitted_actions(granted: Iterable[str]) -> frozenset[Action]:
    """The buttons whose writes the granted scopes allow (the app creates the resources, their
    Provenance and, inline, its Device): a button the EHR would refuse is never shown."""
    scopes = tuple(granted)
    return frozenset(action for action, kinds in ACTION_KINDS.items()
                     if may_create(scopes, writeback.created_types(kinds)))


@dataclass(frozen=True)
class Banner:
    name: str
    birth_date: str | None
    gender: str | None


@dataclass(frozen=True)
class Count:
    decision: str
    label: str
    symbol: str
    n: int


@dataclass(frozen=True)
class Reason:
    code: str
    text: str


@dataclass(frozen=True)
class ConsentsChecked:
    """The Consents a finding checked that failed for one reason (grouped: a chart with 30
    Consents and 200 disclosures would otherwise repeat 6,000 lines)."""

    reason: str
    label: str
    refs: tuple[str, ...]

    @property
    def refs_text(self) -> str:
        """Joined once here: a Jinja join escapes item by item (6,000 items on a big chart)."""
        return ", ".join(self.refs)


@dataclass(frozen=True)
class AuthorizationRow:
    """One Consent on file, listed once under the timeline."""

    ref: str
    period: str
    state: str
    text: str


@dataclass(frozen=True)
class FindingView:
    index: int
    anchor: str
    finding: Finding
    style: DecisionStyle
    occurred: str
    purposes: str
    reasons: tuple[Reason, ...]
    decided_by: tuple[Reason, ...]  # the trace: the Consent or the 1.3 row, then what turned it
    consents: tuple[ConsentsChecked, ...]
    consents_total: int
    recipient: str
    basis: str
    draft: Written | None  # the documentation draft already in the chart, unsigned
    alert: Written | None  # our alert to the privacy officer, when it exists
    notes: tuple[tuple[str, Written], ...]  # every note of ours about it, with its name
    can_draft: bool
    can_notice: bool
    can_alert: bool

    @property
    def pending(self) -> bool:
        return needs_action(self.finding)

    @property
    def draft_text(self) -> str:
        return wording.PANEL_DRAFT_WAITING

    @property
    def open_draft(self) -> str:
        return wording.PANEL_OPEN_DRAFT

    @property
    def alerted(self) -> str:
        when = (self.alert.when or "")[:10] if self.alert else ""
        return wording.PANEL_ALERTED.format(day=when or wording.PANEL_UNDATED)


@dataclass(frozen=True)
class PanelView:
    lid: str
    patient: str | None
    banner: Banner | None
    counts: tuple[Count, ...]
    timeline: Timeline
    authorizations: tuple[AuthorizationRow, ...]
    findings: tuple[FindingView, ...]  # unauthorized, review, required first (ACTION_FIRST)
    problems: tuple[Problem, ...]
    jurisdiction: str | None
    ruleset: str
    write_note: str | None = None  # NO_WRITE_SCOPE when the scopes hid an action
    fhir_base: str = ""  # the launch's issuer: links to the notes open there
    summary: str = ""  # the line at the top (summary_line)

    def link(self, reference: str) -> str:
        return f"{self.fhir_base.rstrip('/')}/{reference}"


#: The decisions a clinician or the officer must act on, listed first and never collapsed.
ACTION_FIRST = (Decision.UNAUTHORIZED, Decision.REVIEW, Decision.REQUIRED)


def counts(findings: list[Finding]) -> tuple[Count, ...]:
    """The decisions the chart has, in DECISION_ORDER (a zero count is not shown)."""
    tally = Counter(str(f.decision) for f in findings)
    return tuple(
        Count(str(d), STYLES[d].label, STYLES[d].symbol, tally[str(d)])
        for d in DECISION_ORDER if tally.get(str(d))
    )


def summary_line(shown: tuple[Count, ...], owed: int = 0) -> str:
    """The line at the top: what needs action (the decisions of ACTION_FIRST, and how many
    others still owe a note or a client notice), else that nothing does."""
    urgent = [f"{c.n} {c.label.lower()}" for c in shown if c.decision in ACTION_FIRST]
    if owed:
        urgent.append(wording.PANEL_OWED.format(n=owed))
    if not shown:
        return wording.PANEL_NO_DISCLOSURES
    if not urgent:
        return wording.PANEL_NOTHING_TO_DO.format(n=sum(c.n for c in shown))
    return wording.PANEL_NEEDS_ACTION.format(what=", ".join(urgent))


def needs_action(finding: Finding) -> bool:
    """Listed first and never collapsed: a decision to act on (ACTION_FIRST), or a note or a
    client notice still owed (CONTRACT 1.4), whatever the decision."""
    return (finding.decision in ACTION_FIRST
            or finding.documentation == Documentation.MISSING
            or finding.client_notice == ClientNotice.MISSING)


def action_first(views: Iterable[FindingView]) -> tuple[FindingView, ...]:
    """What needs action first, then the rest; each part by DECISION_ORDER (unauthorized,
    review, required, permitted, authorized), each decision in the report's order."""
    rank = {str(d): i for i, d in enumerate(DECISION_ORDER)}
    return tuple(sorted(views, key=lambda v: (not v.pending, rank[str(v.finding.decision)])))


def consent_name(auth: Authorization, summaries: dict[str, str],
                 dated: dict[str, str] | None = None) -> str:
    """A Consent as a person reads it: its narrative, else its kind and the day it was signed
    (`dated`: `wording.names.consents`, as the explanation names it), never its id."""
    if summaries.get(auth.reference):
        return summaries[auth.reference][:80]
    if dated and auth.reference in dated:
        return dated[auth.reference]
    if auth.signed_at:
        return wording.PANEL_AUTHORIZATION_SIGNED.format(day=auth.signed_at.date().isoformat())
    return wording.PANEL_AUTHORIZATION_UNDATED


def is_drawn(rules: Rules | None, auth: Authorization) -> bool:
    """Only what the engine takes as an authorization (check 1), active or revoked, is drawn
    and listed: a draft, a notice of privacy practices or a restriction is not."""
    return auth.status in ("active", "inactive") and (
        rules is None or is_authorization(rules, auth))


def spans_of(authorizations: list[Authorization], summaries: dict[str, str]) -> list[Span]:
    """One bar per Consent: the root provision's period; a revoked Consent without an end
    ends when it was last updated (CONTRACT 1.2 check 2)."""
    out = []
    ordered = sorted(authorizations,
                     key=lambda a: (a.signed_at is None, a.signed_at, a.reference))
    for auth in ordered:
        provision = auth.provision
        start = provision.start if provision else None
        end = provision.end if provision else None
        status = auth.status or "unknown"
        state = {"active": "active", "inactive": "revoked"}.get(status, "other")
        if state == "revoked" and end is None:
            end = auth.last_updated
        start = start or auth.signed_at
        label = consent_name(auth, summaries)
        out.append(Span(auth.reference, label, start, end, state))
    return out


def _grouped(checked: tuple[tuple[str, str | None], ...],
             names: dict[str, str] | None = None) -> tuple[ConsentsChecked, ...]:
    """Grouped by reason; each Consent by its name (consent_name) where the chart has it."""
    names = names or {}
    groups: dict[str, list[str]] = {}
    for ref, reason in checked:
        groups.setdefault(reason or "", []).append(names.get(ref, wording.CONSENT_UNKNOWN))
    return tuple(
        ConsentsChecked(reason, wording.reason(reason) if reason else notes.CONSENT_COVERS,
                        tuple(refs))
        for reason, refs in groups.items()
    )


def authorization_rows(spans: list[Span],
                       summaries: dict[str, str]) -> tuple[AuthorizationRow, ...]:
    def day(when) -> str:
        return when.strftime("%Y-%m-%d") if when else "open"

    return tuple(
        AuthorizationRow(s.ref, f"{day(s.start)} to {day(s.end)}", s.state, s.label)
        for s in spans
    )


def called_for(finding: Finding, officer: bool) -> frozenset[Action]:
    """The buttons a finding calls for, whatever the scopes: a draft where documentation is
    missing, a notice record where the client notice is, an alert for a flagged disclosure
    when there is a privacy officer to alert."""
    wanted = set()
    if finding.documentation == Documentation.MISSING:
        wanted.add(Action.DRAFT_NOTE)
    if finding.client_notice == ClientNotice.MISSING:
        wanted.add(Action.CLIENT_NOTICE)
    if officer and finding.decision in (Decision.UNAUTHORIZED, Decision.REVIEW):
        wanted.add(Action.NOTIFY_OFFICER)
    return frozenset(wanted)


@dataclass(frozen=True)
class Names:
    """What the panel calls the chart's things: recipients (read by normalize.read_released),
    Consents (consent_name) and what consent-gap wrote before (normalize.written)."""

    releases: Releases
    consents: dict[str, str]
    written: dict[str, Written]

    def recipient(self, finding: Finding) -> str:
        released = self.releases.disclosures.get(finding.disclosure)
        if released is not None and released.recipient.name:
            return released.recipient.name
        party = self.releases.parties.get(finding.recipient or "")
        return party.name if party is not None and party.name else wording.PANEL_UNNAMED

    def basis(self, finding: Finding) -> str:
        code = finding.basis
        if not code:
            return wording.PANEL_NO_BASIS
        if code.startswith("Consent/"):
            return self.consents.get(code, wording.CONSENT_UNKNOWN)
        return wording.basis(code)

    def trace(self, item: str) -> str:
        if item.startswith("Consent/"):
            return wording.trace(item, self.consents.get(item))
        return wording.trace(item)

    def ours(self, finding: Finding, kind: writeback.Kind) -> Written | None:
        return self.written.get(writeback.identifier_value(finding, kind))


def _finding_view(index: int, finding: Finding, actions: frozenset[Action],
                  names: Names) -> FindingView:
    decision = Decision(finding.decision)
    draft = names.ours(finding, writeback.Kind.DOCUMENTATION_DRAFT)
    alert = names.ours(finding, writeback.Kind.ALERT)
    note = names.ours(finding, writeback.Kind.FINDING_NOTE)
    if draft is not None and draft.status != "preliminary":
        draft = None
    return FindingView(
        index=index,
        anchor=f"finding-{index}",
        finding=finding,
        style=STYLES[decision],
        occurred=finding.occurred.replace("T", " ").replace("Z", " UTC"),
        purposes="; ".join(wording.purpose(p) for p in finding.purposes)
        or wording.PANEL_NO_PURPOSE,
        reasons=tuple(Reason(code, wording.reason(code)) for code in finding.reasons),
        decided_by=tuple(Reason(item, names.trace(item)) for item in finding.decided_by),
        consents=_grouped(finding.consents_checked, names.consents),
        consents_total=len(finding.consents_checked),
        recipient=names.recipient(finding),
        basis=names.basis(finding),
        draft=draft,
        alert=alert,
        notes=tuple((label, w) for label, w in ((wording.PANEL_DRAFT_NOTE, draft),
                                                 (wording.PANEL_NOTE, note)) if w is not None),
        can_draft=Action.DRAFT_NOTE in actions and draft is None,
        can_notice=Action.CLIENT_NOTICE in actions,
        can_alert=Action.NOTIFY_OFFICER in actions and (alert is None or note is None),
    )


def build_view(launch: Launch, report: Report, config: WebConfig,
               rules: Rules | None = None, releases: Releases | None = None,
               written: dict[str, Written] | None = None) -> PanelView:
    """The panel's content for one launch: `releases` (normalize.read_released) names the
    recipients, `written` (normalize.written) is what consent-gap wrote before."""
    patient_ref = launch.patient_ref
    chart = report.charts.get(patient_ref)
    consents = list(chart.consents) if chart else []
    summaries = consent_summaries(consents)
    dated = named.consents(consents, (lambda a: is_authorization(rules, a)) if rules else None)
    names = Names(releases or Releases(), {a.reference: consent_name(a, summaries, dated)
                                           for a in consents}, written or {})
    authorizations = [a for a in consents if is_drawn(rules, a)]
    spans = spans_of(authorizations, summaries)
    findings = list(report.findings)
    allowed = permitted_actions(launch.scopes)
    wanted = [called_for(f, bool(config.privacy_officer)) for f in findings]
    hidden = any(actions - allowed for actions in wanted)
    shown = counts(findings)
    return PanelView(
        lid=launch.lid,
        patient=patient_ref,
        banner=banner_of(chart.patient if chart else None, patient_ref)
        if launch.need_patient_banner else None,
        counts=shown,
        timeline=layout(findings, spans, names=[names.recipient(f) for f in findings]),
        authorizations=authorization_rows(spans, summaries),
        findings=action_first(
            _finding_view(i, f, actions & allowed, names)
            for i, (f, actions) in enumerate(zip(findings, wanted, strict=True), start=1)),
        summary=summary_line(shown, sum(1 for f in findings if needs_action(f)
                                        and f.decision not in ACTION_FIRST)),
        problems=tuple(report.problems),
        jurisdiction=config.jurisdiction,
        ruleset=report.ruleset,
        write_note=NO_WRITE_SCOPE if hidden else None,
        fhir_base=launch.iss or "",
    )


# ---- display text: the patient's name for the banner, a Consent's narrative for its label
# ---- (read by normalize.py; text only, never decides anything).

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _plain(text: str, limit: int = 160) -> str:
    """Narrative XHTML as plain text: tags dropped, then its entities decoded (`&amp;` is
    `&`), so the template's autoescape escapes each character once, never `&amp;amp;`."""
    flat = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def consent_summaries(authorizations: list[Authorization]) -> dict[str, str]:
    return {a.reference: _plain(a.narrative) for a in authorizations
            if a.narrative and a.narrative.strip()}


def banner_of(person: Person | None, patient_ref: str | None) -> Banner | None:
    if person is None:
        return None
    birth = person.birth_date.isoformat() if person.birth_date else None
    return Banner(person.name or wording.PANEL_CLIENT_UNNAMED, birth, person.gender)
