"""Checkpoint store: watermark, resumable progress, cumulative counters, operator's view,
on SQLite and on PostgreSQL (the `database_url` fixture, tests/support/databases.py); and the
schema's migrations."""

from pathlib import Path

import pytest
from consent_gap.checkpoint import (
    ERRORS,
    FAILED,
    MAX_ERRORS_KEPT,
    OK,
    RUNNING,
    VERSION_TABLE,
    CheckpointStore,
    current_revision,
    head_revision,
    metadata,
)
from sqlalchemy import create_engine, inspect, text

BASE = "http://fhir.example/fhir"


@pytest.fixture
def store(database_url: str):
    store = CheckpointStore(database_url)
    yield store
    store.close()


def start(store, **changes):
    values = {"selection": "sel-1", "mode": "incremental", "since": None,
              "jurisdiction": "US-CA", "dry_run": False}
    values.update(changes)
    return store.start(BASE, **values)


def test_creates_the_database_folder_and_tables(tmp_path: Path):
    store = CheckpointStore(f"sqlite:///{tmp_path / 'a' / 'b' / 'cp.db'}")
    assert (tmp_path / "a" / "b" / "cp.db").exists()
    assert store.last_runs() == []
    store.close()


def test_last_success_is_the_latest_ok_full_or_incremental_run(store):
    assert store.last_success(BASE) is None
    first = start(store, started="2026-11-01T02:00:00Z")
    store.finish(first.id, OK)
    assert store.last_success(BASE) == "2026-11-01T02:00:00Z"
    with_errors = start(store, started="2026-11-02T02:00:00Z")
    store.finish(with_errors.id, ERRORS, ["Communication rejected"])
    dry = start(store, started="2026-11-03T02:00:00Z", dry_run=True)
    store.finish(dry.id, OK)
    explicit = start(store, started="2026-11-04T02:00:00Z", mode="patients")
    store.finish(explicit.id, OK)
    other_server = store.start("http://other/fhir", selection="s", mode="full", since=None,
                               jurisdiction=None, dry_run=False, started="2026-11-05T02:00:00Z")
    store.finish(other_server.id, OK)
    assert store.last_success(BASE) == "2026-11-01T02:00:00Z"
    full = start(store, started="2026-11-06T02:00:00Z", mode="full")
    store.finish(full.id, OK)
    assert store.last_success(BASE) == "2026-11-06T02:00:00Z"


def test_progress_and_counters_accumulate_per_batch(store):
    run = start(store)
    store.set_total(run.id, 4)
    store.record_batch(run.id, patients=["p1", "p2"], disclosures=3,
                       decisions={"review": 1, "permitted": 2}, written={"Communication": 2})
    store.record_batch(run.id, patients=["p2", "p3"], disclosures=1,
                       decisions={"review": 1}, written={"Provenance": 1},
                       errors=["Communication for AuditEvent/a1: 422 rejected"])
    record = store.run(run.id)
    assert store.done_patients(run.id) == {"p1", "p2", "p3"}
    assert record.patients_done == 3
    assert record.patients_total == 4
    assert record.disclosures == 4
    assert record.decisions == {"permitted": 2, "review": 2}
    assert record.written == {"Communication": 2, "Provenance": 1}
    assert record.error_count == 1
    assert record.status == RUNNING


def test_a_killed_or_failed_run_is_resumable_by_the_same_selection_only(store):
    killed = start(store)
    store.record_batch(killed.id, patients=["p1"])
    assert store.resumable(BASE, "sel-1").id == killed.id
    assert store.resumable(BASE, "sel-2") is None
    store.finish(killed.id, FAILED, ["ConnectionError"])
    again = store.resumable(BASE, "sel-1")
    assert again.id == killed.id and again.status == FAILED
    reopened = store.reopen(killed.id)
    assert reopened.status == RUNNING and reopened.finished is None
    assert store.done_patients(killed.id) == {"p1"}
    store.finish(killed.id, OK)
    assert store.resumable(BASE, "sel-1") is None
    assert store.done_patients(killed.id) == set()  # pruned once finished
    assert store.run(killed.id).patients_done == 1


def test_dry_runs_are_never_resumed(store):
    start(store, dry_run=True)
    assert store.resumable(BASE, "sel-1") is None


def test_errors_are_capped_and_the_outcome_is_readable(store):
    run = start(store)
    store.record_batch(run.id, patients=[], errors=[f"e{n}" for n in range(MAX_ERRORS_KEPT + 5)])
    record = store.finish(run.id, ERRORS)
    assert record.error_count == MAX_ERRORS_KEPT + 5
    assert len(record.errors) == MAX_ERRORS_KEPT
    shown = store.last_runs(BASE)[0].to_json()
    assert shown["status"] == ERRORS
    assert shown["finished"] is not None
    assert shown["errors"]["count"] == MAX_ERRORS_KEPT + 5


def test_two_store_instances_share_the_database(database_url: str):
    url = database_url
    writer, reader = CheckpointStore(url), CheckpointStore(url)
    run = writer.start(BASE, selection="s", mode="full", since=None, jurisdiction=None,
                       dry_run=False)
    writer.record_batch(run.id, patients=["p1"])
    assert reader.run(run.id).patients_done == 1
    writer.close()
    reader.close()


# ---- migrations (Alembic, migrations/)

#: The schema as releases before migrations created it (metadata.create_all of that release).
PRE_MIGRATION_SCHEMA = (
    "CREATE TABLE scan_runs (id INTEGER NOT NULL {serial}, fhir_base VARCHAR(500) NOT NULL, "
    "selection VARCHAR(64) NOT NULL, mode VARCHAR(20) NOT NULL, since VARCHAR(40), "
    "jurisdiction VARCHAR(10), dry_run BOOLEAN NOT NULL, status VARCHAR(20) NOT NULL, "
    "started VARCHAR(40) NOT NULL, finished VARCHAR(40), patients_total INTEGER NOT NULL, "
    "patients_done INTEGER NOT NULL, disclosures INTEGER NOT NULL, decisions TEXT NOT NULL, "
    "written TEXT NOT NULL, error_count INTEGER NOT NULL, errors TEXT NOT NULL, "
    "host VARCHAR(200), pid INTEGER, PRIMARY KEY (id))",
    "CREATE INDEX ix_scan_runs_fhir_base ON scan_runs (fhir_base)",
    "CREATE TABLE scan_progress (run_id INTEGER NOT NULL, patient VARCHAR(200) NOT NULL, "
    "PRIMARY KEY (run_id, patient))",
    "INSERT INTO scan_runs (fhir_base, selection, mode, dry_run, status, started, finished, "
    "patients_total, patients_done, disclosures, decisions, written, error_count, errors) "
    "VALUES ('http://fhir.example/fhir', 'sel-1', 'full', false, 'ok', '2026-10-01T02:00:00Z', "
    "'2026-10-01T02:10:00Z', 3, 3, 2, '{{}}', '{{\"Communication\": 1}}', 0, '[]')",
    "INSERT INTO scan_runs (fhir_base, selection, mode, dry_run, status, started, "
    "patients_total, patients_done, disclosures, decisions, written, error_count, errors) "
    "VALUES ('http://fhir.example/fhir', 'sel-1', 'incremental', false, 'running', "
    "'2026-10-02T02:00:00Z', 3, 1, 0, '{{}}', '{{}}', 0, '[]')",
    "INSERT INTO scan_progress (run_id, patient) VALUES (2, 'p1')",
)


def _make_old_database(url: str) -> None:
    engine = create_engine(url)
    serial = "" if engine.dialect.name == "sqlite" else "GENERATED BY DEFAULT AS IDENTITY"
    with engine.begin() as connection:
        for statement in PRE_MIGRATION_SCHEMA:
            connection.execute(text(statement.format(serial=serial)))
    engine.dispose()


def test_a_new_database_is_created_at_the_newest_revision(store):
    with store.engine.connect() as connection:
        assert current_revision(connection) == head_revision()
        tables = set(inspect(connection).get_table_names())
    assert {"scan_runs", "scan_progress", VERSION_TABLE} <= tables


def test_the_migrations_build_exactly_the_tables_the_code_uses(store):
    """A revision and checkpoint.py's tables may not drift apart."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_a_database_from_before_migrations_is_adopted_and_upgraded(database_url: str):
    if database_url.startswith("sqlite"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    _make_old_database(database_url)
    store = CheckpointStore(database_url)
    try:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
            indexes = {i["name"] for i in inspect(connection).get_indexes("scan_runs")}
        assert "ix_scan_runs_base_selection_status" in indexes
        # Its runs survive: the watermark, the run to resume and its finished patients.
        assert store.last_success(BASE) == "2026-10-01T02:00:00Z"
        assert store.last_runs(BASE, limit=2)[1].written == {"Communication": 1}
        resumed = store.resumable(BASE, "sel-1")
        assert resumed is not None and resumed.id == 2
        assert store.done_patients(2) == {"p1"}
        new = start(store)
        assert new.id == 3  # ids go on after the old ones
    finally:
        store.close()
    again = CheckpointStore(database_url)  # a second start finds nothing to do
    with again.engine.connect() as connection:
        assert current_revision(connection) == head_revision()
    again.close()
