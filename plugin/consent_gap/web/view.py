"""What the panel template shows, built from the engine's report and the normalized chart.

Pure (no Flask, no I/O) so it can be tested on fixture bundles: counts by decision, the
timeline geometry, each finding with its readable reasons and the Consents checked, and which
actions apply to it.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass

from consent_gap import RULESET
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

from .config import WebConfig
from .context import Launch
from .timeline import DECISION_ORDER, STYLES, DecisionStyle, Span, Timeline, layout

REASON_TEXT = {
    "no-authorization": "no signed authorization on file",
    "not-an-authorization": "the Consent is not a disclosure authorization",
    "authorization-not-active": "the authorization was not active",
    "authorization-revoked": "the authorization had been revoked",
    "authorization-unsigned": "the authorization is not signed",
    "authorization-not-yet-valid": "the authorization was not yet valid",
    "authorization-expired": "the authorization had expired",
    "authorizer-not-permitted": "the signer could not authorize for this client",
    "minor-self-authorization": "a minor signed alone",
    "recipient-not-covered": "the recipient is not named",
    "purpose-not-covered": "the purpose is not covered",
    "data-not-covered": "the information disclosed is not covered",
    "psychotherapy-notes-need-specific-authorization":
        "psychotherapy notes need their own authorization",
    "part2-consent-required": "substance-use (Part 2) records need a Part 2 consent",
    "denied-by-provision": "the authorization explicitly denies this",
    "authorization-incomplete": "the authorization lacks a required element",
    "restricted-by-patient": "the client restricted this disclosure",
    "data-unresolved": "what was disclosed cannot be determined",
    "subpoena-without-court-order": "a subpoena alone does not permit disclosure",
    "legal-review-needed": "needs legal review",
    "family-involvement-review": "family involvement needs review",
    "recipient-not-a-provider": "the recipient is not a care provider",
    "purpose-unmapped": "the purpose is not one the rules know",
    "purpose-missing": "no purpose was recorded",
}


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
        ConsentsChecked(reason, REASON_TEXT.get(reason, reason) if reason else "covers it",
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


def _finding_view(index: int, finding: Finding, officer: bool) -> FindingView:
    decision = Decision(finding.decision)
    return FindingView(
        index=index,
        anchor=f"finding-{index}",
        finding=finding,
        style=STYLES[decision],
        occurred=finding.occurred.replace("T", " ").replace("Z", " UTC"),
        purposes=", ".join(finding.purposes) or "none recorded",
        reasons=tuple(Reason(code, REASON_TEXT.get(code, "")) for code in finding.reasons),
        consents=_grouped(finding.consents_checked),
        consents_total=len(finding.consents_checked),
        can_draft=finding.documentation == Documentation.MISSING,
        can_notice=finding.client_notice == ClientNotice.MISSING,
        can_alert=officer and decision in (Decision.UNAUTHORIZED, Decision.REVIEW),
    )


def build_view(launch: Launch, report: Report, config: WebConfig) -> PanelView:
    """The panel's content for one launch."""
    patient_ref = launch.patient_ref
    chart = report.charts.get(patient_ref)
    authorizations = list(chart.consents) if chart else []
    summaries = consent_summaries(authorizations)
    spans = spans_of(authorizations, summaries)
    findings = list(report.findings)
    return PanelView(
        lid=launch.lid,
        patient=patient_ref,
        banner=banner_of(chart.patient if chart else None, patient_ref)
        if launch.need_patient_banner else None,
        counts=counts(findings),
        timeline=layout(findings, spans),
        authorizations=authorization_rows(spans, summaries),
        findings=tuple(
            _finding_view(i, f, bool(config.privacy_officer))
            for i, f in enumerate(findings, start=1)
        ),
        problems=tuple(report.problems),
        jurisdiction=config.jurisdiction,
        ruleset=RULESET,
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
