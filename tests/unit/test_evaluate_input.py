"""`consent-gap evaluate` on bad input (issue 12): problems capped and summarised, input that
cannot be FHIR given up early, numbers too long for Python and lone surrogates read and printed
safely, memory a small multiple of the input."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from consent_gap.cli import main
from consent_gap.evaluate import evaluate
from consent_gap.normalize import EARLY_STOP, PROBLEMS_LISTED, InputError, parse_text
from support.fhir import bundle, consent, disclosure, document, organization, patient, practitioner

COVERED = bundle(patient(), practitioner(), organization(), document(), consent(), disclosure())


def run(tmp_path, capsys, content: str | bytes, *flags: str) -> tuple[int, str, str]:
    path = tmp_path / "in.json"
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    code = main(["evaluate", str(path), *flags])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_integer_of_thousands_of_digits_in_an_unknown_element_is_read(tmp_path, capsys):
    text = json.dumps(COVERED).replace('"resourceType": "Patient"',
                                       '"resourceType": "Patient", "x": ' + "7" * 5000, 1)
    code, out, err = run(tmp_path, capsys, text)
    assert code == 0, err
    assert json.loads(out)["findings"][0]["decision"] == "authorized"


@pytest.mark.parametrize("where", ["array", "bundle-entry"])
def test_an_integer_of_thousands_of_digits_alone_is_not_fhir(tmp_path, capsys, where):
    big = "9" * 5000
    text = f"[{big}]" if where == "array" else \
        '{"resourceType": "Bundle", "type": "collection", "entry": [' + big + "]}"
    code, _out, err = run(tmp_path, capsys, text)
    assert code == 2 and err.count("\n") == 1 and "ValueError" not in err
    assert "no FHIR resource" in err


def test_a_lone_surrogate_in_an_id_is_read_and_printed(tmp_path, capsys):
    text = json.dumps(COVERED).replace('"id": "ae1"', '"id": "ae\\udfff"')
    assert "\\udfff" in text
    code, out, err = run(tmp_path, capsys, text)
    assert code == 0, err
    found = json.loads(out)["findings"][0]
    assert found["disclosure"] == "AuditEvent/ae\udfff"
    code, out, err = run(tmp_path, capsys, text, "--format", "text")
    assert code == 0 and "AuditEvent/ae" in out, err


def test_problems_are_capped_and_summarised(tmp_path, capsys):
    junk = ",".join(["1", '"x"', "[]", "{}"] * 500)
    text = "[" + json.dumps(patient()) + "," + junk + "]"
    code, out, err = run(tmp_path, capsys, text)
    assert code == 0, err
    problems = json.loads(out)["problems"]
    assert len(problems) == PROBLEMS_LISTED + 1
    assert problems[0] == {"resource": "item 1", "message": "is not a FHIR resource"}
    assert problems[-1] == {"resource": "input",
                            "message": f"{2000 - PROBLEMS_LISTED} more problem(s) not listed"}


def test_an_array_of_numbers_is_given_up_early():
    text = "[" + ",".join(["12345"] * 2_000_000) + "]"
    data = parse_text(text)
    assert sum(getattr(item, "count", 1) for item in data) <= EARLY_STOP + 1000
    with pytest.raises(InputError, match=r"no FHIR resource .item 0 is not a FHIR resource"):
        evaluate(data)


def test_one_resource_among_a_million_numbers_costs_a_small_multiple_of_the_input():
    text = "[" + json.dumps(patient()) + "," + ",".join(["123456"] * 1_000_000) + "]"
    tracemalloc.start()
    try:
        report = evaluate(parse_text(text))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(report.problems) == PROBLEMS_LISTED + 1
    more = 1_000_000 - PROBLEMS_LISTED
    assert report.problems[-1].message == f"{more} more problem(s) not listed"
    assert peak < 3 * len(text), (peak, len(text))


@pytest.mark.parametrize("text", ["[1, 2", "[{}, 3 4]", '[{"a": 1}] x', "[", "[,]"])
def test_a_broken_array_is_broken_json(text):
    with pytest.raises(InputError, match="not JSON"):
        parse_text(text)


def test_an_array_reads_as_before():
    items = [patient(), {"resourceType": "Organization", "id": "o", "n": [1, 2.5, None, True]}]
    assert parse_text(json.dumps(items)) == items
    assert parse_text(json.dumps(items).encode("utf-16")) == items
    assert parse_text("  []  ") == []
