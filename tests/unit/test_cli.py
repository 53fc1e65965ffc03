"""consent-gap evaluate: exit codes, one-line errors, formats, standard input, help."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from consent_gap.cli import COMMANDS, build_parser, main
from consent_gap.mappings import ENV_FOLDER
from support.fhir import bundle, consent, disclosure, world

COVERED = bundle(world(consent(), disclosure()))
UNAUTHORIZED = bundle(world(disclosure(purposes=("PATRQT",))))
REVIEW = bundle(world(disclosure(purposes=("GOV",))))


def write(tmp_path: Path, content, name: str = "in.json") -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("data", "flags", "code"), [
    (COVERED, [], 0),
    (UNAUTHORIZED, [], 0),
    (UNAUTHORIZED, ["--fail-on", "unauthorized"], 1),
    (COVERED, ["--fail-on", "unauthorized"], 0),
    (REVIEW, ["--fail-on", "unauthorized"], 0),
])
def test_exit_codes(tmp_path, capsys, data, flags, code):
    got, out, err = run(["evaluate", write(tmp_path, data), *flags], capsys)
    assert (got, err) == (code, "")
    assert list(json.loads(out)) == ["ruleset", "findings", "problems"]


@pytest.mark.parametrize(("content", "flags", "says"), [
    ('{"resourceType": "Patient", "id": "p1"}', [], "not a FHIR Bundle"),
    ("[1, 2", [], "not JSON"),
    ("", [], "is empty"),
    ('{"resourceType": "Bundle", "type": "history"}', [], "history Bundle"),
    (json.dumps(COVERED), ["--jurisdiction", "US-ZZ"], "unknown jurisdiction 'US-ZZ'"),
    ('"text"', [], "not a FHIR Bundle"),
    (json.dumps(COVERED), ["--jurisdiction", "CA"],
     "unknown jurisdiction 'CA'; did you mean US-CA?"),
    ('{"resourceType": "Patient"}\n{"resourceType": "Consent"\n', [],
     "NDJSON line 2 is not JSON"),
    ('{"resourceType": "Patient"}\n\n[1]\n', [], "NDJSON line 3 is not a FHIR resource"),
    ("[" * 100_000, [], "not JSON (nested too deeply)"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": {}}', [],
     "Bundle.entry is not a list"),
    ('[1, "x", {"a": 1}]', [], "the input holds no FHIR resource (item 0 is not a FHIR resource)"),
    ('{"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {}}]}',
     [], "the input holds no FHIR resource (entry 0 has no resource)"),
])
def test_unusable_input_is_one_line_and_exit_2(tmp_path, capsys, content, flags, says):
    code, out, err = run(["evaluate", write(tmp_path, content), *flags], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err


def test_unknown_jurisdiction_is_not_blamed_on_the_file(tmp_path, capsys):
    code, _, err = run(["evaluate", write(tmp_path, COVERED), "--jurisdiction", "US-XX"], capsys)
    assert code == 2 and err.startswith("consent-gap evaluate: unknown jurisdiction 'US-XX'")


def test_binary_garbage_and_a_directory_are_one_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 3)
    for target, says in ((garbage, "is not UTF-8 text"), (tmp_path, "is a directory")):
        code, out, err = run(["evaluate", str(target)], capsys)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and says in err


def test_entries_without_a_resource_are_problems_not_silence(tmp_path, capsys):
    data = {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": "urn:x:1"}, "junk", *COVERED["entry"]]}
    code, out, _ = run(["evaluate", write(tmp_path, data)], capsys)
    report = json.loads(out)
    assert code == 0 and len(report["findings"]) == 1
    assert report["problems"] == [
        {"resource": "entry 0", "message": "has no resource"},
        {"resource": "entry 1", "message": "is not a Bundle entry"},
    ]


@pytest.mark.parametrize("content", ["[]", '{"resourceType": "Bundle", "type": "searchset"}'])
def test_an_empty_data_set_is_evaluated(tmp_path, capsys, content):
    code, out, _ = run(["evaluate", write(tmp_path, content)], capsys)
    assert code == 0 and json.loads(out) == {"ruleset": "2026.3", "findings": [], "problems": []}


def test_missing_file(capsys, tmp_path):
    code, _, err = run(["evaluate", str(tmp_path / "nope.json")], capsys)
    assert code == 2 and err.strip().endswith("nope.json: no such file")


def test_bad_arguments_are_one_line(capsys):
    code, _, err = run(["evaluate", "x.json", "--format", "xml"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_broken_mappings_exit_2_naming_the_file(tmp_path, capsys, monkeypatch):
    import importlib.resources
    folder = tmp_path / "m"
    shutil.copytree(str(importlib.resources.files("consent_gap.mappings_data")), folder,
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (folder / "exceptions.toml").write_text("[meta]\nsource = 'x'\ndate = '2026-01-01'\n")
    monkeypatch.setenv(ENV_FOLDER, str(folder))
    code, _, err = run(["evaluate", write(tmp_path, COVERED)], capsys)
    assert code == 2 and "exceptions.toml: [meta]: missing request_codes" in err


def test_json_is_compact_stable_and_complete_and_pretty_when_asked(tmp_path, capsys):
    path = write(tmp_path, COVERED)
    _, first, _ = run(["evaluate", path], capsys)
    _, second, _ = run(["evaluate", path, "--format", "json"], capsys)
    _, pretty, _ = run(["evaluate", path, "--pretty"], capsys)
    assert first == second and first.startswith('{"ruleset":"') and first.count("\n") == 1
    assert pretty.startswith('{\n  "ruleset": "') and json.loads(pretty) == json.loads(first)
    finding = json.loads(first)["findings"][0]
    assert list(finding) == ["disclosure", "patient", "occurred", "recipient", "purposes",
                             "decision", "basis", "reasons", "accountable", "documentation",
                             "client_notice", "explanation"]


def test_text_is_a_table_with_problems_and_a_summary(tmp_path, capsys):
    bad = disclosure("AuditEvent/bad", when="whenever")
    data = bundle(world(disclosure(purposes=("THREAT",)), bad))
    code, out, _ = run(["evaluate", write(tmp_path, data), "--format", "text",
                        "--jurisdiction", "US-CA"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["occurred", "disclosure", "recipient", "purposes",
                                    "decision"]
    row = lines[2]
    assert "AuditEvent/ae1" in row and "required" in row and "duty-to-warn-or-protect" in row
    assert "missing / missing" in row
    assert "  AuditEvent/bad: period.start is not a date" in lines
    assert lines[-1].startswith("1 disclosure(s): 1 required; 1 accountable; 1 problem(s)")


def test_ndjson_on_standard_input():
    text = "\n".join(json.dumps(r) for r in world(consent(), disclosure()))
    proc = subprocess.run([sys.executable, "-m", "consent_gap.cli", "evaluate", "-"],
                          input=text, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["findings"][0]["decision"] == "authorized"


def test_help_has_examples(capsys):
    code, out, _ = run(["evaluate", "--help"], capsys)
    assert code == 0 and "examples:" in out and "--fail-on" in out


def test_subcommands_are_registered_lazily():
    """Registering a command imports nothing: evaluate stays fast."""
    names = [c.name for c in COMMANDS]
    assert names[0] == "evaluate" and len(names) == len(set(names))
    parser = build_parser()
    assert parser.parse_args(["evaluate", "f.json"])._command.name == "evaluate"
    code = ("import sys, consent_gap.cli as c; c.build_parser(); "
            "print(any(m in sys.modules for m in ('flask', 'requests', 'pydantic')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.stdout.strip() == "False", proc.stderr
