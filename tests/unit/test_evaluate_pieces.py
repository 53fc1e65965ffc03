"""The compact report is written in pieces (`_report_pieces`): their concatenation is byte for
byte what `dump_report` gives, whatever the number of findings, and anything orjson refuses
is written whole by `dump_report`."""

import json
from dataclasses import replace

import pytest
from consent_gap.commands.evaluate import _PIECE, _report_pieces, dump_report
from consent_gap.domain import ClientNotice, Decision, Documentation, Finding, Problem
from consent_gap.evaluate import Report


def _finding(i: int, explanation: str = "Expired.") -> Finding:
    return Finding(
        disclosure=f"AuditEvent/ae-{i}", patient="Patient/p-1",
        occurred="2024-11-27T21:18:00Z", recipient=None if i % 3 else "Organization/o",
        purposes=("PATRQT", "TREAT")[: 1 + i % 2], decision=Decision.UNAUTHORIZED,
        basis=None, reasons=("authorization-expired",), accountable=bool(i % 2),
        documentation=Documentation.MISSING, client_notice=ClientNotice.NOT_REQUIRED,
        explanation=explanation)


@pytest.mark.parametrize("count", [0, 1, _PIECE - 1, _PIECE, _PIECE + 1, 3 * _PIECE + 7])
@pytest.mark.parametrize("pretty", [False, True])
def test_pieces_are_the_report(count, pretty):
    report = Report(findings=[_finding(i, "Réexpédié \"findings\":[] ✓") for i in range(count)],
                    problems=[Problem("Consent/c-9", "not a Consent")],
                    ruleset="2026.1 \"findings\":[]")
    pieces = _report_pieces(report, pretty)
    assert b"".join(pieces) == dump_report(report, pretty=pretty)
    assert json.loads(b"".join(pieces)) == report.to_json()
    if not pretty and count > _PIECE:
        assert len(pieces) > 2  # written in pieces, not whole


def test_what_orjson_refuses_is_written_whole():
    report = Report(findings=[_finding(i) for i in range(_PIECE + 2)], ruleset="2026.1")
    report = replace(report, findings=[*report.findings, _finding(9, "lone \ud800 surrogate")])
    pieces = _report_pieces(report, False)
    assert pieces == [dump_report(report)]
    assert b"\\ud800" in pieces[0]
