"""The decision each synthetic disclosure should get, per jurisdiction (CONTRACT.md 1-4).

Scenarios state their expectation as a function of the jurisdiction, because the contract's answer
depends on it in two places only: the duty to warn (THREAT) and the age of majority (who is a
minor). Everything else is federal. The jurisdiction table is read from the repository's own
mappings (the engine's data), never copied here.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NR = "not-required"
REPO = Path(__file__).resolve().parents[2]
JURISDICTIONS_FILE = REPO / "mappings" / "jurisdictions" / "us-states.toml"


@dataclass(frozen=True)
class Juris:
    """What the contract needs from a jurisdiction; code None is `evaluate` without the flag."""

    code: str | None
    duty: str = "none"
    age_of_majority: int = 18

    @property
    def key(self) -> str:
        return self.code or "federal"

    def age(self, birth: dt.date, at: dt.datetime) -> int:
        day = at.astimezone(dt.UTC).date()
        return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))

    def minor(self, birth: dt.date, at: dt.datetime) -> bool:
        return self.age(birth, at) < self.age_of_majority


FEDERAL = Juris(None)


def load_jurisdictions(path: Path = JURISDICTIONS_FILE) -> dict[str, Juris]:
    """All rows of the jurisdiction table, keyed by ISO 3166-2 code (US-CA)."""
    with path.open("rb") as fh:
        table = tomllib.load(fh)
    return {row["code"]: Juris(row["code"], row["duty"], int(row["age_of_majority"]))
            for row in table["jurisdiction"]}


@dataclass(frozen=True)
class Expected:
    """One finding as the acceptance examples compare it (reasons: every code must appear)."""

    decision: str
    basis: str | None
    reasons: tuple[str, ...]
    accountable: bool
    documentation: str = NR
    client_notice: str = NR

    def with_reason_after_first(self, code: str) -> Expected:
        """Insert a reason in the contract's second place (`no-authorization`)."""
        if code in self.reasons:
            return self
        reasons = (*self.reasons[:1], code, *self.reasons[1:])
        return Expected(self.decision, self.basis, reasons, self.accountable,
                        self.documentation, self.client_notice)

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "basis": self.basis,
                "reasons_include": list(self.reasons), "accountable": self.accountable,
                "documentation": self.documentation, "client_notice": self.client_notice}


def authorized(consent_id: str, *, accountable: bool = False) -> Expected:
    return Expected("authorized", f"Consent/{consent_id}", (), accountable)


def permitted(basis: str, *, accountable: bool = False, documentation: str = NR,
              client_notice: str = NR) -> Expected:
    return Expected("permitted", basis, (), accountable, documentation, client_notice)


def required(basis: str, documentation: str, client_notice: str) -> Expected:
    return Expected("required", basis, (), True, documentation, client_notice)


def unauthorized(*reasons: str) -> Expected:
    return Expected("unauthorized", None, reasons, True)


def review(*reasons: str, accountable: bool = True) -> Expected:
    return Expected("review", None, reasons, accountable)
