"""Before a disclosure (CONTRACT 6): a proposal read and refused, decided, and answered with
the steps.

A proposal is a disclosure that has not happened yet. It is decided by the one pipeline every
caller uses: writeback.records builds the AuditEvent that recording it would write (6.3), the
chart plus that AuditEvent goes through `evaluate`, and the finding for it is the answer (no
second engine). Then the steps of 6.2 come from the table in mappings/guide.toml and their
words from wording.guide. Pure: no I/O, no clock (the caller passes `now`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consent_gap.domain import ClientNotice, Coding, Decision, Documentation, Finding
from consent_gap.mappings import GuideTables, Jurisdiction, Rules, Scenario, StepRow
from consent_gap.normalize import Unreadable, format_instant, parse_instant

#: The steps the 1.4 rule of 6.2 adds or removes, and the one they go before.
INFORM, DOCUMENT, RECORD = "inform-client", "document", "record-disclosure"
#: What an answer that matches no row of the steps table says (a practice's own tables).
FALLBACK_STEPS = ("consult-before-disclosing",)

_RELATIVE = re.compile(r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}")
_ABSOLUTE = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?/([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})"
                       r"(/_history/[A-Za-z0-9\-.]{1,64})?")


class ProposalError(ValueError):
    """A proposal that is not valid: one line naming the field (exit 2 / HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """To whom: a reference, an identifier (system|value, with a display), or both."""

    reference: str | None = None
    system: str | None = None
    value: str | None = None
    display: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.reference:
            out["reference"] = self.reference
        if self.value:
            out["identifier"] = {"system": self.system, "value": self.value}
        if self.display:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True)
class DataItem:
    """One thing disclosed: a reference, labels (data described), or both."""

    reference: str | None = None
    labels: tuple[Coding, ...] = ()
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.reference:
            out["reference"] = self.reference
        if self.labels:
            out["labels"] = [{"system": s, "code": c} for s, c in self.labels]
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Proposal:
    """A disclosure not yet made (6.1), read and checked."""

    patient: str
    at: datetime
    scenario: str | None = None
    recipient: Recipient | None = None
    purposes: tuple[str, ...] = ()
    data: tuple[DataItem, ...] = ()
    instruments: tuple[str, ...] = ()

    @property
    def labels(self) -> frozenset[Coding]:
        return frozenset(code for item in self.data for code in item.labels)

    def to_json(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "at": format_instant(self.at),
            **({"scenario": self.scenario} if self.scenario else {}),
            **({"recipient": self.recipient.to_json()} if self.recipient else {}),
            "purposes": list(self.purposes),
            "data": [item.to_json() for item in self.data],
            "instruments": list(self.instruments),
        }


# ------------------------------------------------------------------------------ reading

def is_reference(value: Any) -> bool:
    """`Type/id`, or an absolute FHIR URL ending in `Type/id` (6.1)."""
    return isinstance(value, str) and bool(_RELATIVE.fullmatch(value) or _ABSOLUTE.fullmatch(value))


def reference_type(value: str) -> str:
    """The resource type a valid reference names."""
    match = _ABSOLUTE.fullmatch(value)
    return match.group(2) if match else value.split("/", 1)[0]


def same_resource(a: str, b: str) -> bool:
    """Two valid references to one resource (`Type/id` against an absolute URL's tail)."""
    def tail(ref: str) -> str:
        match = _ABSOLUTE.fullmatch(ref)
        return f"{match.group(2)}/{match.group(3)}" if match else ref
    return tail(a) == tail(b)


def _reference(value: Any, where: str, *, rtype: str | None = None) -> str:
    if not is_reference(value):
        raise ProposalError(f"{where}: {value!r} is not a reference (Type/id or an absolute "
                            "FHIR URL)")
    if rtype is not None and reference_type(value) != rtype:
        raise ProposalError(f"{where}: must reference a {rtype}, not {value!r}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProposalError(f"{where}: must be a non-empty string")
    return value.strip()


def _recipient(value: Any) -> Recipient | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProposalError("recipient: must be an object with a reference and/or an identifier")
    reference = value.get("reference")
    if reference is not None:
        _reference(reference, "recipient.reference")
    identifier = value.get("identifier")
    system = code = None
    if identifier is not None:
        if not isinstance(identifier, dict):
            raise ProposalError("recipient.identifier: must be an object with system and value")
        system = _text(identifier.get("system"), "recipient.identifier.system")
        code = _text(identifier.get("value"), "recipient.identifier.value")
    if reference is None and identifier is None:
        raise ProposalError("recipient: needs a reference or an identifier")
    display = value.get("display")
    if display is not None:
        display = _text(display, "recipient.display")
    return Recipient(reference, system, code, display)


def _labels(value: Any, where: str) -> tuple[Coding, ...]:
    if not isinstance(value, list):
        raise ProposalError(f"{where}: must be a list of codings")
    out = []
    for i, label in enumerate(value):
        if not isinstance(label, dict):
            raise ProposalError(f"{where}[{i}]: must be a coding with system and code")
        out.append((_text(label.get("system"), f"{where}[{i}].system"),
                    _text(label.get("code"), f"{where}[{i}].code")))
    return tuple(dict.fromkeys(out))


def _data(value: Any) -> tuple[DataItem, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProposalError("data: must be a list")
    items = []
    for i, item in enumerate(value):
        where = f"data[{i}]"
        if not isinstance(item, dict):
            raise ProposalError(f"{where}: must be an object with a reference and/or labels")
        reference = item.get("reference")
        if reference is not None:
            _reference(reference, f"{where}.reference")
        labels = _labels(item["labels"], f"{where}.labels") if "labels" in item else ()
        # Neither a reference nor labels: data the record cannot identify (an unresolved
        # entity, 1.1), decided as evaluate decides such an entity, not refused.
        description = item.get("description")
        if description is not None:
            description = _text(description, f"{where}.description")
        items.append(DataItem(reference, labels, description))
    return tuple(items)


def _purposes(value: Any, rules: Rules) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProposalError("purposes: must be a list of v3-ActReason codes")
    for i, code in enumerate(value):
        if not isinstance(code, str) or not rules.purposes.known(code):
            raise ProposalError(f"purposes[{i}]: unknown purpose code {code!r} "
                                "(a v3-ActReason purpose of use, such as THREAT)")
    return tuple(dict.fromkeys(value))


def read_proposal(data: Any, rules: Rules, *, now: datetime,
                  patient: str | None = None) -> Proposal:
    """The proposal of 6.1, or ProposalError naming the field.

    `patient` is the launched patient (the app): the proposal may omit it and may not name
    another. Without it (the CLI) the proposal must name one, and `check` refuses a patient
    the chart does not hold."""
    if not isinstance(data, dict):
        raise ProposalError("proposal: must be a JSON object")
    guide = _tables(rules)
    named = data.get("patient")
    if named is None and patient is None:
        raise ProposalError("patient: required (Patient/<id>)")
    if named is not None:
        _reference(named, "patient", rtype="Patient")
    if patient is not None and named is not None and not same_resource(named, patient):
        raise ProposalError(f"patient: {named!r} is not the launched patient")
    chosen = patient if patient is not None else named
    at = now
    if data.get("at") is not None:
        try:
            at = parse_instant(data["at"], "at")
        except Unreadable:
            raise ProposalError(f"at: {data['at']!r} is not a date-time (e.g. "
                                "2026-12-02T15:00:00Z)") from None
    scenario = data.get("scenario")
    if scenario is not None and scenario not in guide.scenarios:
        raise ProposalError(f"scenario: unknown scenario {scenario!r} (one of "
                            f"{', '.join(guide.scenarios)})")
    purposes = _purposes(data.get("purposes"), rules)
    if not purposes and scenario is not None:
        purposes = guide.scenarios[scenario].purposes
    instruments = data.get("instruments") or []
    if not isinstance(instruments, list):
        raise ProposalError("instruments: must be a list of DocumentReference references")
    for i, ref in enumerate(instruments):
        _reference(ref, f"instruments[{i}]", rtype="DocumentReference")
    return Proposal(patient=chosen, at=at, scenario=scenario,
                    recipient=_recipient(data.get("recipient")), purposes=purposes,
                    data=_data(data.get("data")), instruments=tuple(dict.fromkeys(instruments)))


def _tables(rules: Rules) -> GuideTables:
    if rules.guide is None:  # only a hand-built Rules lacks them; load_rules always reads one
        raise ProposalError("the guide's tables (mappings/guide.toml) are not loaded")
    return rules.guide


# ------------------------------------------------------------------------------ the answer

@dataclass(frozen=True)
class Step:
    code: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text}


@dataclass(frozen=True)
class Answer:
    """6.2's answer, plus what the panel shows beside it (not part of the JSON)."""

    finding: Finding | None
    steps: tuple[Step, ...]
    can_draft_authorization: bool
    proposal: Proposal | None = None
    audit_event: dict[str, Any] | None = field(default=None, repr=False)
    jurisdiction: Jurisdiction | None = None
    # the run's Report (the chart as normalized, for the page's details); not in the JSON
    report: Any = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        finding = None
        if self.finding is not None:  # not yet made: it has no record to name (6.2)
            finding = {**self.finding.to_json(), "disclosure": None}
        return {
            "finding": finding,
            "steps": [s.to_json() for s in self.steps],
            "can_draft_authorization": self.can_draft_authorization,
        }

    @property
    def disclosed_labels(self) -> frozenset[Coding] | None:
        """The counted labels of the data as the engine read it (proposal and chart)."""
        if self.report is None or self.audit_event is None:
            return None
        disclosure = self.report.disclosures.get(f"AuditEvent/{self.audit_event.get('id')}")
        if disclosure is None:
            return None
        return frozenset(code for e in disclosure.entities for code in e.labels)

    @property
    def step_codes(self) -> tuple[str, ...]:
        return tuple(s.code for s in self.steps)


def _row(rows: Iterable[StepRow], finding: Finding) -> StepRow | None:
    for row in rows:
        if row.decision != finding.decision:
            continue
        if row.basis is not None and finding.basis not in row.basis:
            continue
        if row.reason is not None and row.reason not in finding.reasons:
            continue
        return row
    return None


def step_codes(tables: GuideTables, finding: Finding, can_draft: bool) -> tuple[str, ...]:
    """6.2's steps: the first matching row, then inform-client and document exactly where
    1.4 owes the notice and the documentation (removed where it does not, added before
    record-disclosure where the row lacks them)."""
    row = _row(tables.steps, finding)
    codes = list(row.steps) if row is not None else list(FALLBACK_STEPS)
    owed = {INFORM: finding.client_notice is not ClientNotice.NOT_REQUIRED,
            DOCUMENT: finding.documentation is not Documentation.NOT_REQUIRED}
    codes = [c for c in codes if owed.get(c, True)]
    for code in (INFORM, DOCUMENT):
        if owed[code] and code not in codes:
            at = codes.index(RECORD) if RECORD in codes else len(codes)
            codes.insert(at, code)
    if row is not None and can_draft:
        codes += [c for c in row.if_draftable if c not in codes]
    return tuple(codes)


def with_words(codes: Iterable[str], place: Jurisdiction | None) -> tuple[Step, ...]:
    from consent_gap.wording.guide import step_text

    return tuple(Step(code, step_text(code, place)) for code in codes)


def proposal_event_id(proposal: Proposal) -> str:
    """The AuditEvent's id inside the check: new, so nothing in the chart documents it yet."""
    return f"proposal-{uuid.uuid5(uuid.NAMESPACE_URL, repr(proposal.to_json())).hex[:24]}"


def with_event(chart: Any, event: dict[str, Any]) -> Any:
    """The chart (a Bundle, or a list of resources) with the proposal's AuditEvent added."""
    if isinstance(chart, dict):
        entries = chart.get("entry")
        return {**chart, "entry": [*(entries if isinstance(entries, list) else []),
                                   {"resource": event}]}
    return [*chart, event]


def _relative(reference: str) -> str:
    match = _ABSOLUTE.fullmatch(reference)
    return f"{match.group(2)}/{match.group(3)}" if match else reference


def check(chart: Any, proposal: Proposal,
          decide: Callable[[Any], Any], *, rules: Rules,
          place: Jurisdiction | None = None) -> Answer:
    """Decide the proposal in the chart (6): `decide` is the run's `evaluate` (an Evaluator);
    the chart (a Bundle or a list of resources) plus the AuditEvent of 6.3."""
    from consent_gap.writeback.records import audit_event

    tables = _tables(rules)
    scenario = tables.scenarios.get(proposal.scenario or "")
    if scenario is not None and scenario.steps_only:
        return Answer(None, with_words(scenario.steps_only, place), False, proposal,
                      jurisdiction=place)
    event = audit_event(proposal, event_id=proposal_event_id(proposal), recorded=proposal.at)
    report = decide(with_event(chart, event))
    reference = f"AuditEvent/{event['id']}"
    held = report.charts.get(_relative(proposal.patient))
    if held is None or held.patient is None:
        raise ProposalError(f"patient: {proposal.patient!r} is not the chart's patient")
    finding = next((f for f in report.findings if f.disclosure == reference), None)
    if finding is None:  # normalize could not read what records.py built: a bug, say so
        problem = next((p.message for p in report.problems if p.resource == reference), "")
        raise ProposalError(f"proposal: could not be decided {problem}".strip())
    draftable = can_draft_authorization(rules, finding, report, reference, proposal)
    return Answer(finding, with_words(step_codes(tables, finding, draftable), place),
                  draftable, proposal, event, place, report)


def can_draft_authorization(rules: Rules, finding: Finding, report: Any, reference: str,
                            proposal: Proposal) -> bool:
    """6.2: unauthorized or review, a recipient and a purpose, and no deny of an active
    Consent of the patient (check 10, or a restriction) that matches the proposal: an
    authorization the client's own deny would defeat is not worth drafting."""
    from consent_gap.engine import context, denies_of, deny_matches

    if finding.decision not in (Decision.UNAUTHORIZED, Decision.REVIEW):
        return False
    if proposal.recipient is None or not proposal.purposes:
        return False
    disclosure = report.disclosures.get(reference)
    chart = report.charts.get(disclosure.patient) if disclosure is not None else None
    if disclosure is None or chart is None:
        return False
    ctx = context(rules, disclosure, chart, None)
    for consent in chart.consents:
        if consent.status != "active":
            continue
        if any(deny_matches(ctx, node) for node in denies_of(rules, consent)):
            return False
    return True


def scenario_of(rules: Rules, code: str | None) -> Scenario | None:
    return _tables(rules).scenarios.get(code or "")
