"""The slim parse (`parse_for_reading`) gives `normalize` exactly what a full parse gives.

`consent-gap evaluate` decodes a Bundle with only the elements `_Reader` reads (normalize.py,
the types above `_Reader`). Each test here reads the same bytes both ways and asserts the same
Dataset, on every example, on the sandbox's generated charts (every scenario), and on every
Bundle and resource list in the contract tests' tables; a read added to `_Reader` without its
element would show here as a different Dataset. The shapes the types do not take fall back to
the full parse, which the last tests pin.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from consent_gap.mappings import load_rules
from consent_gap.normalize import _READ_BUNDLE, normalize, parse_for_reading, parse_text

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
RULES = load_rules()
TABLE_MODULES = ("test_contract_clarified", "test_contract_authorization",
                 "test_contract_communication", "test_contract_disclosure",
                 "test_contract_documentation", "test_contract_exceptions",
                 "test_contract_reasons", "test_contract_jurisdictions")


def both(raw: bytes) -> tuple[Any, Any]:
    """(Dataset of the slim parse, Dataset of the full parse) of the same bytes."""
    return normalize(parse_for_reading(raw), RULES), normalize(parse_text(raw), RULES)


def slim_decodes(raw: bytes) -> bool:
    """The slim types take this input (else it fell back to the full parse)."""
    try:
        _READ_BUNDLE.decode(raw)
    except Exception:  # any refusal means the fallback ran
        return False
    return True


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.glob("*.json")
                                        if not p.name.endswith(".expected.json")),
                         ids=lambda p: p.stem)
def test_every_example_reads_the_same(path):
    raw = path.read_bytes()
    assert slim_decodes(raw), "the example fell back: the slim types did not take it"
    slim, full = both(raw)
    assert slim == full
    assert full.disclosures  # the comparison compared something


def test_the_sandbox_charts_read_the_same(tmp_path):
    """Every scenario the sandbox generates (Communications, instruments, notices, notes)."""
    from sandbox.data import output
    from sandbox.data.charts import World

    path = tmp_path / "b.json"
    output.write_collection(World(seed=11, patients=60, per_patient=10), path,
                            tmp_path / "expected.ndjson")
    raw = path.read_bytes()
    assert slim_decodes(raw)
    slim, full = both(raw)
    assert slim == full
    assert len(full.disclosures) >= 500


def _bundles_in(value: Any, depth: int = 0) -> Iterator[dict]:
    """Every Bundle, and every list of resources as a Bundle, found in a test table."""
    if depth > 6:
        return
    if isinstance(value, dict):
        if value.get("resourceType") == "Bundle":
            yield value
        return
    if isinstance(value, list | tuple):
        resources = [v for v in value if isinstance(v, dict) and "resourceType" in v]
        if resources and len(resources) == len(value) and isinstance(value, list):
            yield {"resourceType": "Bundle", "type": "collection",
                   "entry": [{"resource": r} for r in resources]}
            return
        for item in value:
            yield from _bundles_in(item, depth + 1)


def _table_bundles() -> list[tuple[str, dict]]:
    found = []
    for name in TABLE_MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if attr.isupper():
                found += [(f"{name}.{attr}[{i}]", b)
                          for i, b in enumerate(_bundles_in(value))]
    return found


TABLE_BUNDLES = _table_bundles()


def test_the_contract_tables_hold_bundles():
    assert len(TABLE_BUNDLES) >= 30


@pytest.mark.parametrize(("where", "bundle"), TABLE_BUNDLES, ids=[w for w, _ in TABLE_BUNDLES])
def test_every_contract_table_reads_the_same(where, bundle):
    raw = json.dumps(bundle).encode()
    slim, full = both(raw)
    assert slim == full


def test_what_normalize_does_not_read_is_left_out():
    """The point of the slim parse: a disclosed document's content, an AuditEvent's source
    and the displays of codings are not built."""
    raw = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "DocumentReference", "id": "d",
                      "type": {"coding": [{"system": "s", "code": "c", "display": "D"}]},
                      "content": [{"attachment": {"data": "QUJD"}}]}},
        {"resource": {"resourceType": "AuditEvent", "id": "a",
                      "source": {"observer": {"reference": "Organization/o"}},
                      "agent": [{"who": {"reference": "Organization/o", "display": "O"}}]}},
    ]}).encode()
    document, event = (e["resource"] for e in parse_for_reading(raw)["entry"])
    assert document == {"resourceType": "DocumentReference", "id": "d",
                        "type": {"coding": [{"system": "s", "code": "c"}]}}
    assert event == {"resourceType": "AuditEvent", "id": "a",
                     "agent": [{"who": {"reference": "Organization/o"}}]}


def _with(resource: dict) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"resource": resource}]}).encode()


TOLERATED = [  # shapes the slim types take: one value where FHIR repeats, odd leaves
    ("one-agent-not-a-list", {"resourceType": "AuditEvent", "id": "a",
                              "agent": {"who": {"reference": "Organization/o"}}}),
    ("numbers-as-leaves", {"resourceType": "Consent", "id": "c", "status": 3,
                           "provision": {"type": 1, "period": {"start": 5}}}),
    ("a-list-of-subjects", {"resourceType": "Communication", "id": "m", "status": "completed",
                            "subject": [{"reference": "Patient/p", "display": "P"}]}),
    ("presence-of-an-empty-attachment", {"resourceType": "Consent", "id": "c",
                                         "sourceAttachment": {}}),
]
FALLS_BACK = [  # shapes the slim types refuse: the input is parsed whole
    ("null-meta", {"resourceType": "Patient", "id": "p", "meta": None}),
    ("string-among-codings", {"resourceType": "AuditEvent", "id": "a",
                              "subtype": ["disclose"]}),
    ("number-as-a-reference", {"resourceType": "Consent", "id": "c", "patient": 7}),
    ("null-attachment", {"resourceType": "Consent", "id": "c", "sourceAttachment": None}),
]


@pytest.mark.parametrize(("name", "resource"), TOLERATED, ids=[n for n, _ in TOLERATED])
def test_tolerated_shapes_read_the_same(name, resource):
    raw = _with(resource)
    assert slim_decodes(raw)
    slim, full = both(raw)
    assert slim == full


@pytest.mark.parametrize(("name", "resource"), FALLS_BACK, ids=[n for n, _ in FALLS_BACK])
def test_refused_shapes_fall_back_to_the_full_parse(name, resource):
    raw = _with(resource)
    assert not slim_decodes(raw)
    assert parse_for_reading(raw) == parse_text(raw)


@pytest.mark.parametrize("raw", [
    b'[{"resourceType": "Patient", "id": "p"}]',
    b'{"resourceType": "Patient", "id": "p"}\n{"resourceType": "Patient", "id": "q"}\n',
    b'\xef\xbb\xbf{"resourceType": "Bundle", "type": "collection", "entry": []}',
    b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
    b'{"resourceType": "Patient", "id": "p", "gender": 123456789012345678901234567890}}]}',
], ids=["array", "ndjson", "bom", "big-integer-read"])
def test_other_inputs_are_the_full_parse(raw):
    assert parse_for_reading(raw) == parse_text(raw)
