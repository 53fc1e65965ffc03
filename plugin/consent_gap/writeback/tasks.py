"""The privacy office's Task for a flagged finding (CONTRACT.md section 7), and how a Task is
dated when the finding was written before Tasks existed.

Why it looks like this:
- The Task is one more kind of the finding's write-back (``Kind.TASK``), so it goes in the same
  transaction as the alert and the finding note, with the same deterministic identifier scheme
  and its own Provenance; a rerun matches it and writes nothing.
- ``authoredOn`` is the discovery of the finding (45 CFR 164.404(a)(2): the 60 days to notify the
  client run from it). A finding written in this run is discovered now. A finding whose alert or
  note an earlier run (or the panel) already wrote was discovered then: its Task, written later,
  takes the earliest of the alert's ``sent`` and the note's ``date`` (else their
  ``meta.lastUpdated``), never the later run's clock, which would push the deadline out.
- ``reasonReference`` names the finding note: the transaction's ``urn:uuid`` when the note goes
  in the same transaction, else the note already on the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from consent_gap import wording
from consent_gap.domain import Decision, Finding
from consent_gap.wording import notes

if TYPE_CHECKING:
    from consent_gap.writeback import FindingWrites, WriteContext

CS = "https://consent-gap.dev/fhir"
TASK_CODE_SYSTEM = f"{CS}/CodeSystem/task"
TASK_CODE = "review-disclosure"
DISPOSITION_SYSTEM = f"{CS}/CodeSystem/disposition"
#: 45 CFR 164.404(b): the client is notified within 60 calendar days of discovery.
NOTICE_WINDOW = timedelta(days=60)
#: The statuses of a Task that is done with (the worklist leaves them out).
CLOSED = ("completed", "cancelled")


@dataclass(frozen=True)
class Present:
    """One of our resources already on the server: its reference and when it was written."""

    reference: str
    written: datetime | None


def instant(value: datetime) -> str:
    """A FHIR instant in UTC to the second (the form every consent-gap timestamp takes)."""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_instant(value: Any) -> datetime | None:
    """A FHIR dateTime/instant as an aware datetime; None when absent or unreadable (a date
    alone is its first instant, in UTC)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text if "T" in text else f"{text}T00:00:00+00:00")
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def deadline(authored: datetime) -> datetime:
    """The latest time to notify the client if the assessment finds a breach."""
    return authored + NOTICE_WINDOW


def task_resource(finding: Finding, context: WriteContext, device: str, *,
                  note: str | None = None) -> dict[str, Any]:
    """The Task of CONTRACT 7 (without meta and identifier, which ``writeback.plan`` adds).
    ``note`` is the finding note's reference; by default the one in the same transaction."""
    from consent_gap.writeback import FINDING_SYSTEM, Kind, identifier_value, urn

    if note is None:
        value = identifier_value(finding, Kind.FINDING_NOTE)
        note = urn(f"{FINDING_SYSTEM}|{value}")
    urgent = finding.decision == Decision.UNAUTHORIZED
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "urgent" if urgent else "routine",
        "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": TASK_CODE,
                             "display": "Review a disclosure"}],
                 "text": "Review a disclosure"},
        "description": f"Review {notes.disclosure(finding, context.names)} "
                       f"({wording.decision(finding.decision).lower()})",
        "focus": {"reference": finding.disclosure},
        **({"for": {"reference": finding.patient}} if finding.patient else {}),
        "authoredOn": context.timestamp,
        "requester": {"reference": device},
        **({"owner": {"reference": context.privacy_officer}} if context.privacy_officer else {}),
        "reasonReference": {"reference": note},
    }
    if urgent:
        task["restriction"] = {"period": {"end": instant(deadline(context.now))}}
    return task


def present(resources: Any) -> dict[str, Present]:
    """Our resources as an identifier search returned them (``_elements`` as
    ``writeback.existing_searches`` asks): identifier value -> what is there."""
    from consent_gap.writeback import FINDING_SYSTEM

    found: dict[str, Present] = {}
    for resource in resources:
        if not isinstance(resource, dict) or not resource.get("id"):
            continue
        written = (parse_instant(resource.get("sent")) or parse_instant(resource.get("date"))
                   or parse_instant((resource.get("meta") or {}).get("lastUpdated")))
        reference = f"{resource.get('resourceType')}/{resource['id']}"
        for identifier in resource.get("identifier") or []:
            if isinstance(identifier, dict) and identifier.get("system") == FINDING_SYSTEM:
                found[str(identifier.get("value"))] = Present(reference, written)
    return found


def anchored(group: FindingWrites, found: Mapping[str, Present],
             context: WriteContext) -> FindingWrites:
    """The group less what is already on the server; a Task still to write for a finding whose
    alert or note is there is dated at their discovery and points at the note there."""
    from consent_gap.writeback import FindingWrites, Kind, validate

    left = tuple(write for write in group.writes if write.value not in found)
    task = next((write for write in left if write.kind == Kind.TASK), None)
    if task is None:
        return FindingWrites(group.finding, left)
    earlier = [found[w.value] for w in group.writes
               if w.value in found and w.kind in (Kind.ALERT, Kind.FINDING_NOTE)]
    if not earlier:
        return FindingWrites(group.finding, left)
    times = [p.written for p in earlier if p.written is not None]
    when = min(times) if times else context.now
    note = next((found[w.value].reference for w in group.writes
                 if w.kind == Kind.FINDING_NOTE and w.value in found), None)
    device = task.resource["requester"]["reference"]
    resource = {key: value for key, value in task.resource.items()
                if key in ("resourceType", "meta", "identifier")}
    resource.update(task_resource(group.finding, replace(context, now=when), device, note=note))
    validate(resource)
    rebuilt = replace(task, resource=resource)
    return FindingWrites(group.finding,
                         tuple(rebuilt if write is task else write for write in left))


# ---------------------------------------------------------------- reading a Task back

@dataclass(frozen=True)
class Note:
    author: str | None
    time: str | None
    text: str


@dataclass(frozen=True)
class TaskView:
    """A consent-gap Task as the worklist shows it (read tolerantly: a missing field is None)."""

    id: str
    version: str
    status: str
    business: str | None
    priority: str | None
    patient: str | None
    focus: str | None
    authored: datetime | None
    deadline: datetime | None
    notes: tuple[Note, ...]
    outputs: tuple[tuple[str, str], ...]  # (code, Type/id)
    dates: tuple[tuple[str, str], ...] = ()  # (code, date): the notices' deadlines

    def date_of(self, code: str) -> str | None:
        return next((day for name, day in self.dates if name == code), None)

    @property
    def decision(self) -> str:
        """The finding's decision, from the priority the Task was written with."""
        return "unauthorized" if self.priority == "urgent" else "review"

    @property
    def open(self) -> bool:
        return self.status not in CLOSED


def _reference(value: Any) -> str | None:
    ref = value.get("reference") if isinstance(value, dict) else None
    return ref if isinstance(ref, str) and ref else None


def read_task(resource: dict[str, Any]) -> TaskView:
    """The Task's fields the worklist needs."""
    business = None
    for coding in ((resource.get("businessStatus") or {}).get("coding") or []):
        if isinstance(coding, dict) and coding.get("system") == DISPOSITION_SYSTEM:
            business = coding.get("code")
    notes = tuple(
        Note(_reference(note.get("authorReference")), note.get("time"), str(note.get("text")))
        for note in resource.get("note") or [] if isinstance(note, dict) and note.get("text"))
    outputs, dates = [], []
    for output in resource.get("output") or []:
        if not isinstance(output, dict):
            continue
        codes = [c.get("code") for c in ((output.get("type") or {}).get("coding") or [])
                 if isinstance(c, dict)]
        ref = _reference(output.get("valueReference"))
        if ref and codes:
            outputs.append((str(codes[0]), ref))
        if codes and isinstance(output.get("valueDate"), str):
            dates.append((str(codes[0]), output["valueDate"]))
    restriction = (resource.get("restriction") or {}).get("period") or {}
    return TaskView(
        id=str(resource.get("id") or ""),
        version=str((resource.get("meta") or {}).get("versionId") or ""),
        status=str(resource.get("status") or ""),
        business=business,
        priority=resource.get("priority"),
        patient=_reference(resource.get("for")),
        focus=_reference(resource.get("focus")),
        authored=parse_instant(resource.get("authoredOn")),
        deadline=parse_instant(restriction.get("end")),
        notes=notes,
        outputs=tuple(outputs),
        dates=tuple(dates),
    )
