"""The 22 acceptance examples (tests/fixtures/examples), through the API and the command line.

21 and 22 record their disclosure as a Communication sent out (CONTRACT 1.1).

Compared as the examples' README says: decision, basis, accountable, documentation and
client_notice equal; every code of `reasons_include` in `reasons` (`[]` = reasons empty); the
findings in the listed order with no other finding.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from consent_gap.cli import main
from consent_gap.evaluate import evaluate

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "examples"
CASES = sorted(p.name.removesuffix(".expected.json") for p in EXAMPLES.glob("*.expected.json"))
EQUAL = ("decision", "basis", "accountable", "documentation", "client_notice")


def load(name: str) -> tuple[dict, dict]:
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    expected = json.loads((EXAMPLES / f"{name}.expected.json").read_text())
    return data, expected


def compare(got: list[dict], expected: list[dict]) -> list[str]:
    """Every difference between produced and expected findings, worded for the failure."""
    errors = []
    if [g["disclosure"] for g in got] != [e["disclosure"] for e in expected]:
        errors.append(f"order: got {[g['disclosure'] for g in got]}")
        return errors
    for g, e in zip(got, expected, strict=True):
        for key in EQUAL:
            if g[key] != e[key]:
                errors.append(f"{g['disclosure']} {key}: got {g[key]!r}, want {e[key]!r}")
        include = e["reasons_include"]
        if include == [] and g["reasons"]:
            errors.append(f"{g['disclosure']} reasons: got {g['reasons']}, want none")
        missing = [code for code in include if code not in g["reasons"]]
        if missing:
            errors.append(f"{g['disclosure']} reasons: {missing} missing from {g['reasons']}")
    return errors


def test_all_twenty_two_examples_are_present():
    assert len(CASES) == 22


def test_the_fixtures_are_the_shared_examples_byte_for_byte():
    """The fixtures are copies of ../shared/examples: a local edit would test another contract."""
    shared = EXAMPLES.parents[3] / "shared" / "examples"
    if not shared.is_dir():
        pytest.skip("../shared/examples is not beside the repository")
    for name in CASES:
        for suffix in (".json", ".expected.json"):
            theirs = (shared / f"{name}{suffix}").read_bytes()
            assert (EXAMPLES / f"{name}{suffix}").read_bytes() == theirs, name + suffix


@pytest.mark.parametrize("name", CASES)
def test_example_through_the_api(name):
    data, expected = load(name)
    report = evaluate(data, expected["jurisdiction"]).to_json()
    assert compare(report["findings"], expected["findings"]) == []
    assert report["problems"] == []
    assert report["ruleset"] == "2026.3"


@pytest.mark.parametrize("name", CASES)
def test_example_through_the_cli(name, capsys):
    _, expected = load(name)
    argv = ["evaluate", str(EXAMPLES / f"{name}.json"), "--format", "json"]
    if expected["jurisdiction"]:
        argv += ["--jurisdiction", expected["jurisdiction"]]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert compare(out["findings"], expected["findings"]) == []


def test_example_as_a_person_runs_it():
    """The installed command in a subprocess, reading standard input."""
    data = (EXAMPLES / "06-duty-to-warn-ca.json").read_text()
    proc = subprocess.run([sys.executable, "-m", "consent_gap.cli", "evaluate", "-",
                           "--jurisdiction", "US-CA"], input=data, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    _, expected = load("06-duty-to-warn-ca")
    assert compare(json.loads(proc.stdout)["findings"], expected["findings"]) == []


def test_compare_catches_a_wrong_decision():
    """The comparison itself can fail: a changed decision and an extra reason are reported."""
    _, expected = load("01-authorized-lawyer")
    wrong = [dict(expected["findings"][0], decision="review", reasons=["data-unresolved"])]
    errors = compare(wrong, expected["findings"])
    assert any("decision" in e for e in errors) and any("reasons" in e for e in errors)
