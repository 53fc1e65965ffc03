"""Plain domain objects shared by the engine, the scan, the write-back and the panel.

Nothing here knows FHIR shapes (normalize.py reads them, writeback/ writes them), nothing does
I/O and nothing is worded (wording/ holds the words for these codes): these are the values the
pure engine takes and returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

Coding = tuple[str, str]
"""A code as (system, code): codes match on both, never on display."""

REASON_CODES = frozenset({
    "no-authorization", "not-an-authorization", "authorization-not-active",
    "authorization-revoked", "authorization-unsigned", "authorization-not-yet-valid",
    "authorization-expired", "authorizer-not-permitted", "minor-self-authorization",
    "recipient-not-covered", "purpose-not-covered", "data-not-covered",
    "psychotherapy-notes-need-specific-authorization", "part2-consent-required",
    "denied-by-provision", "authorization-incomplete", "restricted-by-patient",
    "data-unresolved", "subpoena-without-court-order", "legal-review-needed",
    "family-involvement-review", "recipient-not-a-provider", "purpose-unmapped",
    "purpose-missing",
})
"""Every reason code of CONTRACT.md section 3."""


#: The trace of a decision (Finding.decided_by), besides a covering Consent's reference:
TRACE_RULE = "exceptions/"  # + the id of the 1.3 row in exceptions.toml that won
TRACE_PSYCHOTHERAPY_NOTES = "narrowing/psychotherapy-notes"  # 1.3, sensitive data
TRACE_PART2 = "narrowing/part2"
TRACE_CONVERSIONS = frozenset({"near-miss", "restriction", "data-unresolved"})  # 1.2, 1.3
TRACE_TURNS = frozenset({TRACE_PSYCHOTHERAPY_NOTES, TRACE_PART2, *TRACE_CONVERSIONS})


class Decision(StrEnum):
    """CONTRACT.md section 2; ordered here from the most to the least covered."""

    AUTHORIZED = "authorized"
    PERMITTED = "permitted"
    REQUIRED = "required"
    UNAUTHORIZED = "unauthorized"
    REVIEW = "review"


class Documentation(StrEnum):
    PRESENT = "present"
    MISSING = "missing"
    NOT_REQUIRED = "not-required"


class ClientNotice(StrEnum):
    SENT = "sent"
    WITHHELD = "withheld"
    MISSING = "missing"
    NOT_REQUIRED = "not-required"


#: The system of the business identifier (or, where R4 has none, the `meta.tag`) the guide
#: puts on what it records (CONTRACT 6.3): a recorded disclosure's identity.
PROPOSAL_SYSTEM = "https://consent-gap.dev/fhir/proposal"


@dataclass(frozen=True)
class Problem:
    """A resource that could not be read; reported, never fatal."""

    resource: str
    message: str

    def to_json(self) -> dict:
        return {"resource": self.resource, "message": self.message}


@dataclass(frozen=True)
class Finding:
    """One decided disclosure, exactly the fields of CONTRACT.md section 2 (plus context for
    the write-back and the panel, which the JSON output leaves out)."""

    disclosure: str
    patient: str | None
    occurred: str
    recipient: str | None
    purposes: tuple[str, ...]
    decision: Decision
    basis: str | None
    reasons: tuple[str, ...]
    accountable: bool
    documentation: Documentation
    client_notice: ClientNotice
    explanation: str
    # Context for write-back and panel (not part of the contract's JSON):
    # (Consent ref, its reason or None when it covers), in candidate order:
    consents_checked: tuple[tuple[str, str | None], ...] = field(default=())
    notify: tuple[str, ...] = field(default=())  # Practitioner/PractitionerRole refs (1.1)
    disclosed: tuple[str, ...] = field(default=())  # data disclosed: entity refs, 1.1 order
    instruments: tuple[str, ...] = field(default=())  # legal-instrument DocumentReference refs
    # What decided, for a privacy officer to trace (TRACE_* below; worded by wording.trace):
    # the covering Consent or the 1.3 row, then any narrowing or conversion.
    decided_by: tuple[str, ...] = field(default=())
    # The disclosure's consent-gap business identifier ("system|value") when it has one: what
    # the write-back's identifiers are keyed by instead of `disclosure` (writeback.
    # identifier_value), so the guide's record and a later scan name the same disclosure.
    identity: str | None = None

    @classmethod
    def of(cls, **fields: Any) -> Finding:
        """A Finding from every one of its fields, as `Finding(...)` builds it.

        evaluate builds one per disclosure: the frozen dataclass's `__init__` sets each of the
        18 fields by its own `object.__setattr__` (0.04 CPU s of bench/evaluate.py's 20,000
        disclosures); this hands the instance its attribute dict at once. Every field must be
        given (no defaults apply), else TypeError, as the constructor would say. Fields given
        in the order the class lists them (evaluate's) are checked by one comparison of
        their names in order (0.013 CPU s less than comparing them as sets, per 20,000)."""
        if tuple(fields) != _FINDING_ORDER and fields.keys() != _FINDING_FIELDS:
            missing = sorted(_FINDING_FIELDS - fields.keys()) or sorted(fields.keys()
                                                                        - _FINDING_FIELDS)
            raise TypeError(f"Finding.of: every field, exactly: {', '.join(missing)}")
        finding = object.__new__(cls)
        object.__setattr__(finding, "__dict__", fields)
        return finding

    @property
    def key(self) -> str:
        """The identity of the disclosure for the write-back (CONTRACT 5): its business
        identifier when it carries one, else its reference (unchanged for every install)."""
        return self.identity or self.disclosure

    def to_json(self, *, native: bool = False) -> dict:
        """The finding's JSON (CONTRACT.md section 2). `native`: its lists as the tuples and
        its codes as the enum members the finding holds, for a writer that writes those as
        JSON arrays and strings (orjson), without a copy of each (0.03 CPU s of writing
        bench/evaluate.py's 20,000 findings)."""
        purposes, decision, reasons = self.purposes, self.decision, self.reasons
        documentation, client_notice = self.documentation, self.client_notice
        if not native:  # plain JSON values
            purposes, decision, reasons = list(purposes), str(decision), list(reasons)
            documentation, client_notice = str(documentation), str(client_notice)
        return {
            "disclosure": self.disclosure,
            "patient": self.patient,
            "occurred": self.occurred,
            "recipient": self.recipient,
            "purposes": purposes,
            "decision": decision,
            "basis": self.basis,
            "reasons": reasons,
            "accountable": self.accountable,
            "documentation": documentation,
            "client_notice": client_notice,
            "explanation": self.explanation,
        }


_FINDING_FIELDS = frozenset(Finding.__dataclass_fields__)
_FINDING_ORDER = tuple(Finding.__dataclass_fields__)  # the fields in the class's order


# ------------------------------------------------------------------------------------------
# Engine inputs: what normalize.py reads out of FHIR resources (CONTRACT.md 1.1 and 1.2).
# Times are timezone-aware UTC datetimes; references are "Type/id".
# ------------------------------------------------------------------------------------------


_S = TypeVar("_S")


def _slots_of(cls: type[_S]) -> Callable[..., _S]:
    """`cls(**fields)` of a frozen slotted dataclass, faster: every field given by keyword
    (no default applies; a missing or unknown one is a TypeError, as the constructor says),
    each set through its slot's descriptor where the frozen `__init__` calls
    `object.__setattr__` per field. normalize builds one Disclosure per disclosure (1.38 ->
    0.85 us) and one Entity per item disclosed. The function is generated, as dataclasses
    generates `__init__`, from the field names alone; `Finding.of` is the same for a
    `__dict__` dataclass."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    source = (f"def of(*, {', '.join(names)}):\n    made = new(cls)\n"
              + "".join(f"    set_{name}(made, {name})\n" for name in names)
              + "    return made\n")
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    namespace.update({f"set_{name}": getattr(cls, name).__set__ for name in names})
    exec(source, namespace)  # noqa: S102 - the source holds only the dataclass's field names
    return namespace["of"]


@dataclass(frozen=True, slots=True)
class Entity:
    """One disclosed item (1.1 "data disclosed"): an AuditEvent entity, or a Communication's
    payload (a `contentReference`, or data sent that nothing in the record describes)."""

    reference: str | None
    resource_type: str | None
    resolved: bool  # the referenced resource is in the data set
    labels: frozenset[Coding] = frozenset()  # counted labels only (ActCode, USPrivacyLaw)
    classes: frozenset[Coding] = frozenset()  # resource type, DocumentReference type codings
    codes: frozenset[Coding] = frozenset()  # codings of the resource's type or code
    of: ClassVar[Callable[..., Entity]]  # `Entity(...)` with every field: `_slots_of`

    @property
    def unresolved(self) -> bool:
        """Not in the data set and carrying no label itself: nothing can be said about it."""
        return not self.resolved and not self.labels


@dataclass(frozen=True, slots=True)
class Disclosure:
    """A disclosure, read (1.1): a BALP PrivacyDisclosure AuditEvent or a Communication sent on
    a disclosure channel; `reference` ("AuditEvent/..." or "Communication/...") is which."""

    reference: str
    occurred: datetime
    patient: str | None
    # whom the recipient names: "Type/id" of the data set (given by reference, or by an
    # identifier that a resource of the data set carries), an absolute URL on another server
    # (never one of the data set's resources), or None
    recipient: str | None
    recipient_identifiers: frozenset[str] = frozenset()  # "system|value"
    purposes: tuple[str, ...] = ()  # ActReason codes, in listed order, each once
    instruments: frozenset[str] = frozenset()  # legal-instrument codes that count
    instrument_refs: tuple[str, ...] = ()  # the DocumentReferences that carry them
    entities: tuple[Entity, ...] = ()
    notify: tuple[str, ...] = ()
    recipient_shown: str | None = None  # the recipient as written: reference, else identifier
    # "system|value" of the consent-gap business identifier (PROPOSAL_SYSTEM) when the
    # disclosure carries one (a disclosure the guide recorded), else None: see Finding.identity
    identity: str | None = None
    of: ClassVar[Callable[..., Disclosure]]  # `Disclosure(...)` with every field: `_slots_of`

    @property
    def recipient_type(self) -> str | None:
        """The recipient's resource type (1.3 rows); none for another server's resource."""
        recipient = self.recipient
        if not recipient or recipient.startswith(("http://", "https://")):
            return None
        return recipient.split("/", 1)[0]

    @property
    def recipient_label(self) -> str | None:
        """What the JSON output shows as the recipient: the reference, else an identifier."""
        if self.recipient_shown:
            return self.recipient_shown
        if self.recipient:
            return self.recipient
        return min(self.recipient_identifiers) if self.recipient_identifiers else None


Entity.of = _slots_of(Entity)
Disclosure.of = _slots_of(Disclosure)


@dataclass(frozen=True, slots=True)
class Actor:
    roles: frozenset[Coding]
    reference: str | None
    identifier: str | None  # "system|value"
    of: ClassVar[Callable[..., Actor]]  # `Actor(...)` with every field: `_slots_of`


@dataclass(frozen=True, slots=True)
class Provision:
    """A node of a Consent's provision tree; `start`/`end` already inherit the parent's period."""

    type: str  # "permit" | "deny"
    start: datetime | None = None
    end: datetime | None = None
    actors: tuple[Actor, ...] = ()
    purposes: frozenset[Coding] = frozenset()
    labels: frozenset[Coding] = frozenset()
    classes: frozenset[Coding] = frozenset()
    codes: frozenset[Coding] = frozenset()
    data: tuple[tuple[str | None, str | None], ...] = ()  # (meaning, reference)
    has_data_period: bool = False
    actions: tuple[frozenset[Coding], ...] = ()
    children: tuple[Provision, ...] = ()
    of: ClassVar[Callable[..., Provision]]  # `Provision(...)` with every field: `_slots_of`


@dataclass(frozen=True, slots=True)
class Authorization:
    """A Consent, read (1.2); `signed_at` is the signature's `when`, else `Consent.dateTime`."""

    reference: str
    patient: str | None
    status: str | None
    scopes: frozenset[Coding] = frozenset()
    categories: frozenset[Coding] = frozenset()
    policy_rules: frozenset[Coding] = frozenset()
    policy_uris: tuple[str, ...] = ()
    signed: bool = False
    signed_at: datetime | None = None
    last_updated: datetime | None = None
    performers: tuple[str, ...] = ()
    provision: Provision | None = None
    narrative: str | None = None  # Consent.text.div, for the panel's label only; never decides
    of: ClassVar[Callable[..., Authorization]]  # `Authorization(...)` with every field: `_slots_of`


Actor.of = _slots_of(Actor)
Provision.of = _slots_of(Provision)
Authorization.of = _slots_of(Authorization)


@dataclass(frozen=True, slots=True)
class Person:
    """A Patient: the age rules need its birth date; the access row its identifiers. Name and
    gender are for the panel's banner only: nothing is decided on them."""

    reference: str
    birth_date: date | None = None
    identifiers: frozenset[str] = frozenset()
    name: str | None = None
    gender: str | None = None


@dataclass(frozen=True, slots=True)
class Representative:
    """A RelatedPerson with its v3-RoleCode relationships."""

    reference: str
    patient: str | None
    relationships: frozenset[Coding] = frozenset()


@dataclass(frozen=True, slots=True)
class Notice:
    """A Communication about a disclosure (1.4 client notice), without consent-gap's own."""

    reference: str
    recipients: tuple[str, ...]
    status: str | None
    has_status_reason: bool


@dataclass(frozen=True)
class Chart:
    """Everything the engine needs about one patient, indexed by reference."""

    patient: Person | None
    consents: tuple[Authorization, ...] = ()
    representatives: dict[str, Representative] = field(default_factory=dict)
    documented: frozenset[str] = frozenset()  # disclosure refs with valid documentation
    notices: dict[str, tuple[Notice, ...]] = field(default_factory=dict)  # by disclosure ref


# ------------------------------------------------------------------------------------------
# The accounting of disclosures (CONTRACT.md 8): who received a disclosure and what was sent,
# as read for display. Nothing is decided on these (normalize.read_released reads them).
# ------------------------------------------------------------------------------------------


#: Resource types that name a person or a body: a recipient, or the practice in a header.
PARTY_TYPES = frozenset({
    "Organization", "Practitioner", "PractitionerRole", "RelatedPerson", "Patient", "Person",
    "CareTeam", "HealthcareService", "Location", "Group", "Device", "Endpoint",
})


@dataclass(frozen=True, slots=True)
class Party:
    """A recipient as the accounting names it (45 CFR 164.528(b)(2)(ii)): the resource it
    resolves to (by reference, else by identifier), its name (the resource's, else the
    reference's display, else the identifier's value) and its first address on one line."""

    reference: str | None
    name: str | None
    address: str | None


@dataclass(frozen=True, slots=True)
class DataItem:
    """One disclosed entity as the accounting describes it (164.528(b)(2)(iii)): its type,
    what it is called (title, description or code display), and its counted labels (what
    describes data sent without a reference, e.g. "the psychotherapy notes")."""

    reference: str | None
    resource_type: str | None
    kind: str | None = None  # a document's type display (DocumentReference, Composition)
    title: str | None = None
    labels: tuple[Coding, ...] = ()
    resolved: bool = False


@dataclass(frozen=True, slots=True)
class Released:
    """What one disclosure released, and to whom (and under which legal instruments)."""

    recipient: Party
    data: tuple[DataItem, ...] = ()
    instruments: tuple[DataItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Written:
    """A resource consent-gap wrote earlier, found in the chart by its identifier (the panel
    shows what exists: a draft waiting for signature, an alert and its date, the notes)."""

    reference: str  # Type/id
    value: str  # the identifier's value (writeback.identifier_value)
    status: str | None  # DocumentReference.docStatus or Communication.status
    when: str | None  # DocumentReference.date or Communication.sent, as recorded


@dataclass(frozen=True)
class Releases:
    """The display details of a data set's disclosures (by disclosure reference) and the name
    of every party resource it holds (the practice's name for the accounting's header)."""

    disclosures: dict[str, Released] = field(default_factory=dict)
    parties: dict[str, Party] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# The codes of the guide and the privacy office (CONTRACT.md 6.2, 6.4, 7, 7.1). Their words
# are in consent_gap.wording, which refuses to load when one has none.
# ------------------------------------------------------------------------------------------


class Step(StrEnum):
    """What to do before or after a disclosure (CONTRACT.md 6.2)."""

    DISCLOSE_WITHIN_AUTHORIZATION = "disclose-within-authorization"
    RECORD_DISCLOSURE = "record-disclosure"
    MINIMUM_NECESSARY = "minimum-necessary"
    INFORM_CLIENT = "inform-client"
    DOCUMENT = "document"
    NOTIFY_WHO_CAN_PREVENT_HARM = "notify-who-can-prevent-harm"
    WARN_INTENDED_VICTIM = "warn-intended-victim"
    NOTIFY_LAW_ENFORCEMENT = "notify-law-enforcement"
    REPORT_TO_PROTECTIVE_SERVICES = "report-to-protective-services"
    DISCLOSE_ONLY_WHAT_THE_ORDER_NAMES = "disclose-only-what-the-order-names"
    DO_NOT_DISCLOSE = "do-not-disclose"
    CONSULT_LEGAL_COUNSEL = "consult-legal-counsel"
    ASSERT_PRIVILEGE = "assert-privilege"
    OBTAIN_AUTHORIZATION = "obtain-authorization"
    CONSULT_BEFORE_DISCLOSING = "consult-before-disclosing"
    DOCUMENT_AND_MONITOR = "document-and-monitor"


class Scenario(StrEnum):
    """The seed's scenarios (CONTRACT.md 6.4)."""

    SUICIDAL_IDEATION_NO_PLAN = "suicidal-ideation-no-plan"
    SUICIDE_RISK_IMMINENT = "suicide-risk-imminent"
    THREAT_TO_PERSON = "threat-to-person"
    CHILD_ABUSE = "child-abuse"
    ELDER_OR_DEPENDENT_ADULT_ABUSE = "elder-or-dependent-adult-abuse"
    SUBPOENA = "subpoena"
    COURT_ORDER = "court-order"
    CLIENT_REQUEST = "client-request"
    EMERGENCY = "emergency"
    TREATMENT_COORDINATION = "treatment-coordination"
    BILLING = "billing"
    CONSULTATION_OR_SUPERVISION = "consultation-or-supervision"


class Disposition(StrEnum):
    """How the privacy office closes a finding's Task (CONTRACT.md 7)."""

    AUTHORIZATION_ON_FILE = "authorization-on-file"
    DOCUMENTATION_COMPLETED = "documentation-completed"
    NOT_A_DISCLOSURE = "not-a-disclosure"
    BREACH_ASSESSMENT = "breach-assessment"


class Conclusion(StrEnum):
    """The outcome of a breach risk assessment (CONTRACT.md 7.1)."""

    LOW_PROBABILITY = "low-probability"
    BREACH = "breach"
