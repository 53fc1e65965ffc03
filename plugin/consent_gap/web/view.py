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
)
from consent_gap.evaluate import Report
from consent_gap.smart.scopes import may_create
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
    can_draft: bool
    can_notice: bool
    can_alert: bool


@dataclass(frozen=True)
class PanelView:
    lid: str
    patient: str | None
    banner: Banner | None
    counts: tuple[Count, ...]
    timeline: Timeline
    authorizations: tuple[AuthorizationRow, ...]
    findings: tuple[FindingView, ...]
    problems: tuple[Problem, ...]
    jurisdiction: str | None
    ruleset: str
    write_note: str | None = None  # NO_WRITE_SCOPE when the scopes hid an action


def counts(findings: list[Finding]) -> tuple[Count, ...]:
    tally = Counter(str(f.decision) for f in findings)
    return tuple(
        Count(str(d), STYLES[d].label, STYLES[d].symbol, tally.get(str(d), 0))
        for d in DECISION_ORDER
    )


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
        label = auth.reference
        if summaries.get(auth.reference):
            label = f"{auth.reference} ({summaries[auth.reference][:80]})"
        out.append(Span(auth.reference, label, start, end, state))
    return out


def _grouped(checked: tuple[tuple[str, str | None], ...]) -> tuple[ConsentsChecked, ...]:
    groups: dict[str, list[str]] = {}
    for ref, reason in checked:
        groups.setdefault(reason or "", []).append(ref)
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
        AuthorizationRow(s.ref, f"{day(s.start)} to {day(s.end)}", s.state,
                         summaries.get(s.ref, ""))
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


def _finding_view(index: int, finding: Finding, actions: frozenset[Action]) -> FindingView:
    decision = Decision(finding.decision)
    return FindingView(
        index=index,
        anchor=f"finding-{index}",
        finding=finding,
        style=STYLES[decision],
        occurred=finding.occurred.replace("T", " ").replace("Z", " UTC"),
        purposes=", ".join(finding.purposes) or "none recorded",
        reasons=tuple(Reason(code, wording.reason(code)) for code in finding.reasons),
        decided_by=tuple(Reason(item, wording.trace(item)) for item in finding.decided_by),
        consents=_grouped(finding.consents_checked),
        consents_total=len(finding.consents_checked),
        can_draft=Action.DRAFT_NOTE in actions,
        can_notice=Action.CLIENT_NOTICE in actions,
        can_alert=Action.NOTIFY_OFFICER in actions,
    )


def build_view(launch: Launch, report: Report, config: WebConfig) -> PanelView:
    """The panel's content for one launch."""
    patient_ref = launch.patient_ref
    chart = report.charts.get(patient_ref)
    authorizations = list(chart.consents) if chart else []
    summaries = consent_summaries(authorizations)
    spans = spans_of(authorizations, summaries)
    findings = list(report.findings)
    allowed = permitted_actions(launch.scopes)
    wanted = [called_for(f, bool(config.privacy_officer)) for f in findings]
    hidden = any(actions - allowed for actions in wanted)
    return PanelView(
        lid=launch.lid,
        patient=patient_ref,
        banner=banner_of(chart.patient if chart else None, patient_ref)
        if launch.need_patient_banner else None,
        counts=counts(findings),
        timeline=layout(findings, spans),
        authorizations=authorization_rows(spans, summaries),
        findings=tuple(_finding_view(i, f, actions & allowed)
                       for i, (f, actions) in enumerate(zip(findings, wanted, strict=True),
                                                        start=1)),
        problems=tuple(report.problems),
        jurisdiction=config.jurisdiction,
        ruleset=report.ruleset,
        write_note=NO_WRITE_SCOPE if hidden else None,
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
    return Banner(person.name or patient_ref or person.reference, birth, person.gender)
