"""The scan's memory between runs: when the last good run started, which patients a run has
finished (so a killed scan resumes where it stopped), and each run's outcome for the operator.

SQLAlchemy Core on the database of CONSENT_GAP_DATABASE_URL (database.py; a SQLite file by
default, PostgreSQL tested alike). Two tables: ``scan_runs`` (one row per run, counters updated
after every batch) and ``scan_progress`` (one row per patient finished in a run). Nothing
clinical is stored: ids, counts and error messages that name resources, never names or notes.

The schema is versioned with Alembic (migrations/): opening the store upgrades the database to
the newest revision, so a new release migrates it on first start. A database made before
migrations existed (the tables, no version table) is stamped at the first revision, then
upgraded. Every failure of the database is a ``database.DatabaseUnavailable`` naming the
setting and the file or server.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection

from consent_gap.database import database_errors, make_engine

RUNNING, OK, ERRORS, FAILED = "running", "ok", "errors", "failed"
MAX_ERRORS_KEPT = 50
log = logging.getLogger(__name__)
# Alembic narrates every open at INFO ("Context impl SQLiteImpl", its plugins); the one line
# an operator needs, the upgrade itself, is logged by migrate() below.
logging.getLogger("alembic").setLevel(logging.WARNING)

#: Alembic's table of the schema's revision (its own name: the database may be shared).
VERSION_TABLE = "consent_gap_schema_version"
MIGRATIONS = Path(__file__).with_name("migrations")

metadata = MetaData()

runs = Table(
    "scan_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fhir_base", String(500), nullable=False, index=True),
    Column("selection", String(64), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("since", String(40)),
    Column("jurisdiction", String(10)),
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("status", String(20), nullable=False),
    Column("started", String(40), nullable=False),
    Column("finished", String(40)),
    Column("patients_total", Integer, nullable=False, default=0),
    Column("patients_done", Integer, nullable=False, default=0),
    Column("disclosures", Integer, nullable=False, default=0),
    Column("decisions", Text, nullable=False, default="{}"),
    Column("written", Text, nullable=False, default="{}"),
    Column("error_count", Integer, nullable=False, default=0),
    Column("errors", Text, nullable=False, default="[]"),
    Column("host", String(200)),
    Column("pid", Integer),
    Index("ix_scan_runs_base_selection_status", "fhir_base", "selection", "status"),
)

progress = Table(
    "scan_progress",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("patient", String(200), primary_key=True),
)

#: FHIR Subscription notifications waiting for the scheduler's re-check (scan/notifications.py):
#: which resource changed, once per resource.
notify_queue = Table(
    "notify_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("received", String(40), nullable=False),
    Column("attempts", Integer, nullable=False),
    UniqueConstraint("resource_type", "resource_id", name="uq_notify_queue_resource"),
)

#: The export transactionTime of each successful bulk scan: the next one's _since (scan/bulk.py).
bulk_runs = Table(
    "bulk_runs",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("fhir_base", String(500), nullable=False, index=True),
    Column("grp", String(200), nullable=False),
    Column("transaction_time", String(40), nullable=False),
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class RunRecord:
    """One run as stored; counters are cumulative across resumptions of the same run."""

    id: int
    fhir_base: str
    selection: str
    mode: str
    since: str | None
    jurisdiction: str | None
    dry_run: bool
    status: str
    started: str
    finished: str | None
    patients_total: int = 0
    patients_done: int = 0
    disclosures: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    error_count: int = 0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.id,
            "fhir_base": self.fhir_base,
            "mode": self.mode,
            "since": self.since,
            "jurisdiction": self.jurisdiction,
            "dry_run": self.dry_run,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "patients": {"total": self.patients_total, "done": self.patients_done},
            "disclosures": self.disclosures,
            "decisions": self.decisions,
            "written": self.written,
            "errors": {"count": self.error_count, "messages": self.errors},
        }


def _record(row: Any) -> RunRecord:
    data = dict(row._mapping)
    data.pop("host", None)
    data.pop("pid", None)
    for key in ("decisions", "written", "errors"):
        data[key] = json.loads(data[key] or ("[]" if key == "errors" else "{}"))
    return RunRecord(**data)


def _add(total: Mapping[str, int], more: Mapping[str, int]) -> dict[str, int]:
    merged = dict(total)
    for key, value in more.items():
        merged[key] = merged.get(key, 0) + value
    return {key: merged[key] for key in sorted(merged)}


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision of the migrations shipped with this release."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def migrate(connection: Connection) -> None:
    """Bring the schema to the newest revision (nothing to do when it is there already)."""
    if current_revision(connection) == head_revision():
        return
    from alembic import command

    if connection.dialect.name == "postgresql":
        # Two processes starting together (the app's workers, the scheduler) migrate in turn.
        connection.execute(text("SELECT pg_advisory_xact_lock(7245019)"))
        if current_revision(connection) == head_revision():
            return
    config = _alembic_config(connection)
    tables = set(inspect(connection).get_table_names())
    if current_revision(connection) is None and "scan_runs" in tables:
        command.stamp(config, "0001")  # made by a release before migrations: adopt it
    before = current_revision(connection)
    command.upgrade(config, "head")
    log.info("checkpoint schema upgraded from %s to %s", before or "nothing", head_revision())


T = TypeVar("T")


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Database failures inside a store method become DatabaseUnavailable (database.py)."""

    @functools.wraps(method)
    def wrapper(self: CheckpointStore, *args: Any, **kwargs: Any) -> T:
        with database_errors(self.url):
            return method(self, *args, **kwargs)

    return wrapper


class CheckpointStore:
    """Runs and progress in a SQL database; one instance per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        with database_errors(url), self.engine.begin() as connection:
            migrate(connection)

    def close(self) -> None:
        self.engine.dispose()

    # -- reading

    @_guarded
    def last_success(self, fhir_base: str) -> str | None:
        """Start time of the last run that covered every patient it selected without error
        (not a dry run, not an explicit patient list): the incremental scan starts there."""
        query = (
            select(runs.c.started)
            .where(runs.c.fhir_base == fhir_base, runs.c.status == OK)
            .where(runs.c.dry_run.is_(False), runs.c.mode.in_(("full", "incremental")))
            .order_by(runs.c.started.desc(), runs.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()

    @_guarded
    def resumable(self, fhir_base: str, selection: str) -> RunRecord | None:
        """The latest run of the same selection that stopped before covering its patients
        (killed, so still ``running``, or ``failed``): the next run resumes it."""
        query = (
            select(runs)
            .where(runs.c.fhir_base == fhir_base, runs.c.selection == selection)
            .where(runs.c.status.in_((RUNNING, FAILED)), runs.c.dry_run.is_(False))
            .order_by(runs.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return _record(row) if row else None

    @_guarded
    def done_patients(self, run_id: int) -> set[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(progress.c.patient).where(progress.c.run_id == run_id))
            return {row.patient for row in rows}

    @_guarded
    def run(self, run_id: int) -> RunRecord:
        with self.engine.connect() as connection:
            row = connection.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise KeyError(run_id)
        return _record(row)

    @_guarded
    def last_runs(self, fhir_base: str | None = None, limit: int = 1) -> list[RunRecord]:
        query = select(runs).order_by(runs.c.id.desc()).limit(limit)
        if fhir_base:
            query = query.where(runs.c.fhir_base == fhir_base)
        with self.engine.connect() as connection:
            return [_record(row) for row in connection.execute(query)]

    # -- writing

    @_guarded
    def start(
        self,
        fhir_base: str,
        *,
        selection: str,
        mode: str,
        since: str | None,
        jurisdiction: str | None,
        dry_run: bool,
        started: str | None = None,
    ) -> RunRecord:
        values = {
            "fhir_base": fhir_base,
            "selection": selection,
            "mode": mode,
            "since": since,
            "jurisdiction": jurisdiction,
            "dry_run": dry_run,
            "status": RUNNING,
            "started": started or _now(),
            "decisions": "{}",
            "written": "{}",
            "errors": "[]",
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        with self.engine.begin() as connection:
            run_id = connection.execute(insert(runs).values(**values)).inserted_primary_key[0]
        return self.run(run_id)

    @_guarded
    def reopen(self, run_id: int) -> RunRecord:
        """Mark a stopped run as running again (this process resumes it)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(status=RUNNING, finished=None, host=socket.gethostname(), pid=os.getpid())
            )
        return self.run(run_id)

    @_guarded
    def set_total(self, run_id: int, patients_total: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(runs).where(runs.c.id == run_id).values(patients_total=patients_total)
            )

    @_guarded
    def record_batch(
        self,
        run_id: int,
        *,
        patients: Iterable[str],
        disclosures: int = 0,
        decisions: Mapping[str, int] | None = None,
        written: Mapping[str, int] | None = None,
        errors: Iterable[str] = (),
    ) -> None:
        """After a batch: mark its patients done and add its counts, in one transaction, so a
        crash leaves either the whole batch recorded or none of it."""
        errors = list(errors)
        with self.engine.begin() as connection:
            current = connection.execute(select(runs).where(runs.c.id == run_id)).first()
            if current is None:
                raise KeyError(run_id)
            record = _record(current)
            done = set(patients)
            already = {
                row.patient
                for row in connection.execute(
                    select(progress.c.patient).where(progress.c.run_id == run_id)
                )
                if row.patient in done
            }
            new = sorted(done - already)
            if new:
                connection.execute(
                    insert(progress), [{"run_id": run_id, "patient": p} for p in new]
                )
            kept = (record.errors + errors)[:MAX_ERRORS_KEPT]
            connection.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    patients_done=record.patients_done + len(new),
                    disclosures=record.disclosures + disclosures,
                    decisions=json.dumps(_add(record.decisions, decisions or {})),
                    written=json.dumps(_add(record.written, written or {})),
                    error_count=record.error_count + len(errors),
                    errors=json.dumps(kept),
                )
            )

    @_guarded
    def finish(self, run_id: int, status: str, errors: Iterable[str] = ()) -> RunRecord:
        """Close a run: ``ok`` (all patients, no error), ``errors`` (all patients, some
        errors: the next incremental run starts from the last ``ok`` one, so it retries) or
        ``failed`` (stopped early: the next run of the same selection resumes it)."""
        if errors:
            self.record_batch(run_id, patients=(), errors=errors)
        with self.engine.begin() as connection:
            connection.execute(
                update(runs).where(runs.c.id == run_id).values(status=status, finished=_now())
            )
            if status in (OK, ERRORS):
                # A finished run is never resumed: its per-patient rows would only grow the
                # database night after night (its counters stay in scan_runs).
                connection.execute(delete(progress).where(progress.c.run_id == run_id))
        return self.run(run_id)
