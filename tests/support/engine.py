"""Run the engine on built resources and compare a finding with what the contract says.

The engine is imported lazily so the test modules still collect (and name the failing cases)
while it is missing.
"""

from __future__ import annotations

from typing import Any

from support.fhir import Resource, bundle


def report(resources: list[Resource] | Resource, jurisdiction: str | None = None) -> dict:
    """CONTRACT.md section 2's JSON for a list of resources (or a ready Bundle)."""
    from consent_gap.evaluate import evaluate

    data = resources if isinstance(resources, dict) else bundle(resources)
    return evaluate(data, jurisdiction).to_json()


def findings(resources: list[Resource] | Resource, jurisdiction: str | None = None) -> list[dict]:
    return report(resources, jurisdiction)["findings"]


def finding(resources: list[Resource] | Resource, jurisdiction: str | None = None,
            disclosure: str = "AuditEvent/ae1") -> dict:
    """The one finding for `disclosure`; fails when there is none or more than one."""
    found = [f for f in findings(resources, jurisdiction) if f["disclosure"] == disclosure]
    assert len(found) == 1, f"expected one finding for {disclosure}, got {len(found)}"
    return found[0]


def expect(got: dict, **want: Any) -> None:
    """Assert the listed fields. `reasons` is compared as an exact list; `reasons_first` checks
    only the first code; `reasons_include` checks membership."""
    first = want.pop("reasons_first", None)
    include = want.pop("reasons_include", None)
    diffs = {k: (v, got.get(k)) for k, v in want.items() if got.get(k) != v}
    if first is not None and (not got.get("reasons") or got["reasons"][0] != first):
        diffs["reasons[0]"] = (first, got.get("reasons"))
    if include is not None and not set(include) <= set(got.get("reasons") or ()):
        diffs["reasons ⊇"] = (include, got.get("reasons"))
    assert not diffs, "field: (expected, got) " + repr(diffs)
