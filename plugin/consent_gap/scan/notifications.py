"""Re-checks on FHIR Subscription notifications: the durable queue and its drain.

The web app's ``/fhir-notify`` (web/notify.py) only records *which resource* the server says
changed, as ``(type, id)`` in the ``notify_queue`` table of the checkpoint database, and
answers at once: a web worker never fetches a chart or runs a scan. The scheduler's process
(scheduler.py) drains the table every ``CONSENT_GAP_NOTIFY_INTERVAL`` seconds:

1. it waits for a burst to settle (no new row for `QUIET`, or the oldest row waiting `MAX_WAIT`),
   so fifty notifications written in one transaction become one re-check;
2. it finds the patient of each queued resource *on the FHIR server* (a search by ``_id`` with
   the same ``_include`` plan as the incremental selector, fetch_plan.py): nothing in the
   notification's body is believed, so a forged or stale payload can at worst cause a re-check
   of a patient the server itself names;
3. it scans those patients once each (``run_scan`` with ``--patient``), then deletes the rows it
   took. A failed scan leaves them for the next drain (`MAX_ATTEMPTS`, then they are dropped
   with a log line: the nightly incremental scan still covers the change).

A notification that names no resource (a rest-hook without payload, or an empty POST) queues
``("*", "*")``: the drain then runs the incremental scan (what changed since the last good run).
The queue holds resource ids and times only, never names or content.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from consent_gap import fetch_plan
from consent_gap.checkpoint import OK, migrate, notify_queue
from consent_gap.database import database_errors, make_engine
from consent_gap.fhir.search import Search, chunks, run

log = logging.getLogger("consent_gap.notify")

#: The resource types whose changes the app subscribes to (commands/subscribe.py), and whose
#: patient the drain can find.
WATCHED = ("AuditEvent", "Communication", "Consent", "Provenance")
ANY = "*"
#: A burst is over when no notification came for this long...
QUIET = timedelta(seconds=2)
#: ...or when its first notification has waited this long (a steady trickle still drains).
MAX_WAIT = timedelta(seconds=15)
MAX_ATTEMPTS = 5
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

queue = notify_queue


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def accepted(resource_type: str, resource_id: str) -> bool:
    """True for a resource the drain can look up: a watched type and a FHIR id (or the
    ``*``/``*`` of a notification that names nothing)."""
    if (resource_type, resource_id) == (ANY, ANY):
        return True
    return resource_type in WATCHED and bool(_ID.match(resource_id))


@dataclass(frozen=True)
class Queued:
    row: int
    resource_type: str
    resource_id: str
    received: datetime
    attempts: int


class NotifyQueue:
    """The durable queue in the checkpoint database (any SQLAlchemy URL)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        with database_errors(url), self.engine.begin() as connection:
            migrate(connection)  # the table is migrations/versions/0003

    def close(self) -> None:
        self.engine.dispose()

    def put(self, resource_type: str, resource_id: str, *, now: datetime | None = None) -> bool:
        """Queue a change; False when that resource is already waiting (a burst of updates
        to one resource is one row)."""
        if not accepted(resource_type, resource_id):
            raise ValueError("not a watched resource")
        values = {"resource_type": resource_type, "resource_id": resource_id,
                  "received": _stamp(now or _now()), "attempts": 0}
        try:
            with self.engine.begin() as connection:
                connection.execute(queue.insert().values(**values))
        except IntegrityError:
            return False
        return True

    def pending(self) -> list[Queued]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(queue).order_by(queue.c.id)).all()
        return [Queued(r.id, r.resource_type, r.resource_id,
                       datetime.fromisoformat(r.received), r.attempts) for r in rows]

    def remove(self, rows: Iterable[int]) -> None:
        ids = list(rows)
        if ids:
            with self.engine.begin() as connection:
                connection.execute(delete(queue).where(queue.c.id.in_(ids)))

    def failed(self, rows: Sequence[Queued]) -> None:
        """Count a failed attempt; drop the rows that reached MAX_ATTEMPTS."""
        dropped = [q.row for q in rows if q.attempts + 1 >= MAX_ATTEMPTS]
        with self.engine.begin() as connection:
            for q in rows:
                if q.row not in dropped:
                    connection.execute(queue.update().where(queue.c.id == q.row)
                                       .values(attempts=q.attempts + 1))
        if dropped:
            log.error("%d notification(s) dropped after %d failed re-checks; the nightly scan "
                      "covers them", len(dropped), MAX_ATTEMPTS)
            self.remove(dropped)


def settled(rows: Sequence[Queued], now: datetime) -> bool:
    """A burst is ready: quiet for QUIET, or its oldest row has waited MAX_WAIT."""
    if not rows:
        return False
    newest = max(q.received for q in rows)
    oldest = min(q.received for q in rows)
    return now - newest >= QUIET or now - oldest >= MAX_WAIT


def patient_searches(resources: Iterable[tuple[str, str]]) -> list[Search]:
    """Searches whose `Patient` results are the patients of these resources: the incremental
    selector's searches (fetch_plan.changed_patient_searches, the one place that knows how a
    disclosure, a Consent, a signature or a notice leads to its patient) with `_id` in place
    of `_lastUpdated`. The notification's content plays no part."""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in resources:
        by_type.setdefault(rtype, []).append(rid)
    out: list[Search] = []
    for search in fetch_plan.changed_patient_searches("1970-01-01T00:00:00Z"):
        ids = sorted(set(by_type.get(search.type, ())))
        # Our own alerts and notes (tagged) lead to no patient: a re-check never loops.
        kept = tuple(p for p in search.params if p[0] != "_lastUpdated")
        out += [Search(search.type, (("_id", ",".join(chunk)), *kept), tolerant=True)
                for chunk in chunks(ids)]
    return out


def patients_of(client: Any, resources: Iterable[tuple[str, str]]) -> list[str]:
    """The patients the server names for these resources (none for a resource that is gone
    or concerns no patient), sorted."""
    ids: set[str] = set()
    for search in patient_searches(resources):
        for resource in run(client, search):
            if resource.get("resourceType") == "Patient" and resource.get("id"):
                ids.add(str(resource["id"]))
    return sorted(ids)


@dataclass
class DrainResult:
    """What one drain did (logged; the tests read it)."""

    notifications: int = 0
    patients: list[str] = field(default_factory=list)
    incremental: bool = False
    status: str | None = None
    scans: int = 0


ScanRunner = Callable[..., Any]


def drain(notify: NotifyQueue, client: Any, run: ScanRunner, *,
          now: datetime | None = None, force: bool = False) -> DrainResult:
    """One drain (see the module doc). `run(patients=[...])` or `run()` (incremental) runs a
    scan and returns its summary; `force` skips the wait for the burst to settle."""
    rows = notify.pending()
    result = DrainResult(notifications=len(rows))
    if not rows or not (force or settled(rows, now or _now())):
        result.notifications = 0
        return result
    result.incremental = any(q.resource_type == ANY for q in rows)
    try:
        if result.incremental:
            summary = run()
        else:
            result.patients = patients_of(
                client, [(q.resource_type, q.resource_id) for q in rows])
            summary = run(patients=result.patients) if result.patients else None
    except Exception:
        log.exception("re-check of %d notification(s) failed; retried at the next drain",
                      len(rows))
        notify.failed(rows)
        result.status = "failed"
        return result
    result.scans = 0 if summary is None else 1
    result.status = OK if summary is None else summary.status
    if summary is not None and summary.status == "failed":
        notify.failed(rows)
    else:
        notify.remove(q.row for q in rows)
    log.info("notifications: %d drained, %s, scan %s", len(rows),
             "incremental scan" if result.incremental else f"{len(result.patients)} patient(s)",
             result.status)
    return result
