"""Plain domain objects shared by the engine, the scan, the write-back and the panel.

Nothing here knows FHIR shapes (normalize.py reads them, writeback.py writes them) and nothing
does I/O: these are the values the pure engine takes and returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

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

    def to_json(self) -> dict:
        return {
            "disclosure": self.disclosure,
            "patient": self.patient,
            "occurred": self.occurred,
            "recipient": self.recipient,
            "purposes": list(self.purposes),
            "decision": str(self.decision),
            "basis": self.basis,
            "reasons": list(self.reasons),
            "accountable": self.accountable,
            "documentation": str(self.documentation),
            "client_notice": str(self.client_notice),
            "explanation": self.explanation,
        }


# ------------------------------------------------------------------------------------------
# Engine inputs: what normalize.py reads out of FHIR resources (CONTRACT.md 1.1 and 1.2).
# Times are timezone-aware UTC datetimes; references are "Type/id".
# ------------------------------------------------------------------------------------------


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
    recipient: str | None  # reference "Type/id"
    recipient_identifiers: frozenset[str] = frozenset()  # "system|value"
    purposes: tuple[str, ...] = ()  # ActReason codes, in listed order, each once
    instruments: frozenset[str] = frozenset()  # legal-instrument codes that count
    instrument_refs: tuple[str, ...] = ()  # the DocumentReferences that carry them
    entities: tuple[Entity, ...] = ()
    notify: tuple[str, ...] = ()

    @property
    def recipient_type(self) -> str | None:
        return self.recipient.split("/", 1)[0] if self.recipient else None

    @property
    def recipient_label(self) -> str | None:
        """What the JSON output shows as the recipient: the reference, else an identifier."""
        if self.recipient:
            return self.recipient
        return min(self.recipient_identifiers) if self.recipient_identifiers else None


@dataclass(frozen=True, slots=True)
class Actor:
    roles: frozenset[Coding]
    reference: str | None
    identifier: str | None  # "system|value"


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
    """What one disclosure released, and to whom."""

    recipient: Party
    data: tuple[DataItem, ...] = ()


@dataclass(frozen=True)
class Releases:
    """The display details of a data set's disclosures (by disclosure reference) and the name
    of every party resource it holds (the practice's name for the accounting's header)."""

    disclosures: dict[str, Released] = field(default_factory=dict)
    parties: dict[str, Party] = field(default_factory=dict)
