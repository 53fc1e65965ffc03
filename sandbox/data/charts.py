"""Deterministic synthetic charts: the generator's public API.

    from sandbox.data import charts
    world = charts.World(seed=1, patients=24, per_patient=6)
    world.directory_resources()          # clinics, therapists, police, CPS, courts, payers...
    for chart in world.charts():         # one patient at a time (streams at 10,000 patients)
        chart.resources                  # Patient first, then everything on the chart
        world.expectations(chart)        # what the contract should decide, per disclosure

Same seed and size, same bytes. Patients are planned in order: the first ones take the scenarios
not yet used (so the small default set covers the whole catalogue), later ones draw by weight.
Every patient's randomness comes from its own `random.Random(f"{seed}:{index}")`, so a patient
does not change when the size does, except through the coverage plan.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import fhirbuild as fb
from .chart import FIRST, LAST, Chart
from .directory import STATES, Directory, build_directory
from .expect import FEDERAL, Expected, Juris, load_jurisdictions
from .scenarios import SCENARIOS, Scenario

Json = fb.Json
DEFAULT_SEED = 1
DEFAULT_PATIENTS = 24
DEFAULT_PER_PATIENT = 6
PROFILE_CYCLE = ["adult", "minor", "adult", "young", "adult", "adult", "minor", "adult"]
STATE_WEIGHTS = {"CA": 5, "TX": 3, "NY": 3, "FL": 3, "AL": 1, "MS": 1, "WA": 2, "KS": 1}
YEAR = dt.timedelta(days=365.25)
EPOCH = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
DECIDING = ("unauthorized", "review")


@dataclass
class World:
    """A seed and a size; everything else follows from them."""

    seed: int = DEFAULT_SEED
    patients: int = DEFAULT_PATIENTS
    per_patient: int = DEFAULT_PER_PATIENT
    directory: Directory = field(default_factory=build_directory)
    jurisdictions: dict[str, Juris] = field(default_factory=load_jurisdictions)

    def directory_resources(self) -> list[Json]:
        return list(self.directory.resources)

    def charts(self) -> Iterator[Chart]:
        plan = random.Random(self.seed)
        pending = sorted(SCENARIOS)
        plan.shuffle(pending)
        for index in range(1, self.patients + 1):
            chart = self._new_chart(index)
            for sc in self._choose(chart, pending):
                chart.scenarios.append(sc.name)
                sc.build(chart)
            self._tag_expected(chart)
            yield chart

    def expectations(self, chart: Chart) -> Iterator[dict[str, Any]]:
        """One record per AuditEvent: the federal answer, and where a state's law changes it."""
        states = [self.jurisdictions[f"US-{s}"] for s in STATES]
        for case in chart.cases:
            federal = self._final(chart, case.expect(FEDERAL))
            by_state = {}
            for j in states:
                here = self._final(chart, case.expect(j))
                if here != federal:
                    by_state[j.key] = here.to_json() if here else None
            yield {"disclosure": case.disclosure, "patient": chart.patient,
                   "scenario": case.scenario, "state": f"US-{chart.state}",
                   "expected": federal.to_json() if federal else None,
                   "by_jurisdiction": by_state}

    # planning -------------------------------------------------------------------------------
    def _new_chart(self, index: int) -> Chart:
        rng = random.Random(f"{self.seed}:{index}")
        profile = PROFILE_CYCLE[(index - 1) % len(PROFILE_CYCLE)]
        if profile == "young":
            state = "MS" if (index // len(PROFILE_CYCLE)) % 2 == 0 else "AL"
        else:
            state = rng.choices(list(STATE_WEIGHTS), list(STATE_WEIGHTS.values()))[0]
        anchor = EPOCH + dt.timedelta(days=rng.randint(0, 540))
        birth = _birth(rng, profile, state, anchor)
        chart = Chart(index, rng, self.directory, profile, state, anchor, birth)
        _baseline(chart)
        return chart

    def _choose(self, chart: Chart, pending: list[str]) -> list[Scenario]:
        chosen: list[Scenario] = []
        taken: set[str] = set()
        room = self.per_patient

        def fits(sc: Scenario) -> bool:
            return (chart.profile in sc.profiles and sc.name not in taken
                    and sc.disclosures <= room)

        for name in list(pending):
            sc = SCENARIOS[name]
            if room <= 0 and chosen:
                break
            if fits(sc):
                chosen.append(sc)
                taken.add(sc.name)
                pending.remove(name)
                room -= sc.disclosures
        while room > 0:
            options = [sc for sc in SCENARIOS.values() if fits(sc) and sc.disclosures > 0]
            if not options:
                break
            sc = chart.rng.choices(options, [o.weight for o in options])[0]
            chosen.append(sc)
            taken.add(sc.name)
            room -= sc.disclosures
        return chosen

    def _tag_expected(self, chart: Chart) -> None:
        """Put the federal decision on each AuditEvent too, for tests that only see a server."""
        events = {f"AuditEvent/{r['id']}": r for r in chart.resources
                  if r["resourceType"] == "AuditEvent"}
        for case in chart.cases:
            federal = self._final(chart, case.expect(FEDERAL))
            code = federal.decision if federal else "not-a-disclosure"
            events[case.disclosure]["meta"]["tag"].append(
                fb.coding(fb.EXPECTED_TAG, code, "decision expected without a jurisdiction"))

    def _final(self, chart: Chart, expected: Expected | None) -> Expected | None:
        """Patient-level reason: `no-authorization` when the chart has no candidate Consent."""
        if expected and chart.candidates == 0 and expected.decision in DECIDING:
            return expected.with_reason_after_first("no-authorization")
        return expected


def expected_for(record: dict[str, Any], jurisdiction: str | None) -> dict[str, Any] | None:
    """The expectation of one side-table record under `--jurisdiction` (None: no flag)."""
    if jurisdiction and jurisdiction in record["by_jurisdiction"]:
        return record["by_jurisdiction"][jurisdiction]
    return record["expected"]


def _birth(rng: random.Random, profile: str, state: str, anchor: dt.datetime) -> dt.date:
    """Minors stay 14-16 and young adults inside their one-year band for every event."""
    if profile == "minor":
        age = 15 * YEAR + dt.timedelta(days=rng.randint(-100, 100))
    elif profile == "young":
        years = 19.5 if state == "MS" else 18.6
        age = years * YEAR + dt.timedelta(days=rng.randint(-10, 10))
    else:
        age = rng.randint(23, 78) * YEAR + dt.timedelta(days=rng.randint(0, 364))
    return (anchor - age).date()


def _baseline(chart: Chart) -> None:
    """The Patient, and the paperwork most charts carry: a treatment consent and the NPP."""
    rng = chart.rng
    city, postal = STATES[chart.state]
    gender = rng.choice(["female", "male", "female", "male", "other"])
    chart.add(fb.patient(chart.pid, f"MRN-{chart.index:06d}", rng.choice(LAST),
                         rng.choice(FIRST), gender, chart.birth,
                         fb.address(chart.state, city, f"{rng.randint(10, 9999)} Quarry Bend Road",
                                    f"{postal}{rng.randint(10, 99)}")))
    back = (95, 110) if chart.profile == "young" else (200, 260)  # young: stay inside the band
    intake = chart.anchor - rng.randint(*back) * dt.timedelta(days=1)
    signer = chart.patient
    if chart.profile == "minor":
        signer = chart.relative(rng.choice(["MTH", "FTH", "PRN"]), "parent")
    if rng.random() < 0.4:
        chart.consent("baseline-consent-to-treat", intake, fb.provision(start=intake, action=None),
                      signer=signer, scope="treatment", policy_rule=None,
                      categories=[fb.concept(fb.LOINC, "59284-0", "Patient Consent")],
                      policy_uri="https://clinic.example/forms/consent-to-treatment/v2")
    if rng.random() < 0.3:
        chart.consent("baseline-npp", intake, fb.provision(start=intake), signer=signer,
                      policy_rule="hipaa-npp",
                      categories=[fb.concept(fb.CONSENT_CATEGORY, "npp",
                                             "Notice of Privacy Practices")],
                      policy_uri="https://clinic.example/policies/notice-of-privacy-practices")
