"""Timeline geometry: bars on the time axis, marks by decision with distinct shapes."""

from __future__ import annotations

from datetime import UTC, datetime

from consent_gap.domain import ClientNotice, Decision, Documentation, Finding
from consent_gap.web.timeline import STYLES, Span, layout, parse_instant, shape_path


def finding(ref: str, when: str, decision: Decision) -> Finding:
    return Finding(
        disclosure=ref, patient="Patient/p1", occurred=when, recipient=None, purposes=("TREAT",),
        decision=decision, basis=None, reasons=(), accountable=False,
        documentation=Documentation.NOT_REQUIRED, client_notice=ClientNotice.NOT_REQUIRED,
        explanation="x",
    )


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_every_decision_has_its_own_shape_and_symbol():
    assert len({s.shape for s in STYLES.values()}) == len(Decision)
    assert len({s.symbol for s in STYLES.values()}) == len(Decision)
    paths = {shape_path(s.shape, 50, 50) for s in STYLES.values()}
    assert len(paths) == len(Decision)


def test_marks_follow_time_and_bars_follow_periods():
    findings = [
        finding("AuditEvent/a", "2025-01-10T00:00:00Z", Decision.AUTHORIZED),
        finding("AuditEvent/b", "2025-06-01T00:00:00Z", Decision.UNAUTHORIZED),
        finding("AuditEvent/c", "2025-12-20T00:00:00Z", Decision.REVIEW),
    ]
    spans = [
        Span("Consent/c1", "c1", day("2025-01-01"), day("2025-03-01")),
        Span("Consent/c2", "c2", day("2025-05-01"), None, "revoked"),
    ]
    tl = layout(findings, spans)
    xs = [float(m.path[1:].split(",")[0]) for m in tl.marks]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    assert [m.decision for m in tl.marks] == ["authorized", "unauthorized", "review"]
    assert [m.shape for m in tl.marks] == ["circle", "cross", "triangle"]
    first, second = tl.bars
    assert first.x < second.x and first.y < second.y
    assert second.open_end and second.x + second.width == tl.width - 8
    assert second.state == "revoked"
    # the first bar ends before the second disclosure's mark
    assert first.x + first.width < xs[1]
    assert tl.marks[1].anchor == "finding-2"
    assert "2025-06-01" in tl.marks[1].title and "Unauthorized" in tl.marks[1].title
    assert tl.ticks and all(0 <= t.x <= tl.width for t in tl.ticks)


def test_marks_on_the_same_day_stack_instead_of_hiding():
    when = "2025-03-03T10:00:00Z"
    same = [finding(f"AuditEvent/{i}", when, Decision.PERMITTED) for i in range(3)]
    tl = layout([*same, finding("AuditEvent/z", "2026-03-03T10:00:00Z", Decision.PERMITTED)], [])
    ys = {m.path.split(",")[1].split("a")[0] for m in tl.marks[:3]}
    assert len(ys) == 3


def test_far_expiry_does_not_squeeze_the_disclosures():
    findings = [
        finding("AuditEvent/a", "2025-01-01T00:00:00Z", Decision.AUTHORIZED),
        finding("AuditEvent/b", "2025-12-31T00:00:00Z", Decision.AUTHORIZED),
    ]
    tl = layout(findings, [Span("Consent/c", "c", day("2024-12-01"), day("2099-01-01"))])
    xs = [float(m.path[1:].split(",")[0]) for m in tl.marks]
    assert xs[1] - xs[0] > tl.width * 0.6


def test_empty_timeline():
    assert layout([], []).empty


def test_parse_instant():
    assert parse_instant("2025-04-02") == day("2025-04-02")
    assert parse_instant("2025-04-02T12:00:00+02:00") == datetime(2025, 4, 2, 10, tzinfo=UTC)
    assert parse_instant("nonsense") is None
