"""CONTRACT.md section 2: `consent-gap evaluate` output, order, problems and exit codes.

Most cases call `consent_gap.cli.main(argv)` in-process (fast); a few run the installed command
in a subprocess to see exactly what a person at a terminal sees (one line, no traceback).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.fhir import (
    bundle,
    consent,
    disclosure,
    document,
    organization,
    patient,
    practitioner,
    provision,
)

FINDING_KEYS = {"disclosure", "patient", "occurred", "recipient", "purposes", "decision",
                "basis", "reasons", "accountable", "documentation", "client_notice",
                "explanation"}


def command() -> list[str]:
    script = Path(sys.executable).with_name("consent-gap")
    if script.exists():
        return [str(script)]
    found = shutil.which("consent-gap")
    return [found] if found else [sys.executable, "-m", "consent_gap.cli"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*command(), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def main(argv: list[str], capsys) -> tuple[int, str, str]:
    """Call the CLI in-process; an argparse exit counts as its exit code."""
    from consent_gap.cli import main as cli_main

    try:
        code = cli_main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    out, err = capsys.readouterr()
    return (0 if code is None else code), out, err


def write(tmp_path: Path, data, name: str = "bundle.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def cast(*extra) -> list[dict]:
    return [patient(), practitioner(), organization(), document(), *extra]


THREAT = bundle(cast(disclosure(purposes=("THREAT",))))
UNAUTHORIZED = bundle(cast(disclosure(purposes=("PATRQT",))))
COVERED = bundle(cast(consent(), disclosure(purposes=("PATRQT",))))


def test_json_shape(tmp_path, capsys):
    code, out, err = main(["evaluate", write(tmp_path, THREAT), "--jurisdiction", "US-CA",
                           "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"ruleset", "findings", "problems"}
    assert doc["ruleset"] == "2026.3"
    assert doc["problems"] == []
    [f] = doc["findings"]
    assert set(f) == FINDING_KEYS
    assert f["disclosure"] == "AuditEvent/ae1"
    assert f["patient"] == "Patient/p1"
    assert f["occurred"] == "2025-06-01T10:00:00Z"
    assert f["recipient"] == "Organization/org-rcpt"
    assert f["purposes"] == ["THREAT"]
    assert (f["decision"], f["basis"], f["reasons"], f["accountable"]) == (
        "required", "duty-to-warn-or-protect", [], True)
    assert (f["documentation"], f["client_notice"]) == ("missing", "missing")
    assert isinstance(f["explanation"], str) and f["explanation"].strip()


def test_json_is_the_default_format(tmp_path, capsys):
    code, out, _ = main(["evaluate", write(tmp_path, COVERED)], capsys)
    assert code == 0
    [f] = json.loads(out)["findings"]
    assert (f["decision"], f["basis"]) == ("authorized", "Consent/c1")


def test_basis_null_is_json_null(tmp_path, capsys):
    _, out, _ = main(["evaluate", write(tmp_path, UNAUTHORIZED)], capsys)
    assert json.loads(out)["findings"][0]["basis"] is None


def test_order_by_occurred_then_disclosure(tmp_path, capsys):
    aes = [disclosure("AuditEvent/ae-c", when="2025-06-03T00:00:00Z", purposes=("TREAT",)),
           disclosure("AuditEvent/ae-b", when="2025-06-01T10:00:00Z", purposes=("TREAT",)),
           disclosure("AuditEvent/ae-z", when="2025-06-01T11:00:00+02:00", purposes=("TREAT",)),
           disclosure("AuditEvent/ae-a", when="2025-06-01T10:00:00Z", purposes=("TREAT",)),
           disclosure("AuditEvent/ae-d", when=None, recorded="2025-06-02T00:00:00Z",
                      purposes=("TREAT",))]
    _, out, _ = main(["evaluate", write(tmp_path, bundle(cast(*aes)))], capsys)
    got = [(f["disclosure"], f["occurred"]) for f in json.loads(out)["findings"]]
    assert got == [("AuditEvent/ae-z", "2025-06-01T09:00:00Z"),
                   ("AuditEvent/ae-a", "2025-06-01T10:00:00Z"),
                   ("AuditEvent/ae-b", "2025-06-01T10:00:00Z"),
                   ("AuditEvent/ae-d", "2025-06-02T00:00:00Z"),
                   ("AuditEvent/ae-c", "2025-06-03T00:00:00Z")]


def test_unreadable_disclosure_is_a_problem_and_the_rest_is_decided(tmp_path, capsys):
    bad = disclosure("AuditEvent/ae-bad", purposes=("TREAT",))
    bad["period"] = {"start": "not a date"}
    bad["recorded"] = "not a date either"
    good = disclosure("AuditEvent/ae-good", purposes=("TREAT",))
    code, out, err = main(["evaluate", write(tmp_path, bundle(cast(bad, good)))], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert [f["disclosure"] for f in doc["findings"]] == ["AuditEvent/ae-good"]
    assert doc["findings"][0]["decision"] == "permitted"
    assert [p["resource"] for p in doc["problems"]] == ["AuditEvent/ae-bad"]
    assert set(doc["problems"][0]) == {"resource", "message"}
    assert doc["problems"][0]["message"].strip()


def test_unreadable_consent_is_a_problem_and_disclosures_are_still_decided(tmp_path, capsys):
    bad = consent("Consent/c-9", prov=provision(start="not a date"))
    code, out, err = main(["evaluate", write(tmp_path, bundle(cast(
        bad, disclosure(purposes=("TREAT",)))))], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert [f["disclosure"] for f in doc["findings"]] == ["AuditEvent/ae1"]
    assert "Consent/c-9" in [p["resource"] for p in doc["problems"]]


@pytest.mark.parametrize(("data", "flags", "code"), [
    pytest.param(UNAUTHORIZED, [], 0, id="unauthorized-without-fail-on"),
    pytest.param(UNAUTHORIZED, ["--fail-on", "unauthorized"], 1, id="unauthorized-fail-on"),
    pytest.param(COVERED, ["--fail-on", "unauthorized"], 0, id="covered-fail-on"),
    pytest.param(bundle(cast(disclosure(purposes=("GOV",)))), ["--fail-on", "unauthorized"], 0,
                 id="review-is-not-unauthorized"),
    pytest.param(bundle(cast()), [], 0, id="no-disclosures"),
])
def test_exit_codes(tmp_path, capsys, data, flags, code):
    got, out, err = main(["evaluate", write(tmp_path, data), *flags], capsys)
    assert got == code, err
    assert set(json.loads(out)) == {"ruleset", "findings", "problems"}


@pytest.mark.parametrize(("content", "flags"), [
    pytest.param('{"resourceType": "Patient", "id": "p1"}', [], id="not-a-bundle"),
    pytest.param('"just a string"', [], id="json-string"),
    pytest.param('{"resourceType": "Bundle", "type": "history", "entry": []}', [],
                 id="history-bundle"),
    pytest.param(json.dumps(COVERED), ["--jurisdiction", "US-ZZ"], id="unknown-jurisdiction"),
    pytest.param(json.dumps(COVERED), ["--jurisdiction", "California"],
                 id="jurisdiction-not-iso"),
    pytest.param("{not json", [], id="not-json"),
    pytest.param("", [], id="empty-file"),
])
def test_unusable_input_exits_2_in_process(tmp_path, capsys, content, flags):
    code, _, err = main(["evaluate", write(tmp_path, content), *flags], capsys)
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "stdin"), [
    pytest.param(["evaluate", "no/such/file.json"], None, id="missing-file"),
    pytest.param(["evaluate", "-"], "{not json", id="not-json-on-stdin"),
    pytest.param(["evaluate", "-", "--jurisdiction", "US-ZZ"], json.dumps(COVERED),
                 id="unknown-jurisdiction"),
    pytest.param(["evaluate", "-"], '{"resourceType": "Bundle", "type": "history"}',
                 id="history-bundle"),
])
def test_unusable_input_exits_2_at_the_terminal(args, stdin):
    proc = run(*args, stdin=stdin)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_stdin_and_fail_on_at_the_terminal():
    proc = run("evaluate", "-", "--fail-on", "unauthorized", stdin=json.dumps(UNAUTHORIZED))
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ruleset"] == "2026.3"
    assert [f["decision"] for f in doc["findings"]] == ["unauthorized"]


def test_text_format_is_for_people(tmp_path, capsys):
    code, out, err = main(["evaluate", write(tmp_path, THREAT), "--jurisdiction", "US-CA",
                           "--format", "text"], capsys)
    assert code == 0, err
    assert "AuditEvent/ae1" in out and "required" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


@pytest.mark.parametrize("bundle_type", ["collection", "searchset", "transaction", "batch",
                                         "document", "transaction-response", "batch-response"])
def test_any_bundle_type_but_history_is_evaluated(tmp_path, capsys, bundle_type):
    data = {**COVERED, "type": bundle_type}
    code, out, err = main(["evaluate", write(tmp_path, data)], capsys)
    assert code == 0, err
    [f] = json.loads(out)["findings"]
    assert (f["decision"], f["basis"]) == ("authorized", "Consent/c1")
