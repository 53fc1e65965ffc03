"""NDJSON decided one patient at a time (issue 13) gives exactly the findings of reading the
whole file, on the 22 examples and on generated charts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from consent_gap.cli import main
from consent_gap.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "tests" / "fixtures" / "examples").glob("[0-9][0-9]-*.json")
                  if not p.name.endswith(".expected.json"))


def _resources(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", [])]


def _per_patient(tmp_path: Path, resources: list[dict], capsys, *flags: str) -> dict:
    path = tmp_path / "data.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    assert main(["evaluate", str(path), *flags]) in (0, 1)
    out, err = capsys.readouterr()
    assert not err
    return json.loads(out)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_an_example_per_patient_is_the_example_whole(tmp_path, capsys, example):
    resources = _resources(json.loads(example.read_text()))
    whole = evaluate(resources).to_json()
    streamed = _per_patient(tmp_path, resources, capsys)
    assert streamed["findings"] == whole["findings"]
    assert sorted(map(json.dumps, streamed["problems"])) == sorted(
        map(json.dumps, whole["problems"]))


def test_generated_charts_per_patient_are_the_charts_whole(tmp_path, capsys):
    sys.path.insert(0, str(ROOT))
    from sandbox.data import output
    from sandbox.data.charts import World

    bundle_path = tmp_path / "b.json"
    output.write_collection(World(seed=7, patients=40, per_patient=5), bundle_path,
                            tmp_path / "expected.ndjson")
    resources = _resources(json.loads(bundle_path.read_text()))
    whole = evaluate(resources).to_json()
    assert len(whole["findings"]) >= 200
    streamed = _per_patient(tmp_path, resources, capsys)
    assert streamed["findings"] == whole["findings"]
    pretty = _per_patient(tmp_path, resources, capsys, "--pretty")
    assert pretty == streamed


def test_a_disclosure_without_a_patient_is_still_decided(tmp_path, capsys):
    from support.fhir import disclosure, organization, practitioner

    resources = [organization(), practitioner(), disclosure(patient_ref=None),
                 disclosure("AuditEvent/ae2", patient_ref=None)]
    whole = evaluate(resources).to_json()
    assert len(whole["findings"]) == 2
    assert _per_patient(tmp_path, resources, capsys)["findings"] == whole["findings"]


def test_findings_of_several_patients_merge_in_time_order_to_the_microsecond(tmp_path,
                                                                             capsys):
    """Section 2's order across patients, as the whole file gives it: a fraction of a second
    sorts as time does (".5Z" is after "Z" of the same second, though it sorts before it as
    text), and an instant with an offset sorts by its UTC time."""
    from support.fhir import disclosure, patient

    resources = [patient("Patient/a"), patient("Patient/b"),
                 disclosure("AuditEvent/a1", when="2025-03-01T10:00:00.500Z",
                            patient_ref="Patient/a"),
                 disclosure("AuditEvent/b1", when="2025-03-01T10:00:00Z",
                            patient_ref="Patient/b"),
                 disclosure("AuditEvent/b2", when="2025-03-01T11:00:00.250+01:00",
                            patient_ref="Patient/b"),
                 disclosure("AuditEvent/a2", when="2025-03-01T10:00:01Z",
                            patient_ref="Patient/a")]
    whole = evaluate(resources).to_json()
    order = [f["disclosure"] for f in whole["findings"]]
    assert order == ["AuditEvent/b1", "AuditEvent/b2", "AuditEvent/a1", "AuditEvent/a2"]
    assert [f["disclosure"] for f in _per_patient(tmp_path, resources, capsys)["findings"]] \
        == order


def test_ndjson_of_bundles_is_read_whole(tmp_path, capsys):
    example = json.loads(EXAMPLES[0].read_text())
    streamed = _per_patient(tmp_path, [example, example], capsys)
    assert streamed["findings"] == evaluate([example, example]).to_json()["findings"]


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
@pytest.mark.parametrize(("text", "ndjson"), [
    (b'{"resourceType":"Bundle","entry":[]}', False),  # a whole document on one line
    (b'{"a":1}\n', False),  # one line only
    (b'{"a":1}\n{"b":2}', True),
    (b'\n \t\n{"a":1}\r\n\n  \n{"b":2}\n', True),  # blank lines before and between
    (b'{"a":1}\n \t\r\n\x0b\n', False),  # only blank lines follow
    (b'[1]\n{"b":2}\n', False),  # the first line is not an object
    (b'\x0b{"a":1}\n{"b":2}\n', False),  # json does not take \x0b as white space
    (b'{"a":\n1}\n', False),  # a document over several lines
])
def test_ndjson_is_told_by_its_first_line_scanned_in_blocks(tmp_path, monkeypatch, block,
                                                              text, ndjson):
    """The first line is found block by block, whatever the block boundaries, and a file that
    is one long line (a Bundle) is never held whole to find that out."""
    from consent_gap.commands import evaluate as command

    monkeypatch.setattr(command, "_BLOCK", block)
    path = tmp_path / "input.json"
    path.write_bytes(text)
    assert command._is_ndjson(str(path)) is ndjson
