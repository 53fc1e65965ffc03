"""The breach risk assessment's rules (CONTRACT.md 7.1, 45 CFR 164.402-164.408), pure: the
four factors, the suggested conclusion, the notification deadlines, and the year's breach log.

No I/O and no clock: the caller passes the discovery time (the Task's ``authoredOn``) and the
client's deadline (its ``restriction.period.end``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

#: The four factors of 164.402(2), in the regulation's order: (code, question).
FACTORS: tuple[tuple[str, str], ...] = (
    ("nature", "(i) The nature and extent of the information involved, including the types "
               "of identifiers and the likelihood of re-identification"),
    ("recipient", "(ii) The unauthorized person who used the information or to whom the "
                  "disclosure was made"),
    ("acquired", "(iii) Whether the information was actually acquired or viewed"),
    ("mitigation", "(iv) The extent to which the risk to the information has been mitigated"),
)
RATINGS = ("low", "moderate", "high")
#: The exceptions of 164.402(1) (code, wording); "none" when none applies.
EXCEPTIONS: tuple[tuple[str, str], ...] = (
    ("none", "No exception applies"),
    ("workforce-good-faith", "(i) Unintentional acquisition, access or use by a workforce "
                             "member acting in good faith, within the scope of authority, and "
                             "not further used or disclosed"),
    ("inadvertent-internal", "(ii) Inadvertent disclosure between persons authorized to access "
                             "the information at the practice or its business associate"),
    ("unable-to-retain", "(iii) A good-faith belief that the recipient could not reasonably "
                         "have retained the information"),
)
CONCLUSIONS = ("low-probability", "breach")
#: 164.404(b), 164.406(b), 164.408(b): 60 calendar days.
WINDOW = timedelta(days=60)
#: 164.408(b): notify HHS with the breach when it affects 500 or more people.
HHS_IMMEDIATE = 500
#: 164.406(a): notify the media when more than 500 residents of one State are affected.
MEDIA_OVER = 500


class AssessmentIncomplete(ValueError):
    """An answer is missing or not one of the allowed values; the message names each."""


@dataclass(frozen=True)
class Assessment:
    """What the officer answered (CONTRACT 7.1), validated."""

    secured: bool
    exception: str
    ratings: Mapping[str, str]  # factor code -> low | moderate | high
    evidence: Mapping[str, str]  # factor code -> text
    conclusion: str
    affected: int = 1
    state_residents: int = 1  # the most residents of any one State among the affected


def suggest(ratings: Mapping[str, str]) -> str:
    """The conclusion the app suggests: ``breach`` when any factor is rated high (CONTRACT
    7.1), else ``low-probability``. The officer concludes; the suggestion only pre-selects."""
    return "breach" if any(ratings.get(code) == "high" for code, _ in FACTORS) else (
        "low-probability")


def read_assessment(form: Mapping[str, str]) -> Assessment:
    """The answers from a form (``secured``, ``exception``, ``rating-<factor>``,
    ``evidence-<factor>``, ``conclusion``, ``affected``, ``state_residents``); every one is
    required, AssessmentIncomplete names those missing or wrong."""
    problems: list[str] = []
    secured = (form.get("secured") or "").strip()
    if secured not in ("yes", "no"):
        problems.append("whether the information was secured")
    exception = (form.get("exception") or "").strip()
    if exception not in {code for code, _ in EXCEPTIONS}:
        problems.append("whether a 164.402(1) exception applies")
    ratings: dict[str, str] = {}
    evidence: dict[str, str] = {}
    for code, _ in FACTORS:
        rating = (form.get(f"rating-{code}") or "").strip()
        text = (form.get(f"evidence-{code}") or "").strip()
        if rating not in RATINGS:
            problems.append(f"the rating of factor {code}")
        if not text:
            problems.append(f"the evidence for factor {code}")
        ratings[code], evidence[code] = rating, text
    conclusion = (form.get("conclusion") or "").strip()
    if conclusion not in CONCLUSIONS:
        problems.append("the conclusion")
    affected = _count(form.get("affected"), problems, "the number of people affected")
    residents = _count(form.get("state_residents") or str(affected), problems,
                       "the most residents of one State")
    if not problems and residents > affected:
        problems.append("the most residents of one State (more than the people affected)")
    if problems:
        raise AssessmentIncomplete("Missing or not valid: " + "; ".join(problems) + ".")
    return Assessment(secured == "yes", exception, ratings, evidence, conclusion, affected,
                      residents)


def _count(value: str | None, problems: list[str], what: str) -> int:
    try:
        number = int((value or "1").strip())
    except ValueError:
        number = 0
    if number < 1:
        problems.append(what)
    return number


@dataclass(frozen=True)
class Deadlines:
    """The latest day of each notice a breach calls for (None: not required)."""

    client: datetime | None
    hhs: date
    hhs_with_annual_log: bool  # fewer than 500: HHS hears of it in the year's log
    media: datetime | None


def deadlines(discovered: datetime, client_deadline: datetime | None, affected: int = 1,
              state_residents: int = 1) -> Deadlines:
    """164.404 (client: the Task's deadline, else 60 days from discovery), 164.408 (HHS: with
    the breach for 500 or more, else within 60 days after the end of the calendar year of
    discovery), 164.406 (media: more than 500 residents of one State)."""
    client = client_deadline or discovered + WINDOW
    if affected >= HHS_IMMEDIATE:
        hhs, annual = (discovered + WINDOW).date(), False
    else:
        hhs, annual = date(discovered.year, 12, 31) + WINDOW, True
    media = discovered + WINDOW if state_residents > MEDIA_OVER else None
    return Deadlines(client, hhs, annual, media)


def days_left(deadline: datetime | date | None, today: date) -> int | None:
    """Whole days from ``today`` to the deadline (negative when passed)."""
    if deadline is None:
        return None
    day = deadline.date() if isinstance(deadline, datetime) else deadline
    return (day - today).days


@dataclass(frozen=True)
class LogEntry:
    """One breach of the year's log (164.408(c)): what HHS's annual report asks."""

    task: str
    patient: str
    disclosure: str
    occurred: str
    discovered: str
    affected: int
    concluded: str
    client_notice: str  # the notice draft's reference and status, or "not yet drafted"
    notice_state: str = ""  # the same in words only, for the screen (not a CSV column)


LOG_COLUMNS = ("task", "patient", "disclosure", "occurred", "discovered", "affected",
               "concluded", "client_notice")


def log_csv(entries: Iterable[LogEntry]) -> str:
    """The year's breach log as CSV (one row per breach, the columns of ``LOG_COLUMNS``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(LOG_COLUMNS)
    for entry in entries:
        writer.writerow([_cell(getattr(entry, column)) for column in LOG_COLUMNS])
    return out.getvalue()


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
