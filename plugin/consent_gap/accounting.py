"""The accounting of disclosures (CONTRACT.md 8; HIPAA 45 CFR 164.528): pure, from findings.

A client may ask what the practice disclosed about them in the six years before the request.
The entries are the client's findings whose `accountable` is true and whose `occurred` lies in
[as-of minus 6 years, as-of], ordered by `occurred`, then `disclosure`; unauthorized
disclosures are accountable and appear. Each entry gives what 164.528(b)(2) asks: the date,
the recipient's name and address, what was disclosed, a statement of the purpose and basis,
and a copy of the written request (the legal instrument) where there was one. `--summarize`
folds the disclosures to one recipient for one purpose under one basis into one entry with
the first and last dates and the count (164.528(b)(3)).

Decisions pinned here (the contract is silent; a privacy lawyer's reading, tested):
- The window is closed at both ends: a disclosure at exactly as-of, or exactly six years
  before it, is listed. "Six years" are calendar years: 2026-12-02T00:00Z goes back to
  2020-12-02T00:00Z. From a 29 February the start is 28 February six years before (the longer
  window: a client is never owed less than six years).
- An as-of given as a date alone means its first instant, as every date in the contract does.
- A summary groups on recipient, the set of purposes, basis and decision: two disclosures with
  no basis are not one "basis" when one was unauthorized and the other is under review.
- `request` is the first legal instrument the disclosure names; the HTML and PDF list all.

Nothing here reads FHIR (`normalize.read_released` gives the names, addresses and titles) or
does I/O; rendering to HTML and PDF is `documents.py`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consent_gap import wording
from consent_gap.domain import DataItem, Decision, Finding, Party, Released, Releases
from consent_gap.mappings import Rules, load_rules
from consent_gap.normalize import Unreadable, format_instant, parse_instant, read_released
from consent_gap.wording import names as named

#: The period an accounting covers, in calendar years before the request (164.528(a)(1)).
YEARS = 6


def _published(code: str) -> str:
    """A purpose without words of its own: HL7's published display (mappings/purposes.toml)."""
    display = load_rules().purposes.displays.get(code)
    return f"for {display}" if display else f"for the purpose recorded as {code}"


def purpose_sentence(purposes: Sequence[str], basis: str | None, decision: str) -> str:
    """One plain sentence of purpose and legal basis (164.528(b)(2)(iv))."""
    phrases = [wording.PURPOSES.get(code) or _published(code) for code in purposes]
    if not phrases:
        phrases = ["for a purpose the record does not state"]
    said = named.listed(phrases)
    if basis is None:
        why = wording.NO_GROUND.get(decision, wording.NO_GROUND[Decision.REVIEW])
        return f"{said}; {why}."
    if basis.startswith("Consent/"):
        return f"{said}, {wording.AUTHORIZED_GROUND.format(basis=basis)}."
    return f"{said}, {wording.ground(basis)}."


def describe_item(item: DataItem) -> str:
    """One disclosed entity (164.528(b)(2)(iii)): its type and title, description or code
    display, with its reference ("Progress note (DocumentReference/dr-1)"); data described
    only by labels, as what the labels mean ("Psychotherapy notes"). The words are
    `wording.names.record`'s; the accounting adds the reference (CONTRACT 8)."""
    said = named.record_words(item)
    return f"{said} ({item.reference})" if item.reference is not None else said


def describe(data: Sequence[DataItem]) -> str:
    return "; ".join(describe_item(item) for item in data) or wording.UNDESCRIBED


# ------------------------------------------------------------------------------------------
# The window
# ------------------------------------------------------------------------------------------


def parse_as_of(text: str) -> datetime:
    """An as-of date or date-time as a UTC instant (a date alone: its first instant);
    ValueError naming the option when it is neither."""
    try:
        return parse_instant(text.strip(), "--as-of")
    except Unreadable:
        raise ValueError(f"--as-of {text!r} is not a date or date-time "
                         "(e.g. 2026-12-02 or 2026-12-02T15:00:00Z)") from None


def window_start(as_of: datetime) -> datetime:
    """As-of minus six calendar years; from 29 February, 28 February (module docstring)."""
    try:
        return as_of.replace(year=as_of.year - YEARS)
    except ValueError:  # 29 February into a year that has none
        return as_of.replace(year=as_of.year - YEARS, day=28)


def now() -> datetime:
    """The default as-of: this second, in UTC."""
    return datetime.now(UTC).replace(microsecond=0)


# ------------------------------------------------------------------------------------------
# Entries
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One disclosure, as the accounting lists it."""

    disclosure: str
    occurred: datetime
    recipient: Party
    description: str
    purpose: str
    basis: str | None
    requests: tuple[str, ...]
    decision: str
    # What a summary groups on: the recipient as the finding names it, and the purposes.
    recipient_key: str | None = None
    purposes: frozenset[str] = frozenset()

    @property
    def date(self) -> str:
        return self.occurred.date().isoformat()

    @property
    def request(self) -> str | None:
        return self.requests[0] if self.requests else None

    def to_json(self) -> dict:
        return {
            "disclosure": self.disclosure,
            "date": self.date,
            "recipient": {"reference": self.recipient.reference, "name": self.recipient.name,
                          "address": self.recipient.address},
            "description": self.description,
            "purpose": self.purpose,
            "basis": self.basis,
            "request": self.request,
            "decision": self.decision,
        }


@dataclass(frozen=True)
class Summary:
    """Disclosures to one recipient for one purpose under one basis (164.528(b)(3)): the
    first one's details, the first and last dates, and how many."""

    entries: tuple[Entry, ...]

    @property
    def first(self) -> Entry:
        return self.entries[0]

    @property
    def last(self) -> Entry:
        return self.entries[-1]

    @property
    def count(self) -> int:
        return len(self.entries)

    def to_json(self) -> dict:
        return {**self.first.to_json(), "first": self.first.date, "last": self.last.date,
                "count": self.count, "disclosures": [e.disclosure for e in self.entries]}


@dataclass(frozen=True)
class Accounting:
    """A client's accounting of disclosures: the period and its entries (or summaries)."""

    patient: str
    as_of: datetime
    start: datetime
    entries: tuple[Entry, ...] = ()
    summaries: tuple[Summary, ...] | None = None  # with --summarize
    patient_name: str | None = None
    practice: Party | None = None

    @property
    def summarized(self) -> bool:
        return self.summaries is not None

    @property
    def rows(self) -> tuple[Entry | Summary, ...]:
        return self.summaries if self.summaries is not None else self.entries

    def to_json(self) -> dict:
        """Exactly CONTRACT.md 8's document (a summary entry adds first, last and count)."""
        return {
            "patient": self.patient,
            "as_of": format_instant(self.as_of),
            "from": format_instant(self.start),
            "entries": [row.to_json() for row in self.rows],
        }


def in_window(finding: Finding, start: datetime, as_of: datetime) -> bool:
    """Accountable and occurred within [start, as_of], both ends included."""
    if not finding.accountable:
        return False
    occurred = parse_instant(finding.occurred, "occurred")
    return start <= occurred <= as_of


def entry(finding: Finding, released: Released | None) -> Entry:
    """The accounting's line for one finding, with the recipient and data as read."""
    recipient = released.recipient if released is not None else Party(
        reference=finding.recipient if finding.recipient and "|" not in finding.recipient
        else None, name=None, address=None)
    return Entry(
        disclosure=finding.disclosure,
        occurred=parse_instant(finding.occurred, "occurred"),
        recipient=recipient,
        description=describe(released.data) if released is not None else wording.UNDESCRIBED,
        purpose=purpose_sentence(finding.purposes, finding.basis, str(finding.decision)),
        basis=finding.basis,
        requests=finding.instruments,
        decision=str(finding.decision),
        recipient_key=finding.recipient,
        purposes=frozenset(finding.purposes),
    )


def summarize(entries: Sequence[Entry]) -> tuple[Summary, ...]:
    """Group `entries` (already in order) on recipient, purposes, basis and decision; the
    groups in the order of their first disclosure."""
    groups: dict[tuple, list[Entry]] = {}
    for item in entries:
        key = (item.recipient_key, item.purposes, item.basis, item.decision)
        groups.setdefault(key, []).append(item)
    return tuple(Summary(tuple(group)) for group in groups.values())


def build(
    findings: Iterable[Finding],
    releases: Releases,
    patient: str,
    as_of: datetime,
    *,
    summarized: bool = False,
    patient_name: str | None = None,
    practice: Party | None = None,
) -> Accounting:
    """The accounting of `patient`'s disclosures as of `as_of` (CONTRACT 8)."""
    start = window_start(as_of)
    chosen = [f for f in findings if f.patient == patient and in_window(f, start, as_of)]
    entries = sorted((entry(f, releases.disclosures.get(f.disclosure)) for f in chosen),
                     key=lambda e: (e.occurred, e.disclosure))
    return Accounting(
        patient=patient, as_of=as_of, start=start, entries=tuple(entries),
        summaries=summarize(entries) if summarized else None,
        patient_name=patient_name, practice=practice,
    )


def wanted(findings: Iterable[Finding], patient: str, as_of: datetime) -> set[str]:
    """The disclosures `build` will list: what `read_released` needs to read."""
    start = window_start(as_of)
    return {f.disclosure for f in findings if f.patient == patient
            and in_window(f, start, as_of)}


class UnknownPatient(LookupError):
    """The data names no such patient: there is nothing to account for (exit 2)."""


def patient_reference(text: str) -> str:
    """`p-1` or `Patient/p-1` (or a URL ending so) as `Patient/p-1`."""
    value = text.strip().rstrip("/")
    if "/" in value:
        kind, _, rid = value.rpartition("/")
        if kind.rsplit("/", 1)[-1] != "Patient" or not rid:
            raise ValueError(f"--patient {text!r} is not a Patient id or reference")
        value = rid
    if not value:
        raise ValueError("--patient is empty")
    return f"Patient/{value}"


def account(
    data: Any,
    report: Any,
    rules: Rules,
    patient: str,
    as_of: datetime,
    *,
    summarized: bool = False,
    organization: str | None = None,
) -> Accounting:
    """The accounting from a data set and the `evaluate` Report decided on it: the patient
    must be one the data names (UnknownPatient otherwise); the names, addresses and titles of
    the listed disclosures, and the practice's name (`organization`), are read from `data`."""
    chart = report.charts.get(patient)
    if chart is None:
        raise UnknownPatient(f"no patient {patient} in the data")
    releases = read_released(data, rules, wanted(report.findings, patient, as_of))
    practice = None
    if organization:
        practice = releases.parties.get(organization) or Party(organization, None, None)
    return build(report.findings, releases, patient, as_of, summarized=summarized,
                 patient_name=chart.patient.name if chart.patient is not None else None,
                 practice=practice)
