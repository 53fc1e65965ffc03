"""`evaluate`: FHIR data in, a Report of findings out (CONTRACT.md section 2).

The one entry point the CLI, the scan and the panel share: normalize the resources, decide
every disclosure with the pure engine, word each finding, and order them as the contract says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consent_gap import RULESET
from consent_gap.domain import Chart, Finding, Problem
from consent_gap.engine import Prepared, decide
from consent_gap.explain import explain
from consent_gap.mappings import Jurisdiction, Rules, load_rules
from consent_gap.normalize import InputError, format_instant, normalize

__all__ = ["InputError", "Report", "evaluate"]


@dataclass(frozen=True)
class Report:
    """The findings (contract order) and the resources that could not be read."""

    findings: list[Finding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ruleset: str = RULESET
    jurisdiction: str | None = None

    def to_json(self) -> dict:
        """Exactly the JSON of CONTRACT.md section 2."""
        return {
            "ruleset": self.ruleset,
            "findings": [f.to_json() for f in self.findings],
            "problems": [p.to_json() for p in self.problems],
        }


def resolve_jurisdiction(rules: Rules, code: str | None) -> Jurisdiction | None:
    """The jurisdiction for a code, or InputError naming the codes that exist."""
    if code is None:
        return None
    try:
        return rules.jurisdiction(code)
    except KeyError:
        known = ", ".join(sorted(rules.jurisdictions)[:3])
        hint = f" (known: {known}, ...)" if known else " (no jurisdiction table is installed)"
        raise InputError(f"unknown jurisdiction {code!r}: expected an ISO 3166-2 code such "
                         f"as US-CA{hint}") from None


def evaluate(data: Any, jurisdiction: str | None = None, *, rules: Rules | None = None) -> Report:
    """Decide every disclosure in a FHIR Bundle (any type but history) or list of resources.

    Raises InputError (a ValueError) when the input is unusable as a whole; a resource that
    cannot be read becomes a Problem and everything else is still decided.
    """
    rules = rules if rules is not None else load_rules()
    place = resolve_jurisdiction(rules, jurisdiction)
    dataset = normalize(data, rules)
    disclosures = sorted(dataset.disclosures, key=lambda d: (d.occurred, d.reference))
    empty = Chart(patient=None)
    prepared = Prepared(rules)
    findings = []
    for disclosure in disclosures:
        chart = dataset.charts.get(disclosure.patient, empty)
        outcome = decide(rules, disclosure, chart, place, prepared=prepared)
        findings.append(Finding(
            disclosure=disclosure.reference,
            patient=disclosure.patient,
            occurred=format_instant(disclosure.occurred),
            recipient=disclosure.recipient_label,
            purposes=disclosure.purposes,
            decision=outcome.decision,
            basis=outcome.basis,
            reasons=outcome.reasons,
            accountable=outcome.accountable,
            documentation=outcome.documentation,
            client_notice=outcome.client_notice,
            explanation=explain(disclosure, outcome),
            consents_checked=tuple((r.reference, r.reason) for r in outcome.candidates),
            notify=disclosure.notify,
            disclosed=tuple(e.reference for e in disclosure.entities if e.reference),
            instruments=disclosure.instrument_refs,
        ))
    return Report(findings=findings, problems=dataset.problems, ruleset=RULESET,
                  jurisdiction=place.code if place is not None else None)
