"""The synthetic charts load into HAPI, and loading them again changes nothing.

Loads the first patients of the default world (seed 1), which are the same patients the sandbox
loads at start (the planner is prefix-stable), so the test leaves the sandbox's data as it was.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sandbox.data import output  # noqa: E402
from sandbox.data.charts import World  # noqa: E402

pytestmark = pytest.mark.integration
PATIENTS = 3


def _count(base: str, query: str) -> int:
    response = requests.get(f"{base}/{query}", params={"_summary": "count"}, timeout=60,
                            headers={"Accept": "application/fhir+json"})
    response.raise_for_status()
    return int(response.json()["total"])


def _counts(base: str, patients: list[str]) -> dict[str, int]:
    ids = ",".join(patients)
    counts = {"Patient": _count(base, f"Patient?_id={ids}")}
    for kind in ("AuditEvent", "Consent", "RelatedPerson"):
        counts[kind] = sum(_count(base, f"{kind}?patient={p}") for p in patients)
    return counts


def test_loading_twice_does_not_duplicate(fhir_base: str) -> None:
    world = World(seed=1, patients=PATIENTS)
    charts = list(world.charts())
    patients = [c.pid for c in charts]
    generated = {kind: sum(1 for c in charts for r in c.resources if r["resourceType"] == kind)
                 for kind in ("Patient", "AuditEvent", "Consent", "RelatedPerson")}

    first = output.load(world, fhir_base, 2)
    assert first.bundles == 3 and first.patients == PATIENTS
    after_first = _counts(fhir_base, patients)
    # >=: a server loaded by an older generator may keep resources whose ids no longer exist
    assert all(after_first[kind] >= n for kind, n in generated.items()), (after_first, generated)
    assert after_first["Patient"] == PATIENTS

    output.load(World(seed=1, patients=PATIENTS), fhir_base, 2)
    assert _counts(fhir_base, patients) == after_first


def test_a_loaded_disclosure_reads_back_as_written(fhir_base: str) -> None:
    world = World(seed=1, patients=1)
    output.load(world, fhir_base, 1)
    chart = next(World(seed=1, patients=1).charts())
    event = next(r for r in chart.resources if r["resourceType"] == "AuditEvent")
    stored = requests.get(f"{fhir_base}/AuditEvent/{event['id']}", timeout=60,
                          headers={"Accept": "application/fhir+json"}).json()
    assert stored["type"] == event["type"]
    assert stored["entity"] == event["entity"]
    def tags(r: dict) -> set[tuple[str, str]]:
        return {(t["system"], t["code"]) for t in r["meta"]["tag"]}

    assert tags(stored) == tags(event)  # the server may reorder them
