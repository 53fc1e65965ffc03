"""The decision engine: CONTRACT.md 1.2-1.4 and 3, as pure functions.

No I/O, no clock, no FHIR shapes: it takes a `Disclosure` and the patient's `Chart` (domain
objects from normalize.py) plus the rules tables, and returns an `Outcome`. The codes live in
mappings/; this module holds only the logic that combines them.

Speed comes from preparing each patient's Consents once (`Prepared`) and lazily: checks 1-3
and each Consent's time bounds (signed and begun, ended) when a chart is first seen, the
candidates they settle whatever the disclosure put in place then (no visit per decision); a
candidate's paths (period bounds, recipients, the signer's standing) when a disclosure first
falls within those bounds; check 8's purposes when a disclosure first gets past check 7; what
checks 9-11 read (data, the denies beneath each permit, completeness) when one first gets past
check 8. A decision then settles most candidates by time alone (two comparisons against the
window in which time decides nothing) or, for a Consent with one path naming other
recipients, by one set lookup, each with a result made once and reused; a Consent with one
path is checked without the loop over paths. Every candidate still gets its result, since
section 3 lists each one's reason; decide looks through them for a covering Consent or a near
miss only when a check found one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import NamedTuple

from consent_gap.domain import (
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

# The values every decision compares with, as module globals: reading an enum member through
# its class is a slow attribute lookup, and decide makes about ten per disclosure
_AUTHORIZED, _PERMITTED, _REQUIRED = Decision.AUTHORIZED, Decision.PERMITTED, Decision.REQUIRED
_REVIEW, _UNAUTHORIZED = Decision.REVIEW, Decision.UNAUTHORIZED
_NO_DOCUMENTATION, _NO_NOTICE = Documentation.NOT_REQUIRED, ClientNotice.NOT_REQUIRED

NO_AUTHORIZATION = "no-authorization"
DATA_UNRESOLVED = "data-unresolved"
MINOR_SELF = "minor-self-authorization"

_NONE: frozenset = frozenset()


class CandidateResult(tuple):
    """How one candidate Consent fared (1.2): (its reference, its reason or None when it
    covers), the pair a Finding lists as `consents_checked`.

    A tuple, made once and reused while the Consent fails for the same reason (`_result`,
    `_Consent`'s time results): a chart's first decisions make one per Consent and reason, so
    making one is a single allocation. A near miss (on the path its reason comes from, failed
    only at check 6, a minor's own signature, or only at check 11) is a `_NearMiss`."""

    __slots__ = ()
    near_miss = False

    def __new__(cls, reference: str, reason: str | None, near_miss: bool = False
                ) -> CandidateResult:
        return _new_result(_NearMiss if near_miss else cls, (reference, reason))

    reference = property(itemgetter(0), doc="The Consent's reference.")
    reason = property(itemgetter(1), doc="Why it does not cover; None when it covers.")

    @property
    def checked(self) -> tuple[str, str | None]:
        """(Consent, reason) as a Finding lists it: the result itself, no new tuple."""
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CandidateResult):
            return NotImplemented
        return self.near_miss is other.near_miss and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    # a tuple's hash: equal to the plain pair (reference, reason) it also equals
    __hash__ = tuple.__hash__

    def __getnewargs__(self) -> tuple[str, str | None, bool]:  # pickle, copy (Dask ships them)
        return self[0], self[1], self.near_miss

    def __repr__(self) -> str:
        return (f"CandidateResult(reference={self[0]!r}, reason={self[1]!r}, "
                f"near_miss={self.near_miss!r})")


class _NearMiss(CandidateResult):
    """A candidate that would cover but for check 6 (a minor's own signature) or check 11."""

    __slots__ = ()
    near_miss = True


_new_result = tuple.__new__
_REASON = itemgetter(1)  # a result's reason, read in C


@dataclass(slots=True)
class Outcome:
    """The decision for one disclosure, before it is worded for people."""

    decision: Decision
    basis: str | None
    reasons: tuple[str, ...]
    accountable: bool
    documentation: Documentation
    client_notice: ClientNotice
    candidates: tuple[CandidateResult, ...]
    row: ExceptionRow | None  # the exception row that gave the basis (None when authorized)
    cause: str | None  # the first code the decision came from (section 3), if any
    converted: str | None = None  # "near-miss" | "restriction" | "data-unresolved"
    causes: tuple[str, ...] = ()  # every code the decision came from, in order (section 3)
    rows: tuple[ExceptionRow, ...] = ()  # every winning row, in purpose order (1.3)


# --------------------------------------------------------------------------------------------
# Ages and representatives
# --------------------------------------------------------------------------------------------


def age_on(birth: date, moment: datetime) -> int:
    """Whole years from `birth` to the UTC date of `moment`."""
    day = moment.date()
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _minor(chart: Chart, majority: int, moment: datetime | None) -> bool | None:
    """True/False when the patient's age at `moment` is known, None when it is not."""
    patient = chart.patient
    if patient is None or patient.birth_date is None or moment is None:
        return None
    return age_on(patient.birth_date, moment) < majority


def _adult_from(chart: Chart, majority: int) -> date | None:
    """The first day the patient is of age, when the birth date is known: `_minor` is then
    one comparison (a birthday on 29 February comes of age on 1 March in a common year)."""
    patient = chart.patient
    birth = patient.birth_date if patient is not None else None
    if birth is None:
        return None
    year = birth.year + majority
    try:
        return date(year, birth.month, birth.day)
    except ValueError:
        if birth.month == 2 and birth.day == 29 and year <= 9999:
            return date(year, 3, 1)
        return None


def _may_sign(rules: Rules, chart: Chart, patient: str | None, majority: int, reference: str,
              moment: datetime | None) -> bool:
    """A RelatedPerson who may sign for `patient` at `moment` (1.2 check 6).

    The RelatedPerson must name this patient: one that names no patient cannot show whose
    representative it is, and what the record cannot show never authorizes. A parent may sign
    only while the patient is known to be a minor (an unknown age is an adult's here)."""
    person = chart.representatives.get(reference)
    if person is None or person.patient is None or person.patient != patient:
        return False
    reps = rules.representatives
    codes = {code for system, code in person.relationships if system == reps.system}
    if not codes.isdisjoint(reps.always):
        return True
    return (not codes.isdisjoint(reps.while_minor)
            and _minor(chart, majority, moment) is True)


# --------------------------------------------------------------------------------------------
# What one disclosure brings to every check, worked out once per decision
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Facts:
    rules: Rules
    disclosure: Disclosure
    chart: Chart
    majority: int
    duty: str
    psychotherapy_notes: bool
    part2: bool
    adolescent: bool
    lineages: tuple[frozenset[str], ...]  # each purpose with its ancestors (checks 8, 10)
    special: bool  # psychotherapy notes or Part 2 data (check 9)
    recipient_type: str | None  # `Disclosure.recipient_type` (1.3 rows)
    adult: date | None = None  # `_adult_from`, when decide knows it (else `_minor` reads)
    # some candidate covers or is a near miss: only `_check` finds either, and it says so
    # here, so that decide looks through the results only when one of them is there
    covered_or_near: bool = False


def context(rules: Rules, disclosure: Disclosure, chart: Chart,
            jurisdiction: Jurisdiction | None, memo: dict | None = None) -> _Facts:
    """The facts every check of one disclosure reads, worked out once. `memo` keeps, for
    one run, what the data's labels say, each list of purposes' lineages and each
    recipient's resource type (a run's disclosures share a few of each; the keys, a set, a
    tuple and a string or None, never collide)."""
    labels: frozenset[Coding] = _NONE
    for e in disclosure.entities:  # most entities carry no label: no new set, no new hash
        if e.labels:
            labels = e.labels if not labels else labels | e.labels
    flags = memo.get(labels) if memo is not None else None
    if flags is None:
        sens = rules.sensitivity
        notes = bool(labels) and not labels.isdisjoint(sens.psychotherapy_notes)
        part2 = bool(labels) and not labels.isdisjoint(sens.part2)
        flags = (notes, part2, bool(labels) and not labels.isdisjoint(sens.adolescent))
        if memo is not None:
            memo[labels] = flags
    purposes = disclosure.purposes
    lineages = memo.get(purposes) if memo is not None else None
    if lineages is None:
        lineage = rules.purposes.lineage
        lineages = tuple([lineage(p) for p in purposes])
        if memo is not None:
            memo[purposes] = lineages
    recipient = disclosure.recipient
    recipient_type = memo.get(recipient, _UNSEEN) if memo is not None else _UNSEEN
    if recipient_type is _UNSEEN:
        recipient_type = disclosure.recipient_type
        if memo is not None:
            memo[recipient] = recipient_type
    notes, part2, adolescent = flags
    if jurisdiction is not None:
        majority, duty = jurisdiction.age_of_majority, jurisdiction.duty
    else:
        majority, duty = rules.representatives.default_age_of_majority, "none-given"
    return _Facts(rules, disclosure, chart, majority, duty, notes, part2, adolescent,
                  lineages, notes or part2, recipient_type)


_UNSEEN: object = object()  # `context`: a recipient not yet in the memo


def speaks_for(facts: _Facts, reference: str, moment: datetime | None) -> bool:
    """The patient, or a RelatedPerson who may sign for the patient for this data (check 6).

    Used by the first row of 1.3 and the client notice of 1.4: care a minor consented to
    (ADOL) can be authorized only by the Patient, so a parent does not stand in for the
    patient when such data is disclosed."""
    d = facts.disclosure
    if reference == d.patient:
        return True
    return (reference.startswith("RelatedPerson/") and not facts.adolescent
            and _may_sign(facts.rules, facts.chart, d.patient, facts.majority, reference,
                          moment))


# --------------------------------------------------------------------------------------------
# Consents, prepared once per chart
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Match:
    """A provision node's constraints as the checks read them (recipient actors, ActReason
    purposes, data references), and the node itself for its periods and lists."""

    node: Provision
    actor_refs: frozenset[str]
    actor_ids: frozenset[str]
    has_actors: bool
    purposes: frozenset[str]
    refs: frozenset[str]


@dataclass(slots=True)
class _Path:
    """A permit path (1.2), with what does not depend on the disclosure worked out: what
    checks 4-7 read when the Consent is first reached, check 8's purposes when a disclosure
    first gets past check 7 (most paths of a chart name another recipient), the rest
    (`_Rest`) when one first gets past check 8 (most are made for other purposes)."""

    node: Provision
    start: datetime | None
    end: datetime | None
    has_actors: bool  # check 7: names a recipient
    actor_refs: frozenset[str]
    actor_ids: frozenset[str]
    signer: str | None  # check 6 for data without ADOL
    signer_adolescent: str | None  # check 6 for data labelled ADOL
    purposes: frozenset[str] | None = None  # check 8's codes, None until needed
    rest: _Rest | None = None  # checks 9-11, None until a disclosure gets past check 8


@dataclass(slots=True)
class _Rest:
    """What checks 9-11 of one permit path read, prepared once."""

    refs: frozenset[str]  # check 9: the data it lists by reference
    denies: tuple[_Match, ...]  # check 10: the denies beneath this permit
    complete: bool  # check 11
    lists_data: bool  # check 9: sets labels, classes, codes or data


class _Consent:
    """A candidate whose result depends on the disclosure (an authorization, active or
    revoked at a known time, that checks 1-3 do not settle whatever the time). What time
    alone decides is worked out with it, once per chart (`_window`); its paths when a
    disclosure first reaches them (`_paths`). A plain slotted class: a chart makes one per
    such Consent, and `_results` reads these slots for every candidate of every decision."""

    __slots__ = ("before", "consent", "expired", "expires", "hi", "last", "lo", "miss",
                 "miss_adolescent", "one", "paths", "revoked", "revoked_at", "unsigned",
                 "valid_from")

    def __init__(self, consent: Authorization, revoked_at: datetime | None) -> None:
        self.consent = consent
        self.revoked_at = revoked_at  # inactive: when the revocation took effect
        self.unsigned = not consent.signed  # check 3 (a revoked Consent may be unsigned)
        self.last: CandidateResult | None = None  # the result `_check` last gave (`_result`)
        self.paths: tuple[_Path, ...] | None = None  # None until a disclosure reaches them
        # Its one permit path, when it has one: within the window its period holds (checks
        # 4 and 5); if it names recipients, a disclosure to anyone else gets `miss`
        # (`miss_adolescent` for ADOL data): check 6's reason, else check 7's
        self.one: _Path | None = None
        self.miss: CandidateResult | None = None
        self.miss_adolescent: CandidateResult | None = None
        # Time's results, made when first needed (kept here, not in `last`): before `lo`
        # (not yet valid), after `hi`
        self.before: CandidateResult | None = None
        self.expired: CandidateResult | None = None
        self.revoked: CandidateResult | None = None
        # Time alone decides a disclosure before `valid_from` (unsigned until then, or no
        # path begun: not yet valid; None when never signed) and after `expires` (every path
        # ended; None when some path has no end, or there is no path). The window `lo`..`hi`
        # (both ends included) in which time alone decides nothing: signed, begun, not every
        # path ended, not yet revoked; `lo` None when there is none
        self.valid_from, self.expires, self.lo, self.hi = _window(consent, revoked_at)


class _Restriction(NamedTuple):
    """A hipaa-restrictions / hipaa-self-pay Consent that can be in force (1.2): its deny
    nodes (its root when a deny) and its root period, to its revocation when inactive."""

    denies: tuple[_Match, ...]
    start: datetime | None
    end: datetime | None
    revoked: bool  # inactive: in force until (not at) `end`


def _actors(rules: Rules, node: Provision) -> tuple[bool, frozenset[str], frozenset[str]]:
    """A node's recipients (actors in a recipient role): (any named, references,
    identifiers)."""
    actors = node.actors
    if not actors:
        return False, _NONE, _NONE
    roles = rules.consents.recipient_roles
    if len(actors) == 1:  # the usual case: no lists to build
        a = actors[0]
        if a.roles.isdisjoint(roles):
            return False, _NONE, _NONE
        return (True, _NONE if a.reference is None else frozenset((a.reference,)),
                _NONE if a.identifier is None else frozenset((a.identifier,)))
    named = False
    refs: list[str] = []
    ids: list[str] = []
    for a in actors:  # a loop, not comprehensions: this runs once per path of every Consent
        if a.roles.isdisjoint(roles):
            continue
        named = True
        if a.reference is not None:
            refs.append(a.reference)
        if a.identifier is not None:
            ids.append(a.identifier)
    if not named:
        return False, _NONE, _NONE
    return True, frozenset(refs) if refs else _NONE, frozenset(ids) if ids else _NONE


def _match(rules: Rules, node: Provision) -> _Match:
    has_actors, refs, ids = _actors(rules, node)
    return _Match(node, refs, ids, has_actors, _purposes(rules, node), _listed(node))


def _purposes(rules: Rules, node: Provision) -> frozenset[str]:
    """The ActReason codes a node lists (checks 8 and 10)."""
    if not node.purposes:
        return _NONE
    system = rules.purposes.system
    codes = []
    for sys, code in node.purposes:  # a loop, not a comprehension: once per path and deny
        if sys == system:
            codes.append(code)
    return frozenset(codes)


def _listed(node: Provision) -> frozenset[str]:
    """The data a node lists by reference (checks 9 and 10)."""
    if not node.data:
        return _NONE
    listed = []
    for _meaning, ref in node.data:
        if ref:
            listed.append(ref)
    return frozenset(listed)


def _deny_nodes(node: Provision) -> list[Provision]:
    """Every deny node beneath `node` (not `node` itself), in document order."""
    if not node.children:
        return []
    out = []
    stack = list(reversed(node.children))
    while stack:
        child = stack.pop()
        if child.type == "deny":
            out.append(child)
        stack.extend(reversed(child.children))
    return out


def denies_of(rules: Rules, consent: Authorization) -> tuple[_Match, ...]:
    """Every deny of a Consent as check 10 matches it: its deny nodes, and a restriction's
    root when that is a deny (a proposal's draftability, CONTRACT 6.2)."""
    root = consent.provision
    if root is None:
        return ()
    nodes = _deny_nodes(root)
    if root.type == "deny" and not consent.policy_rules.isdisjoint(
            rules.consents.restriction_policy):
        nodes.append(root)
    return tuple(_match(rules, node) for node in nodes)


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


def _complete(rules: Rules, node: Provision, has_actors: bool) -> bool:
    """Check 11: recipient, purpose and expiry named; nothing the engine cannot read; and
    where actions are listed, one of them (all entries taken together) is disclose."""
    codes = rules.consents
    if not has_actors or not node.purposes or node.end is None or node.has_data_period:
        return False
    if node.actions:
        disclose = codes.disclose_action
        for action in node.actions:
            if disclose in action:
                break
        else:
            return False
    if node.data:
        meaning_read = codes.data_meaning
        for meaning, _ref in node.data:
            if meaning != meaning_read:
                return False
    return True


def _revoked_at(c: Authorization) -> datetime | None:
    """When an inactive Consent's revocation took effect: its root period's end, else its
    last update; None when unknown."""
    end = c.provision.end if c.provision is not None else None
    return end if end is not None else c.last_updated


def _signers(rules: Rules, chart: Chart, majority: int, c: Authorization,
             adult: date | None = None) -> tuple[bool, bool, bool | None]:
    """(the patient signed, a representative who may sign signed, minor at signing).
    `adult` is the chart's `_adult_from` when known (else None)."""
    moment = c.signed_at
    performers = c.performers
    patient_signed = c.patient is not None and c.patient in performers
    representative = False
    if not patient_signed or len(performers) > 1:  # the patient alone: no one else to look at
        for ref in performers:
            if ref.startswith("RelatedPerson/") and _may_sign(rules, chart, c.patient,
                                                              majority, ref, moment):
                representative = True
                break
    if adult is not None:
        minor = None if moment is None else moment.date() < adult
    else:
        minor = _minor(chart, majority, moment)
    return patient_signed, representative, minor


def _signer(signers: tuple[bool, bool, bool | None], lists_adolescent: bool
            ) -> tuple[str | None, str | None]:
    """Check 6, for data without and with ADOL: the patient (adult at signing, or listing
    ADOL) or a representative signed; None when so, else the reason.

    An unknown age is a minor's for the patient's own signature. A co-signer who may not sign
    does not count: the patient then signed alone. Only the Patient may authorize ADOL
    data."""
    patient_signed, representative, minor = signers
    if patient_signed and (minor is False or lists_adolescent):
        return None, None
    reason = MINOR_SELF if patient_signed and not representative else \
        "authorizer-not-permitted"
    return (None if representative else reason), reason


def _kind(rules: Rules, c: Authorization) -> tuple[bool, bool, bool]:
    """(a candidate: its scope is privacy; check 1: it claims to authorize; a restriction)."""
    codes = rules.consents
    return (not c.scopes.isdisjoint(codes.scope), is_authorization(rules, c),
            not c.policy_rules.isdisjoint(codes.restriction_policy))


def _settled(c: Authorization, authorization: bool
             ) -> tuple[str | None, datetime | None]:
    """(the reason checks 1-3 give whatever the disclosure, or None; when an inactive
    Consent's revocation took effect)."""
    status = c.status
    if not authorization:
        return "not-an-authorization", None
    if status == "inactive":
        revoked_at = _revoked_at(c)
        if revoked_at is None:  # revoked at an unknown time: covers nothing
            return _REVOKED, None
        return None, revoked_at
    if status != "active":
        return "authorization-not-active", None
    return (None if c.signed else _UNSIGNED), None


def _restriction(rules: Rules, c: Authorization) -> _Restriction | None:
    """A restriction Consent as `restricted` reads it; None when it can never be in force
    (not active or inactive, revoked at an unknown time, no provision or no deny)."""
    root = c.provision
    status = c.status
    if root is None or status not in ("active", "inactive"):
        return None
    end = root.end
    if status == "inactive":
        revoked = _revoked_at(c)
        if revoked is None:
            return None
        if end is None or revoked < end:
            end = revoked
    nodes = _deny_nodes(root) + ([root] if root.type == "deny" else [])
    if not nodes:
        return None
    return _Restriction(tuple([_match(rules, n) for n in nodes]), root.start, end,
                        status == "inactive")


def _window(c: Authorization, revoked_at: datetime | None) -> tuple[
        datetime | None, datetime | None, datetime | None, datetime | None]:
    """(`valid_from`, `expires`, `lo`, `hi`): see _Consent."""
    valid_from = c.signed_at
    root = c.provision
    expires = None
    if root is not None:
        if root.type == "permit":  # the usual case: the root is the path
            if valid_from is not None and root.start is not None and root.start > valid_from:
                valid_from = root.start
            expires = root.end
        elif root.type == "deny":
            valid_from, expires = _nested_bounds(valid_from, permit_paths(root))
    lo = valid_from
    if lo is None or not c.signed:
        return valid_from, expires, None, None
    hi = expires
    if revoked_at is not None:
        if revoked_at <= lo:
            return valid_from, expires, None, None
        last = revoked_at - _INSTANT  # revoked from its instant on
        hi = last if hi is None or last < hi else hi
    if hi is None:
        hi = _END if lo.tzinfo is UTC else datetime.max.replace(tzinfo=lo.tzinfo)
    elif hi < lo:
        return valid_from, expires, None, None
    return valid_from, expires, lo, hi


_INSTANT = timedelta(microseconds=1)  # a datetime's resolution
_END = datetime.max.replace(tzinfo=UTC)


def _nested_bounds(signed_at: datetime | None, nodes: list[Provision]
                   ) -> tuple[datetime | None, datetime | None]:
    """A deny root's (`valid_from`, `expires`) from its nested permits: valid once signed
    and some path begun, expired once every path ended."""
    if not nodes:
        return signed_at, None
    valid_from = signed_at
    starts = [n.start for n in nodes]
    if valid_from is not None and None not in starts:
        valid_from = max(valid_from, min(starts))  # type: ignore[type-var]
    ends = [n.end for n in nodes]
    return valid_from, (max(ends) if None not in ends else None)  # type: ignore[type-var]


def _paths(facts: _Facts, prepared: _Consent) -> tuple[_Path, ...]:
    """A candidate's permit paths, prepared once (the first time a disclosure reaches them):
    period bounds, recipients, the signer's standing with and without ADOL data. What checks
    8-11 read comes later, when a disclosure first gets that far (`_rest`)."""
    found = prepared.paths
    if found is not None:
        return found
    rules = facts.rules
    c = prepared.consent
    signers = _signers(rules, facts.chart, facts.majority, c, facts.adult)
    root = c.provision
    if root is None:
        found = ()
    elif root.type == "permit":  # the usual case: the root is the one path
        found = (_path(rules, root, signers),)
    else:
        found = tuple([_path(rules, node, signers) for node in permit_paths(root)])
    prepared.paths = found
    if len(found) == 1:
        prepared.one = found[0]
    return found


def _path(rules: Rules, node: Provision, signers: tuple[bool, bool, bool | None]) -> _Path:
    """One permit path as checks 4-7 read it."""
    lists_adolescent = bool(node.labels) and not node.labels.isdisjoint(
        rules.sensitivity.adolescent)
    has_actors, refs, ids = _actors(rules, node)
    signer, signer_adolescent = _signer(signers, lists_adolescent)
    return _Path(node, node.start, node.end, has_actors, refs, ids, signer, signer_adolescent)


def _miss(prepared: _Consent, adolescent: bool) -> CandidateResult:
    """`miss` or `miss_adolescent`, made when first needed."""
    one = prepared.one
    assert one is not None
    if adolescent:
        found = prepared.miss_adolescent = _result(
            prepared, one.signer_adolescent or "recipient-not-covered")
    else:
        found = prepared.miss = _result(prepared, one.signer or "recipient-not-covered")
    return found


def _rest(rules: Rules, path: _Path) -> _Rest:
    """What checks 9-11 of a path read: its data, the denies beneath it (a permit root: the
    whole tree; a nested permit: its own), completeness."""
    node = path.node
    path.rest = rest = _Rest(
        refs=_listed(node),
        denies=tuple([_match(rules, n) for n in _deny_nodes(node)]) if node.children else (),
        complete=_complete(rules, node, path.has_actors),
        lists_data=bool(node.labels or node.classes or node.codes or node.data))
    return rest


_BY_REFERENCE = attrgetter("reference")
_BY_SIGNING = attrgetter("signed_at")


def _signing_order(consents: Iterable[Authorization]) -> list[Authorization]:
    """Candidate order (1.2): signing time (unknown last), then id. Two stable sorts by
    C-level keys (no Python call per Consent)."""
    signed = [c for c in consents if c.signed_at is not None]
    unknown = [c for c in consents if c.signed_at is None]
    unknown.sort(key=_BY_REFERENCE)
    signed.sort(key=_BY_REFERENCE)
    signed.sort(key=_BY_SIGNING)
    return signed + unknown


class _PreparedChart:
    """One chart's Consents, prepared: each candidate's result where checks 1-3 settle it
    whatever the disclosure (`settled`, in signing order, None for the others), the others
    (`open`, with their places), and the restrictions that can be in force."""

    __slots__ = ("adult", "chart", "done", "majority", "open", "restrictions", "settled")

    def __init__(self, rules: Rules, chart: Chart, majority: int,
                 prepared_kinds: dict | None = None) -> None:
        self.chart = chart
        self.majority = majority
        self.adult = _adult_from(chart, majority)
        kinds = prepared_kinds if prepared_kinds is not None else {}
        settled: list[CandidateResult | None] = []
        opened: list[tuple[int, _Consent]] = []
        restrictions = []
        for c in _signing_order(chart.consents):
            key = (c.scopes, c.categories, c.policy_rules)  # a chart's Consents: few kinds
            kind = kinds.get(key)
            if kind is None:
                kind = kinds[key] = _kind(rules, c)
            candidate, authorization, restriction_policy = kind
            if restriction_policy:
                restriction = _restriction(rules, c)
                if restriction is not None:
                    restrictions.append(restriction)
            if not candidate:
                continue
            if authorization and c.status == "active" and c.signed:  # the usual case
                reason = revoked_at = None
            else:
                reason, revoked_at = _settled(c, authorization)
            if reason is None:
                opened.append((len(settled), _Consent(c, revoked_at)))
                settled.append(None)
            else:
                settled.append(_new_result(CandidateResult, (c.reference, reason)))
        self.settled = settled
        self.open = opened
        # every candidate's result when checks 1-3 settle them all
        self.done = None if opened else tuple(settled)
        self.restrictions = restrictions


class Prepared:
    """Prepared Consents for one evaluation run: each chart's, worked out once.

    Keyed by the chart's identity (and holding the chart, so the key stays valid) and the age
    of majority: the disclosures of one patient share one chart object."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._charts: dict[tuple[int, int], _PreparedChart] = {}
        self.exceptions: dict = {}  # 1.3 verdicts by what they read (`exception_decision`)
        self.kinds: dict = {}  # each kind of Consent's `_kind`, by the codes it reads
        self.facts: dict = {}  # `context`'s label flags and lineages, by what they read
        self.last: _PreparedChart | None = None  # the chart of the last decision (a run
        # decides a patient's disclosures one after another)

    def of(self, chart: Chart, majority: int) -> _PreparedChart:
        key = (id(chart), majority)
        found = self._charts.get(key)
        if found is None or found.chart is not chart:
            found = _PreparedChart(self.rules, chart, majority, self.kinds)
            self._charts[key] = found
        return found

    def forget(self, chart: Chart) -> None:
        """Drop a chart's preparation (a caller that streams patients frees as it goes)."""
        for key in [k for k, v in self._charts.items() if v.chart is chart]:
            del self._charts[key]
        if self.last is not None and self.last.chart is chart:
            self.last = None


# --------------------------------------------------------------------------------------------
# Matching a disclosure
# --------------------------------------------------------------------------------------------


def _recipient_matches(d: Disclosure, match: _Match) -> bool:
    """Check 7 and a deny's actors: by reference, or by identifier (system|value)."""
    if d.recipient is not None and d.recipient in match.actor_refs:
        return True
    return bool(match.actor_ids) and not match.actor_ids.isdisjoint(d.recipient_identifiers)


def deny_matches(facts: _Facts, deny: _Match) -> bool:
    """A deny node matches when each constraint it sets holds (1.2 check 10)."""
    d = facts.disclosure
    node = deny.node
    if deny.has_actors and not _recipient_matches(d, deny):
        return False
    if node.purposes:  # loops, not generators: a run matches many denies
        for lineage in facts.lineages:
            if not lineage.isdisjoint(deny.purposes):
                break
        else:
            return False
    if node.start is not None and node.start > d.occurred:
        return False
    if node.end is not None and node.end < d.occurred:
        return False
    entities = d.entities
    if node.labels:
        for e in entities:
            if not e.labels.isdisjoint(node.labels):
                break
        else:
            return False
    if node.classes:
        for e in entities:
            if not e.classes.isdisjoint(node.classes):
                break
        else:
            return False
    if node.codes:
        for e in entities:
            if not e.codes.isdisjoint(node.codes):
                break
        else:
            return False
    return not node.data or any(e.reference in deny.refs for e in entities)


# --------------------------------------------------------------------------------------------
# The eleven checks (1.2)
# --------------------------------------------------------------------------------------------


def _data(facts: _Facts, c: Authorization, node: Provision, refs: frozenset[str]
          ) -> str | None:
    """Check 9: the path's data lists hold every disclosed entity (`refs`: the data it lists
    by reference); then the special data."""
    if node.labels or node.classes or node.codes or node.data:
        for e in facts.disclosure.entities:
            if node.labels and (not e.labels or not e.labels <= node.labels):
                return "data-not-covered"
            if node.classes and e.classes.isdisjoint(node.classes):
                return "data-not-covered"
            if node.codes and e.codes.isdisjoint(node.codes):
                return "data-not-covered"
            if node.data and e.reference not in refs:
                return "data-not-covered"
    if facts.special:
        sens = facts.rules.sensitivity
        if facts.psychotherapy_notes and node.labels.isdisjoint(sens.psychotherapy_notes):
            return sens.psychotherapy_reason
        if (facts.part2 and node.labels.isdisjoint(sens.part2)
                and not any(uri.startswith(sens.part2_policy_prefix)
                            for uri in c.policy_uris)):
            return sens.part2_reason
    return None


def _purposes_covered(facts: _Facts, path: _Path) -> bool:
    """Check 8: each purpose of the disclosure, or one of its ancestors, is listed (the
    path's codes are read the first time a disclosure gets this far)."""
    listed = path.purposes
    if listed is None:
        listed = path.purposes = _purposes(facts.rules, path.node)
    lineages = facts.lineages
    if len(lineages) == 1:  # most disclosures have one purpose: no generator
        return not lineages[0].isdisjoint(listed)
    return bool(lineages) and all(not lineage.isdisjoint(listed) for lineage in lineages)


def _after_recipient(facts: _Facts, c: Authorization, path: _Path) -> tuple[int, str] | None:
    """Checks 8-11 of one path, in order: the first failure, or None."""
    if path.node.purposes and not _purposes_covered(facts, path):
        return _PURPOSE_NOT_COVERED
    rest = path.rest
    if rest is None:
        rest = _rest(facts.rules, path)
    if rest.lists_data or facts.special:
        data = _data(facts, c, path.node, rest.refs)
        if data is not None:
            return 9, data
    for deny in rest.denies:
        if deny_matches(facts, deny):
            return _DENIED
    if not rest.complete:
        return _INCOMPLETE
    return None


_PURPOSE_NOT_COVERED = (8, "purpose-not-covered")
_DENIED = (10, "denied-by-provision")
_INCOMPLETE = (11, "authorization-incomplete")


def _result(prepared: _Consent, reason: str | None, near_miss: bool = False
            ) -> CandidateResult:
    """The candidate's result for `reason`: the one it last gave when the same (a Consent
    fails for one of a few reasons, mostly the same one disclosure after disclosure, so a
    result is made once and shared by the decisions that list it), else a new one."""
    last = prepared.last
    if last is not None and last[1] == reason and last.near_miss is near_miss:
        return last
    found = prepared.last = _new_result(_NearMiss if near_miss else CandidateResult,
                                        (prepared.consent.reference, reason))
    return found


_REVOKED = "authorization-revoked"
_UNSIGNED = "authorization-unsigned"
_NOT_YET_VALID = "authorization-not-yet-valid"
_EXPIRED = "authorization-expired"


def _results(facts: _Facts, pc: _PreparedChart) -> tuple[CandidateResult, ...]:
    """Every candidate's result, in signing order (1.2).

    Those checks 1-3 settle whatever the disclosure are in place already (`settled`). Then
    time, inline: most other candidates of a chart are revoked, not yet valid or expired at
    a given disclosure, and those results depend on nothing else (a revocation counts from
    its instant; not yet valid is signed after the disclosure or every path begun after it;
    expired is every path ended before it, which makes each path's furthest check 5). The
    rest go through `_check`."""
    if pc.done is not None:
        return pc.done
    d = facts.disclosure
    occurred = d.occurred
    recipient, identifiers, adolescent = d.recipient, d.recipient_identifiers, facts.adolescent
    out = pc.settled.copy()
    for i, p in pc.open:
        lo = p.lo
        if lo is None:  # never within a window: time alone decides, whenever
            r = _by_time(facts, p)
        elif occurred < lo:  # signed and begun only later
            r = p.before
            if r is None:
                r = p.before = _new_result(CandidateResult, (p.consent.reference,
                                                             _NOT_YET_VALID))
        elif occurred > p.hi:  # revoked, or every path ended
            revoked_at = p.revoked_at
            if revoked_at is not None and occurred >= revoked_at:
                r = p.revoked
                if r is None:
                    r = p.revoked = _new_result(CandidateResult, (p.consent.reference,
                                                                  _REVOKED))
            else:
                r = p.expired
                if r is None:
                    r = p.expired = _new_result(CandidateResult, (p.consent.reference,
                                                                  _EXPIRED))
        else:  # time alone decides nothing
            one = p.one
            if one is None:  # paths not yet prepared, or several
                r = _check(facts, p)
            elif (one.has_actors and recipient not in one.actor_refs
                    and (not one.actor_ids or one.actor_ids.isdisjoint(identifiers))):
                r = (p.miss_adolescent if adolescent else p.miss) or _miss(p, adolescent)
            else:
                r = _check_one(facts, p, one)
        out[i] = r
    return tuple(out)  # type: ignore[arg-type]  # every place filled


def _by_time(facts: _Facts, p: _Consent) -> CandidateResult:
    """A candidate with no window (`lo` None): revoked, unsigned, never valid or expired by
    the rules of `_results`; what is left goes through the checks."""
    d = facts.disclosure
    occurred = d.occurred
    revoked_at = p.revoked_at
    reference = p.consent.reference
    if revoked_at is not None and occurred >= revoked_at:
        r = p.revoked
        if r is None:
            r = p.revoked = _new_result(CandidateResult, (reference, _REVOKED))
        return r
    if p.unsigned:
        return _result(p, _UNSIGNED)
    if p.valid_from is None or p.valid_from > occurred:
        r = p.before
        if r is None:
            r = p.before = _new_result(CandidateResult, (reference, _NOT_YET_VALID))
        return r
    if p.expires is not None and p.expires < occurred:
        r = p.expired
        if r is None:
            r = p.expired = _new_result(CandidateResult, (reference, _EXPIRED))
        return r
    return _check(facts, p)


def _check_one(facts: _Facts, prepared: _Consent, path: _Path) -> CandidateResult:
    """Checks 6 and 8-11 of a candidate with one permit path, within its window (so its
    period holds, checks 4 and 5) for a recipient it names or with none named (check 7):
    what `_check` finds for that path, without its loop."""
    rest = _after_recipient(facts, prepared.consent, path)
    signer = path.signer_adolescent if facts.adolescent else path.signer
    if signer is not None:
        reason, near = signer, signer == MINOR_SELF and rest is None
    elif rest is None:
        facts.covered_or_near = True
        return _result(prepared, None)
    else:
        reason, near = rest[1], rest[0] == 11
    if near:
        facts.covered_or_near = True
    return _result(prepared, reason, near)


def _check(facts: _Facts, prepared: _Consent) -> CandidateResult:
    """Checks 4-11 of a candidate that `_results` found signed, unrevoked and within its
    time bounds; the reason comes from the path that got furthest (the first such path on a
    tie), and so does the near miss (1.2, the decision).

    Written flat: it runs for most candidates of most decisions."""
    d = facts.disclosure
    occurred = d.occurred
    paths = prepared.paths
    if paths is None:
        paths = _paths(facts, prepared)
    if not paths:
        if prepared.consent.provision is None:  # signed, no provision: check 11 only
            facts.covered_or_near = True
            return _result(prepared, "authorization-incomplete", True)
        denied = prepared.consent.provision is not None and \
            prepared.consent.provision.type == "deny"
        return _result(prepared, "denied-by-provision" if denied
                       else "authorization-incomplete", False)
    best, best_reason, best_near = 0, "", False
    for path in paths:
        if path.start is not None and path.start > occurred:
            check, reason, near = 4, "authorization-not-yet-valid", False
        elif path.end is not None and path.end < occurred:
            check, reason, near = 5, "authorization-expired", False
        else:
            signer = path.signer_adolescent if facts.adolescent else path.signer
            if path.has_actors and not (
                    d.recipient in path.actor_refs
                    or (path.actor_ids
                        and not path.actor_ids.isdisjoint(d.recipient_identifiers))):
                rest: tuple[int, str] | None = (7, "recipient-not-covered")
            else:
                rest = _after_recipient(facts, prepared.consent, path)
            if signer is not None:
                check, reason, near = 6, signer, signer == MINOR_SELF and rest is None
            elif rest is None:
                facts.covered_or_near = True
                return _result(prepared, None)
            else:
                check, reason = rest
                near = check == 11
        if check > best:
            best, best_reason, best_near = check, reason, near
    if best_near:
        facts.covered_or_near = True
    return _result(prepared, best_reason, best_near)


# --------------------------------------------------------------------------------------------
# Exceptions (1.3)
# --------------------------------------------------------------------------------------------


def _recipient_may_access(facts: _Facts) -> bool:
    """First row: the recipient is the patient, or someone who may sign for the patient now."""
    d = facts.disclosure
    if d.patient is None:
        return False
    recipient = d.recipient
    if recipient is not None:
        return (recipient == d.patient or (recipient.startswith("RelatedPerson/")
                and speaks_for(facts, recipient, d.occurred)))
    patient = facts.chart.patient
    return patient is not None and not patient.identifiers.isdisjoint(d.recipient_identifiers)


def _row_applies(facts: _Facts, row: ExceptionRow, instruments: frozenset[str]) -> bool:
    if row.recipient_types is not None and facts.recipient_type not in row.recipient_types:
        return False
    if row.duty is not None and facts.duty not in row.duty:
        return False
    if row.instruments_any is not None and row.instruments_any.isdisjoint(instruments):
        return False
    return row.instruments_all is None or row.instruments_all <= instruments


def row_for(facts: _Facts, purpose: str, instruments: frozenset[str]) -> ExceptionRow:
    """The first row that lists the purpose exactly and whose conditions hold, else the row
    for any other ActReason code."""
    table = facts.rules.exceptions
    for row in table.by_purpose.get(purpose, ()):
        if _row_applies(facts, row, instruments):
            return row
    return table.other_purpose


class _Verdict(NamedTuple):
    """A decision on its way to an Outcome: the winning rows', then perhaps converted (a
    named tuple: every decision makes one or more)."""

    decision: Decision
    basis: str | None
    accountable: bool
    causes: tuple[str, ...]  # the codes the decision came from (section 3)
    rows: tuple[ExceptionRow, ...] = ()
    converted: str | None = None


def _narrow(facts: _Facts, row: ExceptionRow, instruments: frozenset[str]) -> _Verdict:
    """Psychotherapy notes and Part 2 data narrow a row when no Consent covers (1.3).

    Each sensitive kind present gives the row's narrowed decision ("stand" keeps the row);
    the strictest applies when it is at least as strict as the row itself."""
    sens = facts.rules.sensitivity
    effects = []
    if facts.psychotherapy_notes:
        effects.append((row.psychotherapy_notes, sens.psychotherapy_reason))
    if facts.part2 and row.part2_stands_with.isdisjoint(instruments):
        effects.append((row.part2, sens.part2_reason))
    narrowed = [(Decision(effect), reason) for effect, reason in effects if effect != "stand"]
    if narrowed:
        decision, reason = max(narrowed, key=lambda item: _RANK[item[0]])  # first on a tie
        if _RANK[decision] >= _RANK[row.decision]:
            return _Verdict(decision, None, True, (reason,), (row,))
    return _Verdict(row.decision, row.basis, row.accountable,
                    (row.reason,) if row.reason else (), (row,))


_Rows = tuple[_Verdict, list[_Verdict]]


def exception_decision(facts: _Facts, memo: dict | None = None) -> _Rows:
    """The winning verdict and every purpose's, in purpose order (1.3).

    The first row goes before all others; request codes count only when nothing else is
    listed; the strictest wins. Every purpose whose row won counts: the basis is the first's,
    the decision is accountable when any winning row is, and its codes are each one's.
    `memo` keeps the purpose rows' verdicts of one run by everything they read."""
    table = facts.rules.exceptions
    instruments = facts.disclosure.instruments
    if instruments and instruments <= table.ignored_alone:  # `_instruments`, inline
        instruments = _NONE
    if _recipient_may_access(facts):
        return _winner([_narrow(facts, table.access, instruments)])
    d = facts.disclosure
    key = (d.purposes, facts.recipient_type, facts.duty, instruments, facts.psychotherapy_notes,
           facts.part2)
    found = memo.get(key) if memo is not None else None
    if found is None:
        purposes = d.purposes
        kept = [p for p in purposes if p not in table.request_codes] or list(purposes)
        if not kept:
            found = _winner([_narrow(facts, table.no_purpose, instruments)])
        else:
            # each purpose's verdict kept under its own key (a str, where a list's is a
            # tuple): disclosures for two purposes share them with those for one
            verdicts = []
            for p in kept:
                one = (p, *key[1:])
                verdict = memo.get(one) if memo is not None else None
                if verdict is None:
                    verdict = _narrow(facts, row_for(facts, p, instruments), instruments)
                    if memo is not None:
                        memo[one] = verdict
                verdicts.append(verdict)
            found = _winner(verdicts)
        if memo is not None:
            memo[key] = found
    return found


def _winner(decided: list[_Verdict]) -> _Rows:
    """The strictest verdict, every winning row counted (1.3)."""
    if len(decided) == 1:
        return decided[0], decided
    top = max(_RANK[v.decision] for v in decided)
    winners = [v for v in decided if _RANK[v.decision] == top]
    first = winners[0]
    causes = tuple(dict.fromkeys(code for v in winners for code in v.causes))
    winner = _Verdict(first.decision, first.basis, any(v.accountable for v in winners),
                      causes, tuple(row for v in winners for row in v.rows))
    return winner, decided


def _in_force(restriction: _Restriction, occurred: datetime) -> bool:
    """A restriction in force at the disclosure: its root period (to its revocation, when
    inactive) contains the disclosure."""
    start, end = restriction.start, restriction.end
    if start is not None and start > occurred:
        return False
    if end is None:
        return True
    return occurred < end if restriction.revoked else occurred <= end


def restricted(facts: _Facts, restrictions: Iterable[_Restriction]) -> bool:
    """A hipaa-restrictions / hipaa-self-pay Consent in force whose deny matches (1.2)."""
    occurred = facts.disclosure.occurred
    return any(_in_force(r, occurred) and any(deny_matches(facts, node)
                                              for node in r.denies)
               for r in restrictions)


# --------------------------------------------------------------------------------------------
# Documentation and client notice (1.4)
# --------------------------------------------------------------------------------------------


def documentation_and_notice(facts: _Facts, decision: Decision,
                             rows: tuple[ExceptionRow, ...]
                             ) -> tuple[Documentation, ClientNotice]:
    """1.4: owed for required decisions and for permitted ones where a winning row breaks
    confidentiality (emergency treatment, serious threat); not required for the rest."""
    if decision is not _REQUIRED:
        if decision is not _PERMITTED:
            return _NO_DOCUMENTATION, _NO_NOTICE
        for row in rows:  # a loop: most permitted decisions stop here
            if row.breaks_confidentiality:
                break
        else:
            return _NO_DOCUMENTATION, _NO_NOTICE
    d = facts.disclosure
    documentation = (Documentation.PRESENT if d.reference in facts.chart.documented
                     else Documentation.MISSING)
    if (rows and all(row.notice_exempt_minor for row in rows)
            and _minor(facts.chart, facts.majority, d.occurred) is True):
        return documentation, _NO_NOTICE
    return documentation, _client_notice(facts)


def _client_notice(facts: _Facts) -> ClientNotice:
    """Sent if a completed notice reached the client; withheld if one was not done for a
    stated reason; else missing. Notices to anyone else do not count."""
    d = facts.disclosure
    notices = facts.chart.notices.get(d.reference)
    if not notices:
        return ClientNotice.MISSING
    codes = facts.rules.disclosures
    to_client = [n for n in notices
                 if any(speaks_for(facts, r, d.occurred) for r in n.recipients)]
    if any(n.status in codes.notice_sent_status for n in to_client):
        return ClientNotice.SENT
    if any(n.status in codes.notice_withheld_status and n.has_status_reason for n in to_client):
        return ClientNotice.WITHHELD
    return ClientNotice.MISSING


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


def decide(rules: Rules, disclosure: Disclosure, chart: Chart,
           jurisdiction: Jurisdiction | None = None, *,
           prepared: Prepared | None = None) -> Outcome:
    """Decide one disclosure (CONTRACT.md 1.2-1.4, reasons as section 3 orders them).

    `prepared` keeps each chart's prepared Consents across the disclosures of one run; pass
    one Prepared for a run (without it, the chart is prepared for this decision alone)."""
    prepared = prepared if prepared is not None else Prepared(rules)
    facts = context(rules, disclosure, chart, jurisdiction, prepared.facts)
    pc = prepared.last
    if pc is None or pc.chart is not chart or pc.majority != facts.majority:
        pc = prepared.last = prepared.of(chart, facts.majority)
    facts.adult = pc.adult
    results = _results(facts, pc) if pc.settled else ()
    covering = None
    near_miss = False
    if facts.covered_or_near:  # else no result is either: no need to look
        for result in results:
            if result[1] is None:  # its reason (an index: a result is a tuple)
                covering = result
                break
            if result.near_miss:
                near_miss = True
    if covering is not None:
        # Authorized disclosures are accountable only with Part 2 data (42 CFR 2.24).
        verdict = _Verdict(_AUTHORIZED, covering[0], facts.part2, ())
    else:
        verdict = _without_authorization(facts, near_miss, pc.restrictions,
                                         prepared.exceptions)
    decision = verdict.decision
    if decision is _AUTHORIZED or decision is _PERMITTED:
        unresolved = not disclosure.entities
        for e in disclosure.entities:  # inline: most decisions know what was sent
            if not e.resolved and not e.labels:
                unresolved = True
                break
        if unresolved:
            verdict = _unless_data_unresolved(verdict, disclosure)
            decision = verdict.decision
    if decision is _REQUIRED or decision is _PERMITTED:
        documentation, notice = documentation_and_notice(facts, decision, verdict.rows)
    else:
        documentation, notice = _NO_DOCUMENTATION, _NO_NOTICE
    causes, rows = verdict.causes, verdict.rows
    reasons = (_reasons(causes, results)
               if decision is _UNAUTHORIZED or decision is _REVIEW else ())
    return Outcome(decision, verdict.basis, reasons, verdict.accountable, documentation,
                   notice, results,
                   rows[0] if rows else None, causes[0] if causes else None,
                   verdict.converted, causes, rows)


def _without_authorization(facts: _Facts, near_miss: bool, restrictions: list[_Restriction],
                           memo: dict) -> _Verdict:
    """1.3 decides; then a near miss (some candidate's) turns unauthorized into review, and a
    patient's restriction turns a treatment, payment or operations permission into
    unauthorized."""
    winner, decided = exception_decision(facts, memo)
    if near_miss and winner.decision is _UNAUTHORIZED:
        return _Verdict(_REVIEW, None, winner.accountable, winner.causes, winner.rows,
                        "near-miss")
    if (winner.decision is _PERMITTED and restrictions
            and all(row.restrictable for v in decided for row in v.rows)
            and restricted(facts, restrictions)):
        return _Verdict(_UNAUTHORIZED, None, True,
                        (facts.rules.consents.restriction_reason,), winner.rows, "restriction")
    return winner


def _unless_data_unresolved(verdict: _Verdict, disclosure: Disclosure) -> _Verdict:
    """Authorized or permitted needs to know what was sent (1.2, last paragraph); otherwise
    review, keeping the accountable value of the decision it replaces."""
    if verdict.decision not in (_AUTHORIZED, _PERMITTED):
        return verdict
    entities = disclosure.entities
    if entities and all(e.resolved or e.labels for e in entities):
        return verdict
    return _Verdict(_REVIEW, None, verdict.accountable, (DATA_UNRESOLVED,),
                    verdict.rows, "data-unresolved")


def _reasons(causes: tuple[str, ...], results: tuple[CandidateResult, ...]
             ) -> tuple[str, ...]:
    """Section 3, for unauthorized and review (the others give none): the decision's own
    codes, no-authorization, then each candidate's reason."""
    if not results:
        return tuple(dict.fromkeys((*causes, NO_AUTHORIZATION)))
    ordered = dict.fromkeys(causes)  # first appearance kept, in order
    ordered.update(dict.fromkeys(map(_REASON, results)))
    ordered.pop(None, None)  # a covering candidate (converted to review) gives no reason
    return tuple(ordered)


__all__ = [
    "DATA_UNRESOLVED",
    "NO_AUTHORIZATION",
    "CandidateResult",
    "Outcome",
    "Prepared",
    "age_on",
    "context",
    "decide",
    "denies_of",
    "deny_matches",
    "documentation_and_notice",
    "exception_decision",
    "is_authorization",
    "permit_paths",
    "restricted",
    "row_for",
    "speaks_for",
]
