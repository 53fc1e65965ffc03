"""Plain domain objects shared by the engine, the scan, the write-back and the panel.

Nothing here knows FHIR shapes (normalize.py reads them, writeback.py writes them) and nothing
does I/O: these are the values the pure engine takes and returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
    consents_checked: tuple[tuple[str, str | None], ...] = field(default=())  # (Consent ref, reason)
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
