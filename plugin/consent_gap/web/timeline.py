"""Geometry of the panel's timeline: authorization periods as bars, disclosures as marks.

Pure: findings and spans in, coordinates out; the template turns them into SVG. Each decision
has its own shape as well as its own colour (circle, square, diamond, triangle, cross), and the
legend names them, so colour is never the only signal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .. import wording
from ..domain import Decision, Finding

WIDTH = 560
LEFT = 8
RIGHT = 8
TOP = 6
BAR_HEIGHT = 8
BAR_GAP = 4
MARK_SIZE = 10
MARK_ROW = 14
AXIS_HEIGHT = 18


@dataclass(frozen=True)
class DecisionStyle:
    shape: str
    label: str
    symbol: str  # one character, shown in the list next to the word


_MARKS = {  # shape and symbol per decision; the label is the decision's wording
    Decision.AUTHORIZED: ("circle", "\u25cf"),
    Decision.PERMITTED: ("square", "\u25a0"),
    Decision.REQUIRED: ("diamond", "\u25c6"),
    Decision.UNAUTHORIZED: ("cross", "\u2716"),
    Decision.REVIEW: ("triangle", "\u25b2"),
}
STYLES: dict[str, DecisionStyle] = {
    decision: DecisionStyle(shape, wording.decision(decision), symbol)
    for decision, (shape, symbol) in _MARKS.items()
}
DECISION_ORDER = (
    Decision.UNAUTHORIZED,
    Decision.REVIEW,
    Decision.REQUIRED,
    Decision.PERMITTED,
    Decision.AUTHORIZED,
)


@dataclass(frozen=True)
class Span:
    """An authorization's period as the panel draws it (None: open on that side)."""

    ref: str
    label: str
    start: datetime | None
    end: datetime | None
    state: str = "active"  # active | revoked | inactive | other


@dataclass(frozen=True)
class Bar:
    ref: str
    label: str
    x: float
    y: float
    width: float
    state: str
    open_start: bool
    open_end: bool
    title: str


@dataclass(frozen=True)
class Mark:
    anchor: str
    decision: str
    shape: str
    path: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    bars: tuple[Bar, ...]
    marks: tuple[Mark, ...]
    ticks: tuple[Tick, ...]
    axis_y: float
    summary: str

    @property
    def empty(self) -> bool:
        return not self.bars and not self.marks


def parse_instant(text: str | None) -> datetime | None:
    """An ISO date or dateTime as an aware UTC datetime (a date means its first instant)."""
    if not text:
        return None
    value = text.strip()
    try:
        if len(value) == 4:
            return datetime(int(value), 1, 1, tzinfo=UTC)
        if len(value) == 7:
            return datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def shape_path(shape: str, cx: float, cy: float, size: float = MARK_SIZE) -> str:
    """SVG path data of a mark of ``shape`` centred on (cx, cy)."""
    r = size / 2
    if shape == "circle":
        return (
            f"M{cx - r:.1f},{cy:.1f}a{r:.1f},{r:.1f} 0 1,0 {2 * r:.1f},0"
            f"a{r:.1f},{r:.1f} 0 1,0 {-2 * r:.1f},0Z"
        )
    if shape == "square":
        s = r * 0.85
        return f"M{cx - s:.1f},{cy - s:.1f}h{2 * s:.1f}v{2 * s:.1f}h{-2 * s:.1f}Z"
    if shape == "diamond":
        return (f"M{cx:.1f},{cy - r:.1f}L{cx + r:.1f},{cy:.1f}"
                f"L{cx:.1f},{cy + r:.1f}L{cx - r:.1f},{cy:.1f}Z")
    if shape == "triangle":
        return f"M{cx:.1f},{cy - r:.1f}L{cx + r:.1f},{cy + r:.1f}L{cx - r:.1f},{cy + r:.1f}Z"
    # cross: two strokes drawn as one thick outline
    t = r * 0.35
    return (
        f"M{cx - r:.1f},{cy - r + t:.1f}L{cx - r + t:.1f},{cy - r:.1f}L{cx:.1f},{cy - t:.1f}"
        f"L{cx + r - t:.1f},{cy - r:.1f}L{cx + r:.1f},{cy - r + t:.1f}L{cx + t:.1f},{cy:.1f}"
        f"L{cx + r:.1f},{cy + r - t:.1f}L{cx + r - t:.1f},{cy + r:.1f}L{cx:.1f},{cy + t:.1f}"
        f"L{cx - r + t:.1f},{cy + r:.1f}L{cx - r:.1f},{cy + r - t:.1f}L{cx - t:.1f},{cy:.1f}Z"
    )


def _range(times: Sequence[datetime], spans: Sequence[Span]) -> tuple[datetime, datetime]:
    starts = [s.start for s in spans if s.start] + list(times)
    ends = [s.end for s in spans if s.end] + list(times)
    lo = min(starts)
    hi = max(times) if times else max(ends)
    # A far-off expiry should not squeeze the disclosures into a corner: clip it to 25 %
    # beyond the last disclosure.
    far = max(ends)
    if far > hi:
        hi = min(far, hi + max((hi - lo) * 0.25, timedelta(days=30)))
    if hi - lo < timedelta(days=30):
        middle = lo + (hi - lo) / 2
        lo, hi = middle - timedelta(days=15), middle + timedelta(days=15)
    pad = (hi - lo) * 0.03
    return lo - pad, hi + pad


def _ticks(lo: datetime, hi: datetime, scale) -> list[Tick]:
    years = (hi - lo).days / 365.25
    if years > 2:
        step = max(1, math.ceil(years / 6))
        out = []
        year = lo.year + 1
        while datetime(year, 1, 1, tzinfo=UTC) < hi:
            out.append(Tick(scale(datetime(year, 1, 1, tzinfo=UTC)), str(year)))
            year += step
        return out
    months = max(1, math.ceil(years * 12 / 6))
    out = []
    year, month = lo.year, lo.month + 1
    while True:
        if month > 12:
            year, month = year + 1, month - 12
        when = datetime(year, month, 1, tzinfo=UTC)
        if when >= hi:
            return out
        out.append(Tick(scale(when), f"{year}-{month:02d}"))
        month += months


def _fmt(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d") if when else "open"


def layout(
    findings: Iterable[Finding], spans: Iterable[Span], *, width: int = WIDTH,
    names: Sequence[str] | None = None,
) -> Timeline:
    """Place bars (one row per authorization, in the order given) and marks (one row of
    disclosures below, stacked where marks would overlap) on a shared time axis. `names`:
    each finding's recipient as the panel names it (its title says who, never an id)."""
    findings = list(findings)
    named = list(names) if names is not None else [f.disclosure for f in findings]
    kept = [(i, f) for i, f in enumerate(findings) if parse_instant(f.occurred)]
    findings = [f for _, f in kept]
    named = [(i + 1, named[i]) for i, _ in kept]  # (the finding's number, its recipient)
    spans = list(spans)
    times = [parse_instant(f.occurred) for f in findings]
    if not times and not any(s.start or s.end for s in spans):
        return Timeline(width, 0, (), (), (), 0, "No disclosures and no authorization periods.")
    lo, hi = _range([t for t in times if t], spans)
    inner = width - LEFT - RIGHT
    total = (hi - lo).total_seconds()

    def scale(when: datetime) -> float:
        frac = (when - lo).total_seconds() / total
        return round(LEFT + min(max(frac, 0.0), 1.0) * inner, 1)

    bars = []
    y = TOP
    for span in spans:
        x0 = scale(span.start) if span.start else LEFT
        x1 = scale(span.end) if span.end else LEFT + inner
        title = f"{span.label}: {_fmt(span.start)} to {_fmt(span.end)} ({span.state})"
        bars.append(
            Bar(span.ref, span.label, x0, y, max(x1 - x0, 2.0), span.state,
                span.start is None, span.end is None, title)
        )
        y += BAR_HEIGHT + BAR_GAP
    marks, rows = _place_marks(findings, times, named, scale, y + MARK_SIZE / 2 + 2)
    axis_y = y + rows * MARK_ROW + 6
    ticks = tuple(_ticks(lo, hi, scale))
    summary = (
        f"Timeline from {_fmt(lo)} to {_fmt(hi)}: {len(bars)} authorization period(s), "
        f"{len(marks)} disclosure(s)."
    )
    return Timeline(width, int(axis_y + AXIS_HEIGHT), tuple(bars), tuple(marks), ticks,
                    axis_y, summary)


def _place_marks(findings, times, named, scale, base_y) -> tuple[list[Mark], int]:
    marks: list[Mark] = []
    last_x_in_row: list[float] = []
    for finding, when, (number, name) in zip(findings, times, named, strict=True):
        x = scale(when)
        row = next(
            (r for r, last in enumerate(last_x_in_row) if x - last >= MARK_SIZE + 1), None
        )
        if row is None:
            if len(last_x_in_row) < 4:
                last_x_in_row.append(x)
                row = len(last_x_in_row) - 1
            else:  # crowded: overprint on the least recently used row
                row = min(range(len(last_x_in_row)), key=lambda r: last_x_in_row[r])
        last_x_in_row[row] = x
        style = STYLES[Decision(finding.decision)]
        cy = base_y + row * MARK_ROW
        title = f"{_fmt(when)}: {style.label}, to {name}"
        marks.append(
            Mark(f"finding-{number}", str(finding.decision), style.shape,
                 shape_path(style.shape, x, cy), title)
        )
    return marks, max(len(last_x_in_row), 1)
