"""The decision engine: CONTRACT.md 1.2-1.4 and 3, as pure functions.

No I/O, no clock, no FHIR shapes: it takes a `Disclosure` and the patient's `Chart` (domain
objects from normalize.py) plus the rules tables, and returns an `Outcome`. The codes live in
mappings/; this module holds only the logic that combines them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime

from consent_gap.domain import (
    Actor,
    Authorization,
    Chart,
    ClientNotice,
    Coding,
    Decision,
    Disclosure,
    Documentation,
    Provision,
)
from consent_gap.mappings import ExceptionRow, Jurisdiction, Rules

# Strictest wins (1.3): unauthorized, review, required, permitted.
_RANK = {Decision.PERMITTED: 1, Decision.REQUIRED: 2, Decision.REVIEW: 3,
         Decision.UNAUTHORIZED: 4}

NO_AUTHORIZATION = "no-authorization"
DATA_UNRESOLVED = "data-unresolved"


@dataclass(frozen=True, slots=True)
class CandidateResult:
    """How one candidate Consent fared (1.2): its reason, or None when it covers."""

    reference: str
    reason: str | None
    near_miss: bool  # failed only at check 6 (minor-self-authorization) or only at check 11


@dataclass(frozen=True, slots=True)
class Outcome:
    """The decision for one disclosure, before it is worded for people."""

    decision: Decision
    basis: str | None
    reasons: tuple[str, ...]
    accountable: bool
    documentation: Documentation
    client_notice: ClientNotice
    candidates: tuple[CandidateResult, ...]
    row: ExceptionRow | None  # the exception row that decided (None when authorized)
    cause: str | None  # the code the decision came from (section 3), if any
    converted: str | None = None  # "near-miss" | "restriction" | "data-unresolved"


@dataclass(frozen=True, slots=True)
class _Context:
    """What every check of one disclosure reads: the rules and the facts about the data."""

    rules: Rules
    disclosure: Disclosure
    chart: Chart
    majority: int
    duty: str
    psychotherapy_notes: bool
    part2: bool
    adolescent: bool


# --------------------------------------------------------------------------------------------
# Ages and representatives
# --------------------------------------------------------------------------------------------


def age_on(birth: date, moment: datetime) -> int:
    """Whole years from `birth` to the UTC date of `moment`."""
    day = moment.date()
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def is_minor(ctx: _Context, moment: datetime | None) -> bool | None:
    """True/False when the patient's age at `moment` is known, None when it is not."""
    patient = ctx.chart.patient
    if patient is None or patient.birth_date is None or moment is None:
        return None
    return age_on(patient.birth_date, moment) < ctx.majority


def may_sign(ctx: _Context, reference: str, moment: datetime | None) -> bool:
    """A RelatedPerson who may sign for the patient at `moment` (1.2 check 6).

    The RelatedPerson must name this patient: one that names no patient cannot show whose
    representative it is, and what the record cannot show never authorizes."""
    person = ctx.chart.representatives.get(reference)
    if person is None or person.patient is None or person.patient != ctx.disclosure.patient:
        return False
    reps = ctx.rules.representatives
    codes = {code for system, code in person.relationships if system == reps.system}
    if not codes.isdisjoint(reps.always):
        return True
    return not codes.isdisjoint(reps.while_minor) and is_minor(ctx, moment) is True


def speaks_for(ctx: _Context, reference: str, moment: datetime | None) -> bool:
    """The patient, or a RelatedPerson who may sign for the patient for this data (check 6).

    Used by the first row of 1.3 and the client notice of 1.4: care a minor consented to
    (ADOL) can be authorized only by the Patient, so a parent does not stand in for the
    patient when such data is disclosed."""
    if reference == ctx.disclosure.patient:
        return True
    return (reference.startswith("RelatedPerson/") and not ctx.adolescent
            and may_sign(ctx, reference, moment))


# --------------------------------------------------------------------------------------------
# Consents, prepared once: what the checks read that does not depend on the disclosure
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Node:
    """A provision node with its recipient actors, ActReason purposes and data references."""

    node: Provision
    actors: tuple[Actor, ...]
    purposes: frozenset[str]
    refs: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Path:
    """A permit path (1.2) with what check 6 and check 11 need from it alone."""

    node: _Node
    complete: bool  # check 11
    lists_adolescent: bool


@dataclass(frozen=True, slots=True)
class _Consent:
    consent: Authorization
    candidate: bool
    early: str | None  # the reason of a failure of check 1 or 2 (status), whatever the time
    unsigned: bool  # check 3
    revoked_at: datetime | None  # inactive: when the revocation took effect (None: unknown)
    paths: tuple[_Path, ...]
    denies: tuple[_Node, ...]
    restriction: tuple[_Node, ...]  # an active restriction's deny nodes (root included)


def _node(rules: Rules, node: Provision) -> _Node:
    roles = rules.consents.recipient_roles
    system = rules.purposes.system
    return _Node(
        node=node,
        actors=tuple(a for a in node.actors if not a.roles.isdisjoint(roles)),
        purposes=frozenset(code for sys, code in node.purposes if sys == system),
        refs=frozenset(ref for _meaning, ref in node.data if ref),
    )


def _deny_nodes(root: Provision) -> list[Provision]:
    """Every deny node under the root (the root itself is the default, not a deny rule)."""
    out = []
    stack = list(reversed(root.children))
    while stack:
        node = stack.pop()
        if node.type == "deny":
            out.append(node)
        stack.extend(reversed(node.children))
    return out


def permit_paths(root: Provision | None) -> list[Provision]:
    """The root when it is a permit (nested permits add nothing), else each nested permit."""
    if root is None:
        return []
    if root.type == "permit":
        return [root]
    if root.type == "deny":
        return [child for child in root.children if child.type == "permit"]
    return []


def is_authorization(rules: Rules, consent: Authorization) -> bool:
    """Check 1: it claims to authorize, and is not a notice of privacy practices or a
    restriction (which may carry the same category)."""
    codes = rules.consents
    claims = (not consent.policy_rules.isdisjoint(codes.authorization_policy)
              or not consent.categories.isdisjoint(codes.authorization_category))
    excluded = (not consent.categories.isdisjoint(codes.notice_category)
                or not consent.policy_rules.isdisjoint(codes.notice_policy)
                or not consent.policy_rules.isdisjoint(codes.restriction_policy))
    return claims and not excluded


def _complete(rules: Rules, path: _Node) -> bool:
    """Check 11: recipient, purpose and expiry named; nothing the engine cannot read."""
    codes = rules.consents
    node = path.node
    if not path.actors or not node.purposes or node.end is None or node.has_data_period:
        return False
    if any(codes.disclose_action not in action for action in node.actions):
        return False
    return all(meaning == codes.data_meaning for meaning, _ref in node.data)


def prepare(rules: Rules, c: Authorization) -> _Consent:
    """Everything about a Consent the checks need that does not depend on the disclosure."""
    early: str | None = None
    revoked_at = None
    if not is_authorization(rules, c):
        early = "not-an-authorization"
    elif c.status == "inactive":
        revoked_at = c.provision.end if c.provision is not None else None
        if revoked_at is None:
            revoked_at = c.last_updated
        if revoked_at is None:  # revoked at an unknown time: covers nothing
            early = "authorization-revoked"
    elif c.status != "active":
        early = "authorization-not-active"
    adolescent = rules.sensitivity.adolescent
    paths = []
    for node in permit_paths(c.provision):
        prepared = _node(rules, node)
        paths.append(_Path(prepared, _complete(rules, prepared),
                           not node.labels.isdisjoint(adolescent)))
    denies = tuple(_node(rules, n) for n in _deny_nodes(c.provision)) if c.provision else ()
    restriction: tuple[_Node, ...] = ()
    if (c.status == "active" and c.provision is not None
            and not c.policy_rules.isdisjoint(rules.consents.restriction_policy)):
        restriction = denies + ((_node(rules, c.provision),) if c.provision.type == "deny"
                                else ())
    return _Consent(
        consent=c,
        candidate=not c.scopes.isdisjoint(rules.consents.scope),
        early=early,
        unsigned=not c.signed,
        revoked_at=revoked_at,
        paths=tuple(paths),
        denies=denies,
        restriction=restriction,
    )


def _signing_order(p: _Consent) -> tuple[bool, float, str]:
    """Candidate order (1.2): signing time (unknown last), then id."""
    signed_at = p.consent.signed_at
    return signed_at is None, signed_at.timestamp() if signed_at else 0.0, p.consent.reference


class Prepared:
    """Prepared Consents for one evaluation run: each chart's, worked out once.

    Keyed by the chart's identity (and holding the chart, so the key stays valid): the
    disclosures of one patient share one chart object."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._charts: dict[int, tuple[Chart, list[_Consent], list[_Consent]]] = {}

    def chart(self, chart: Chart) -> tuple[list[_Consent], list[_Consent]]:
        """(candidates in order, active restrictions) of a chart."""
        found = self._charts.get(id(chart))
        if found is None or found[0] is not chart:
            prepared = [prepare(self.rules, c) for c in chart.consents]
            ordered = sorted((p for p in prepared if p.candidate), key=_signing_order)
            found = (chart, ordered, [p for p in prepared if p.restriction])
            self._charts[id(chart)] = found
        return found[1], found[2]


# --------------------------------------------------------------------------------------------
# Matching a disclosure
# --------------------------------------------------------------------------------------------


def _recipient_matches(d: Disclosure, actors: Iterable[Actor]) -> bool:
    for actor in actors:
        if actor.reference is not None and actor.reference == d.recipient:
            return True
        if actor.identifier is not None and actor.identifier in d.recipient_identifiers:
            return True
    return False


def deny_matches(ctx: _Context, deny: _Node) -> bool:
    """A deny node matches when each constraint it sets holds (1.2 check 10)."""
    d = ctx.disclosure
    node = deny.node
    if deny.actors and not _recipient_matches(d, deny.actors):
        return False
    if node.purposes:
        covered = ctx.rules.purposes.covered
        if not any(covered(p, deny.purposes) for p in d.purposes):
            return False
    if node.start is not None and node.start > d.occurred:
        return False
    if node.end is not None and node.end < d.occurred:
        return False
    entities = d.entities
    if node.labels and not any(not e.labels.isdisjoint(node.labels) for e in entities):
        return False
    if node.classes and not any(not e.classes.isdisjoint(node.classes) for e in entities):
        return False
    if node.codes and not any(not e.codes.isdisjoint(node.codes) for e in entities):
        return False
    return not node.data or any(e.reference in deny.refs for e in entities)


# --------------------------------------------------------------------------------------------
# The eleven checks (1.2)
# --------------------------------------------------------------------------------------------


def _signer(ctx: _Context, c: Authorization, path: _Path) -> str | None:
    """Check 6: the patient (adult at signing) or a personal representative signed."""
    moment = c.signed_at
    patient_signed = c.patient is not None and c.patient in c.performers
    representative = any(may_sign(ctx, ref, moment) for ref in c.performers
                         if ref.startswith("RelatedPerson/"))
    if patient_signed and (is_minor(ctx, moment) is False or path.lists_adolescent):
        return None
    if representative and not ctx.adolescent:  # only the Patient may authorize ADOL data
        return None
    if patient_signed and not representative:
        return "minor-self-authorization"
    return "authorizer-not-permitted"


def _data(ctx: _Context, c: Authorization, path: _Node) -> str | None:
    """Check 9: the path's data lists hold every disclosed entity; then the special data."""
    entities = ctx.disclosure.entities
    node = path.node
    if node.labels and any(not e.labels or not e.labels <= node.labels for e in entities):
        return "data-not-covered"
    if node.classes and any(e.classes.isdisjoint(node.classes) for e in entities):
        return "data-not-covered"
    if node.codes and any(e.codes.isdisjoint(node.codes) for e in entities):
        return "data-not-covered"
    if node.data and any(e.reference not in path.refs for e in entities):
        return "data-not-covered"
    sens = ctx.rules.sensitivity
    if ctx.psychotherapy_notes and node.labels.isdisjoint(sens.psychotherapy_notes):
        return sens.psychotherapy_reason
    if (ctx.part2 and node.labels.isdisjoint(sens.part2)
            and not any(uri.startswith(sens.part2_policy_prefix) for uri in c.policy_uris)):
        return sens.part2_reason
    return None


def _path_checks(ctx: _Context, prepared: _Consent, path: _Path) -> Iterator[tuple[int, str]]:
    """Checks 4-11 of one permit path, lazily, in order: yields (check, reason) failures."""
    d = ctx.disclosure
    c = prepared.consent
    node = path.node.node
    if node.start is not None and node.start > d.occurred:
        yield 4, "authorization-not-yet-valid"
    if node.end is not None and node.end < d.occurred:
        yield 5, "authorization-expired"
    signer = _signer(ctx, c, path)
    if signer is not None:
        yield 6, signer
    if path.node.actors and not _recipient_matches(d, path.node.actors):
        yield 7, "recipient-not-covered"
    if node.purposes:
        covered = ctx.rules.purposes.covered
        listed = path.node.purposes
        if not d.purposes or not all(covered(p, listed) for p in d.purposes):
            yield 8, "purpose-not-covered"
    data = _data(ctx, c, path.node)
    if data is not None:
        yield 9, data
    if any(deny_matches(ctx, deny) for deny in prepared.denies):
        yield 10, "denied-by-provision"
    if not path.complete:
        yield 11, "authorization-incomplete"


def _before_paths(prepared: _Consent, occurred: datetime) -> str | None:
    """Checks 1-4 that do not depend on a path, in order: the first failure's reason.

    A revocation takes effect at its instant: a disclosure at that instant is revoked."""
    if prepared.early is not None:
        return prepared.early
    if prepared.revoked_at is not None and occurred >= prepared.revoked_at:
        return "authorization-revoked"
    if prepared.unsigned:
        return "authorization-unsigned"
    signed_at = prepared.consent.signed_at
    if signed_at is None or signed_at > occurred:
        return "authorization-not-yet-valid"
    return None


def check_candidate(ctx: _Context, prepared: _Consent) -> CandidateResult:
    """Run the eleven checks; the reason comes from the path that got furthest.

    A path stops at its first failure, except a minor's own signature (check 6), where the
    rest is still checked: a candidate that failed only there, or only at check 11, turns an
    unauthorized decision into review (1.2)."""
    c = prepared.consent
    early = _before_paths(prepared, ctx.disclosure.occurred)
    if early is not None:
        return CandidateResult(c.reference, early, False)
    if not prepared.paths:  # a deny root with no permit under it, or no provision at all
        denied = c.provision is not None and c.provision.type == "deny"
        return CandidateResult(
            c.reference, "denied-by-provision" if denied else "authorization-incomplete", False)
    best: tuple[int, str] | None = None
    near_miss = False
    for path in prepared.paths:
        failures = _path_checks(ctx, prepared, path)
        first = next(failures, None)
        if first is None:
            return CandidateResult(c.reference, None, False)
        if best is None or first[0] > best[0]:
            best = first
        if first[0] == 11 or (first == (6, "minor-self-authorization")
                              and next(failures, None) is None):
            near_miss = True
    assert best is not None
    return CandidateResult(c.reference, best[1], near_miss)


# --------------------------------------------------------------------------------------------
# Exceptions (1.3)
# --------------------------------------------------------------------------------------------


def _recipient_may_access(ctx: _Context) -> bool:
    """First row: the recipient is the patient, or someone who may sign for the patient now."""
    d = ctx.disclosure
    if d.patient is None:
        return False
    if d.recipient is not None:
        return speaks_for(ctx, d.recipient, d.occurred)
    patient = ctx.chart.patient
    return patient is not None and not patient.identifiers.isdisjoint(d.recipient_identifiers)


def _instruments(ctx: _Context) -> frozenset[str]:
    found = ctx.disclosure.instruments
    if found and found <= ctx.rules.exceptions.ignored_alone:
        return frozenset()
    return found


def _row_applies(ctx: _Context, row: ExceptionRow, instruments: frozenset[str]) -> bool:
    if row.recipient_types is not None and ctx.disclosure.recipient_type not in \
            row.recipient_types:
        return False
    if row.duty is not None and ctx.duty not in row.duty:
        return False
    if row.instruments_any is not None and row.instruments_any.isdisjoint(instruments):
        return False
    return row.instruments_all is None or row.instruments_all <= instruments


def row_for(ctx: _Context, purpose: str, instruments: frozenset[str]) -> ExceptionRow:
    """The first row that lists the purpose exactly and whose conditions hold, else the row
    for any other ActReason code."""
    table = ctx.rules.exceptions
    for row in table.by_purpose.get(purpose, ()):
        if _row_applies(ctx, row, instruments):
            return row
    return table.other_purpose


@dataclass(frozen=True, slots=True)
class _Verdict:
    """A decision on its way to an Outcome: a row's, then perhaps converted (1.2, 1.3)."""

    decision: Decision
    basis: str | None
    accountable: bool
    cause: str | None  # the code the decision came from (section 3)
    row: ExceptionRow | None = None
    converted: str | None = None


def _narrow(ctx: _Context, row: ExceptionRow, instruments: frozenset[str]) -> _Verdict:
    """Psychotherapy notes and Part 2 data narrow a row when no Consent covers (1.3).

    Each sensitive kind present gives the row's narrowed decision ("stand" keeps the row);
    the strictest applies when it is at least as strict as the row itself."""
    sens = ctx.rules.sensitivity
    effects = []
    if ctx.psychotherapy_notes:
        effects.append((row.psychotherapy_notes, sens.psychotherapy_reason))
    if ctx.part2 and row.part2_stands_with.isdisjoint(instruments):
        effects.append((row.part2, sens.part2_reason))
    narrowed = [(Decision(effect), reason) for effect, reason in effects if effect != "stand"]
    if narrowed:
        decision, reason = max(narrowed, key=lambda item: _RANK[item[0]])  # first on a tie
        if _RANK[decision] >= _RANK[row.decision]:
            return _Verdict(decision, None, True, reason, row)
    return _Verdict(row.decision, row.basis, row.accountable, row.reason, row)


def exception_decision(ctx: _Context) -> tuple[_Verdict, list[_Verdict]]:
    """The winning row's verdict and every purpose's, in purpose order (1.3).

    The first row goes before all others; request codes count only when nothing else is
    listed; the strictest wins, and on a tie the first purpose listed gives the basis."""
    table = ctx.rules.exceptions
    instruments = _instruments(ctx)
    if _recipient_may_access(ctx):
        decided = [_narrow(ctx, table.access, instruments)]
    else:
        purposes = ctx.disclosure.purposes
        kept = [p for p in purposes if p not in table.request_codes] or list(purposes)
        rows = [row_for(ctx, p, instruments) for p in kept] or [table.no_purpose]
        decided = [_narrow(ctx, row, instruments) for row in rows]
    return max(decided, key=lambda v: _RANK[v.decision]), decided


def restricted(ctx: _Context, consents: Iterable[_Consent]) -> bool:
    """An active hipaa-restrictions / hipaa-self-pay Consent with a deny that matches."""
    return any(deny_matches(ctx, node) for p in consents for node in p.restriction)


# --------------------------------------------------------------------------------------------
# Documentation and client notice (1.4)
# --------------------------------------------------------------------------------------------


def documentation_and_notice(ctx: _Context, decision: Decision,
                             row: ExceptionRow | None) -> tuple[Documentation, ClientNotice]:
    """1.4: owed for required decisions and for permitted ones under a row that breaks
    confidentiality (emergency treatment, serious threat); not required for the rest."""
    breaks = decision is Decision.REQUIRED or (
        decision is Decision.PERMITTED and row is not None and row.breaks_confidentiality)
    if not breaks:
        return Documentation.NOT_REQUIRED, ClientNotice.NOT_REQUIRED
    d = ctx.disclosure
    documentation = (Documentation.PRESENT if d.reference in ctx.chart.documented
                     else Documentation.MISSING)
    if row is not None and row.notice_exempt_minor and is_minor(ctx, d.occurred) is True:
        return documentation, ClientNotice.NOT_REQUIRED
    return documentation, _client_notice(ctx)


def _client_notice(ctx: _Context) -> ClientNotice:
    """Sent if a completed notice reached the client; withheld if one was not done for a
    stated reason; else missing. Notices to anyone else do not count."""
    d = ctx.disclosure
    codes = ctx.rules.disclosures
    to_client = [n for n in ctx.chart.notices.get(d.reference, ())
                 if any(speaks_for(ctx, r, d.occurred) for r in n.recipients)]
    if any(n.status in codes.notice_sent_status for n in to_client):
        return ClientNotice.SENT
    if any(n.status in codes.notice_withheld_status and n.has_status_reason for n in to_client):
        return ClientNotice.WITHHELD
    return ClientNotice.MISSING


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


def context(rules: Rules, disclosure: Disclosure, chart: Chart,
            jurisdiction: Jurisdiction | None) -> _Context:
    """The facts every check of one disclosure reads, worked out once."""
    labels: frozenset[Coding] = frozenset().union(*(e.labels for e in disclosure.entities))
    sens = rules.sensitivity
    return _Context(
        rules=rules,
        disclosure=disclosure,
        chart=chart,
        majority=(jurisdiction.age_of_majority if jurisdiction is not None
                  else rules.representatives.default_age_of_majority),
        duty=jurisdiction.duty if jurisdiction is not None else "none-given",
        psychotherapy_notes=not labels.isdisjoint(sens.psychotherapy_notes),
        part2=not labels.isdisjoint(sens.part2),
        adolescent=not labels.isdisjoint(sens.adolescent),
    )


def decide(rules: Rules, disclosure: Disclosure, chart: Chart,
           jurisdiction: Jurisdiction | None = None, *,
           prepared: Prepared | None = None) -> Outcome:
    """Decide one disclosure (CONTRACT.md 1.2-1.4, reasons as section 3 orders them).

    `prepared` caches per-Consent work across the disclosures of one run (optional)."""
    ctx = context(rules, disclosure, chart, jurisdiction)
    prepared = prepared if prepared is not None else Prepared(rules)
    ordered, restrictions = prepared.chart(chart)
    results = tuple(check_candidate(ctx, p) for p in ordered)
    covering = next((r for r in results if r.reason is None), None)
    if covering is not None:
        # Authorized disclosures are accountable only with Part 2 data (42 CFR 2.24).
        verdict = _Verdict(Decision.AUTHORIZED, covering.reference, ctx.part2, None)
    else:
        verdict = _without_authorization(ctx, results, restrictions)
    verdict = _unless_data_unresolved(verdict, disclosure)
    documentation, notice = documentation_and_notice(ctx, verdict.decision, verdict.row)
    return Outcome(
        decision=verdict.decision,
        basis=verdict.basis,
        reasons=_reasons(verdict.decision, verdict.cause, results),
        accountable=verdict.accountable,
        documentation=documentation,
        client_notice=notice,
        candidates=results,
        row=verdict.row,
        cause=verdict.cause,
        converted=verdict.converted,
    )


def _without_authorization(ctx: _Context, results: tuple[CandidateResult, ...],
                           restrictions: Iterable[_Consent]) -> _Verdict:
    """1.3 decides; then a near miss turns unauthorized into review, and a patient's
    restriction turns a treatment, payment or operations permission into unauthorized."""
    winner, decided = exception_decision(ctx)
    if winner.decision is Decision.UNAUTHORIZED and any(r.near_miss for r in results):
        return replace(winner, decision=Decision.REVIEW, basis=None, converted="near-miss")
    if (winner.decision is Decision.PERMITTED
            and all(v.row.restrictable for v in decided if v.decision is Decision.PERMITTED)
            and restricted(ctx, restrictions)):
        return replace(winner, decision=Decision.UNAUTHORIZED, basis=None, accountable=True,
                       cause=ctx.rules.consents.restriction_reason, converted="restriction")
    return winner


def _unless_data_unresolved(verdict: _Verdict, disclosure: Disclosure) -> _Verdict:
    """Authorized or permitted needs to know what was sent (1.2, last paragraph); otherwise
    review, keeping the accountable value of the decision it replaces."""
    if verdict.decision not in (Decision.AUTHORIZED, Decision.PERMITTED):
        return verdict
    if disclosure.entities and not any(e.unresolved for e in disclosure.entities):
        return verdict
    return replace(verdict, decision=Decision.REVIEW, basis=None, cause=DATA_UNRESOLVED,
                   converted="data-unresolved")


def _reasons(decision: Decision, cause: str | None,
             results: tuple[CandidateResult, ...]) -> tuple[str, ...]:
    """Section 3: the decision's own code, no-authorization, then each candidate's reason."""
    if decision not in (Decision.UNAUTHORIZED, Decision.REVIEW):
        return ()
    ordered: list[str] = []
    if cause:
        ordered.append(cause)
    if not results:
        ordered.append(NO_AUTHORIZATION)
    for result in results:
        if result.reason is not None and result.reason not in ordered:
            ordered.append(result.reason)
    return tuple(ordered)
