"""The synthetic chart generator: deterministic, complete, well-formed, right about the contract.

The last tests run the engine on the generated charts and compare every finding with the decision
each scenario expects, federally and under each state the generator uses: the side table is what
later tests compare against, so it must agree with CONTRACT.md as the engine implements it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import responses

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fhir.resources.R4B import get_fhir_model_class  # noqa: E402

from sandbox.data import output  # noqa: E402
from sandbox.data.charts import World, expected_for  # noqa: E402
from sandbox.data.directory import STATES  # noqa: E402
from sandbox.data.expect import FEDERAL, load_jurisdictions  # noqa: E402
from sandbox.data.fhirbuild import EXPECTED_TAG, SCENARIO_TAG  # noqa: E402
from sandbox.data.scenarios import SCENARIOS  # noqa: E402

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
PRODUCT_TAG = ("https://consent-gap.dev/fhir/tag", "consent-gap")


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture(scope="module")
def default_set(world: World) -> dict[str, Any]:
    """Everything the default world holds, gathered once."""
    charts = list(world.charts())
    resources = world.directory_resources() + [r for c in charts for r in c.resources]
    records = [rec for c in charts for rec in world.expectations(c)]
    return {"charts": charts, "resources": resources, "records": records}


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    output.write_transactions(World(seed=7, patients=30), tmp_path / "a", 8)
    output.write_transactions(World(seed=7, patients=30), tmp_path / "b", 8)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert list(a) == [f"bundle-{n:04d}.json" for n in range(5)] + ["expected.ndjson"]
    assert a == b
    output.write_collection(World(seed=7, patients=30), tmp_path / "c.json")
    output.write_collection(World(seed=7, patients=30), tmp_path / "d.json")
    assert (tmp_path / "c.json").read_bytes() == (tmp_path / "d.json").read_bytes()
    assert ((tmp_path / "c.expected.ndjson").read_bytes()
            == (tmp_path / "d.expected.ndjson").read_bytes())


def test_different_seed_gives_different_charts(tmp_path: Path) -> None:
    output.write_collection(World(seed=1, patients=10), tmp_path / "one.json")
    output.write_collection(World(seed=2, patients=10), tmp_path / "two.json")
    assert (tmp_path / "one.json").read_bytes() != (tmp_path / "two.json").read_bytes()


def test_default_set_covers_every_scenario(default_set: dict[str, Any]) -> None:
    used = Counter(name for chart in default_set["charts"] for name in chart.scenarios)
    assert set(used) == set(SCENARIOS)
    tagged = {tag["code"] for r in default_set["resources"]
              for tag in r.get("meta", {}).get("tag", []) if tag["system"] == SCENARIO_TAG}
    assert set(SCENARIOS) <= tagged
    with_disclosures = {n for n, sc in SCENARIOS.items() if sc.disclosures}
    assert {rec["scenario"] for rec in default_set["records"]} == with_disclosures


def test_default_set_has_every_profile_state_and_decision(default_set: dict[str, Any]) -> None:
    charts = default_set["charts"]
    assert {c.profile for c in charts} == {"adult", "minor", "young"}
    assert {"CA", "TX", "NY", "FL", "AL", "MS"} <= {c.state for c in charts}
    decisions = {rec["expected"]["decision"] for rec in default_set["records"] if rec["expected"]}
    assert decisions == {"authorized", "permitted", "required", "unauthorized", "review"}
    assert any(rec["expected"] is None for rec in default_set["records"])  # failed exports
    assert any(rec["by_jurisdiction"] for rec in default_set["records"])  # state law matters


def test_every_reference_resolves(default_set: dict[str, Any]) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in default_set["resources"]}
    dangling = [(r["id"], ref) for r in default_set["resources"]
                for ref in _references(r) if ref not in known]
    assert dangling == []


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [x for v in node.values() for x in _references(v)]
    if isinstance(node, list):
        return [x for v in node for x in _references(v)]
    return []


def test_ids_are_valid_unique_and_not_numeric(default_set: dict[str, Any]) -> None:
    keys = [f"{r['resourceType']}/{r['id']}" for r in default_set["resources"]]
    assert len(keys) == len(set(keys))
    bad = [k for k in keys if not FHIR_ID.match(k.split("/")[1]) or k.split("/")[1].isdigit()]
    assert bad == []


def test_every_resource_validates_with_fhir_resources(default_set: dict[str, Any]) -> None:
    for resource in default_set["resources"]:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_transaction_and_collection_bundles_validate(tmp_path: Path) -> None:
    output.write_transactions(World(patients=3), tmp_path / "tx", 2)
    bundle_class = get_fhir_model_class("Bundle")
    for path in sorted((tmp_path / "tx").glob("bundle-*.json")):
        bundle = json.loads(path.read_text())
        assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])
        bundle_class.model_validate(bundle)
    output.write_collection(World(patients=3), tmp_path / "c.json")
    bundle_class.model_validate(json.loads((tmp_path / "c.json").read_text()))


def test_never_uses_the_product_tag(default_set: dict[str, Any]) -> None:
    tags = [(t["system"], t["code"]) for r in default_set["resources"]
            for t in r.get("meta", {}).get("tag", [])]
    assert PRODUCT_TAG not in tags


def test_ages_hold_at_every_event(default_set: dict[str, Any]) -> None:
    """Minors are minors everywhere, young adults only in their state, adults nowhere."""
    jurisdictions = load_jurisdictions()
    for chart in default_set["charts"]:
        home = jurisdictions[f"US-{chart.state}"]
        for r in chart.resources:
            if r["resourceType"] not in ("AuditEvent", "Consent"):
                continue
            when = _instant(r["period"]["start"] if r["resourceType"] == "AuditEvent"
                            else r["dateTime"])
            federal_age = FEDERAL.age(chart.birth, when)
            if chart.profile == "minor":
                assert 12 <= federal_age < 18, (chart.pid, r["id"])
            elif chart.profile == "young":
                assert federal_age >= 18 and home.minor(chart.birth, when), (chart.pid, r["id"])
            else:
                assert federal_age >= 18, (chart.pid, r["id"])


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_side_table_lists_every_audit_event(tmp_path: Path) -> None:
    output.write_collection(World(patients=12), tmp_path / "c.json")
    bundle = json.loads((tmp_path / "c.json").read_text())
    events = {f"AuditEvent/{e['resource']['id']}" for e in bundle["entry"]
              if e["resource"]["resourceType"] == "AuditEvent"}
    records = [json.loads(line) for line in
               (tmp_path / "c.expected.ndjson").read_text().splitlines()]
    assert {rec["disclosure"] for rec in records} == events
    tags = {f"AuditEvent/{e['resource']['id']}": [t["code"] for t in e["resource"]["meta"]["tag"]
                                                  if t["system"] == EXPECTED_TAG]
            for e in bundle["entry"] if e["resource"]["resourceType"] == "AuditEvent"}
    for rec in records:
        want = rec["expected"]["decision"] if rec["expected"] else "not-a-disclosure"
        assert tags[rec["disclosure"]] == [want]


def test_batches_hold_at_most_the_batch_size() -> None:
    sizes = []
    for n, batch in enumerate(output.batches(World(patients=11), 4)):
        if n:
            sizes.append(sum(1 for r in batch if r["resourceType"] == "Patient"))
    assert sizes == [4, 4, 3]


def test_size_knob_gives_the_requested_disclosures() -> None:
    """The bench asks for 10 decided disclosures a patient; the planner fills charts exactly."""
    world = World(seed=3, patients=40, per_patient=10)
    per_chart = [sum(1 for rec in world.expectations(c) if rec["expected"] is not None)
                 for c in world.charts()]
    assert sum(per_chart) >= 40 * 10 - 5
    assert max(per_chart) <= 10


@responses.activate
def test_load_posts_transactions_and_reports_the_outcome_text() -> None:
    base = "http://fhir.test/fhir"
    responses.add(responses.POST, base, json={"resourceType": "Bundle", "type":
                                               "transaction-response"}, status=200)
    progress = io.StringIO()
    summary = output.load(World(patients=5), base, 2, progress=progress)
    assert summary.bundles == 4 and summary.patients == 5
    sent = json.loads(responses.calls[1].request.body)
    assert sent["type"] == "transaction"
    assert "loaded 4 transactions: 5/5 patients" in progress.getvalue()

    responses.replace(responses.POST, base, status=400, json={
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing",
                   "diagnostics": "HAPI-0825: Resource Patient/p-000001 has no name"}]})
    with pytest.raises(output.LoadError, match="HTTP 400: HAPI-0825: Resource Patient"):
        output.load(World(patients=1), base, 1)


def test_cli_writes_and_refuses_bad_arguments(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(ROOT / "sandbox" / "data"))
    import generate

    assert generate.main(["--patients", "3", "--out", str(tmp_path / "tx")]) == 0
    assert (tmp_path / "tx" / "bundle-0001.json").exists()
    assert generate.main(["--patients", "3", "--format", "collection",
                          "--out", str(tmp_path / "c.json")]) == 0
    assert (tmp_path / "c.expected.ndjson").exists()
    with pytest.raises(SystemExit):
        generate.main(["--patients", "3"])  # neither --out nor --load
    assert "--out" in capsys.readouterr().err


# ---- the side table agrees with the engine -----------------------------------------------

def _compare(records: list[dict[str, Any]], findings: list[dict[str, Any]],
             jurisdiction: str | None) -> list[str]:
    got = {f["disclosure"]: f for f in findings}
    problems = []
    for rec in records:
        want = expected_for(rec, jurisdiction)
        found = got.pop(rec["disclosure"], None)
        if want is None or found is None:
            if want is not None or found is not None:
                problems.append(f"{rec['scenario']} {rec['disclosure']}: want {want}, "
                                f"got {found and found['decision']}")
            continue
        for key in ("decision", "basis", "accountable", "documentation", "client_notice"):
            if found[key] != want[key]:
                problems.append(f"{rec['scenario']} {rec['disclosure']} {key}: "
                                f"want {want[key]}, got {found[key]}")
        missing = [c for c in want["reasons_include"] if c not in found["reasons"]]
        if missing or (not want["reasons_include"] and want["decision"] in
                       ("authorized", "permitted", "required") and found["reasons"]):
            problems.append(f"{rec['scenario']} {rec['disclosure']} reasons: want "
                            f"{want['reasons_include']}, got {found['reasons']}")
    problems += [f"unexpected finding {d}" for d in got]
    return problems


@pytest.mark.parametrize("jurisdiction", [None, *[f"US-{s}" for s in STATES]])
def test_engine_agrees_with_the_expected_decisions(default_set: dict[str, Any],
                                                   jurisdiction: str | None) -> None:
    from consent_gap.evaluate import evaluate

    report = evaluate(default_set["resources"], jurisdiction).to_json()
    assert _compare(default_set["records"], report["findings"], jurisdiction) == []


def test_engine_agrees_on_a_larger_mixed_set() -> None:
    from consent_gap.evaluate import evaluate

    world = World(seed=11, patients=150, per_patient=10)
    charts = list(world.charts())
    resources = world.directory_resources() + [r for c in charts for r in c.resources]
    records = [rec for c in charts for rec in world.expectations(c)]
    for jurisdiction in (None, "US-MS"):
        report = evaluate(resources, jurisdiction).to_json()
        assert _compare(records, report["findings"], jurisdiction) == []


def test_readme_lists_every_scenario() -> None:
    text = (ROOT / "sandbox" / "data" / "README.md").read_text()
    assert [n for n in SCENARIOS if f"| `{n}` |" not in text] == []


def test_the_guide_has_a_client_for_every_scenario_of_6_4() -> None:
    from consent_gap.mappings import load_rules

    from sandbox.data import guide_clients

    scenarios = list(load_rules().guide.scenarios)
    assert list(guide_clients.CLIENTS) == scenarios
    resources = guide_clients.resources("-t")
    patients = {r["id"] for r in resources if r["resourceType"] == "Patient"}
    assert patients == {guide_clients.patient_id(s, "-t") for s in scenarios}
    assert len({(r["resourceType"], r["id"]) for r in resources}) == len(resources)
    kinds = {r["type"]["coding"][0]["code"] for r in resources
             if r["resourceType"] == "DocumentReference"}
    assert {"subpoena", "court-order", "11506-3"} <= kinds
