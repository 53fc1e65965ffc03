"""Checkpoint store: watermark, resumable progress, cumulative counters, operator's view."""

from pathlib import Path

import pytest
from consent_gap.checkpoint import (
    ERRORS,
    FAILED,
    MAX_ERRORS_KEPT,
    OK,
    RUNNING,
    CheckpointStore,
)

BASE = "http://fhir.example/fhir"


@pytest.fixture
def store(tmp_path: Path):
    store = CheckpointStore(f"sqlite:///{tmp_path / 'state' / 'cp.db'}")
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


def test_two_store_instances_share_the_file(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    writer, reader = CheckpointStore(url), CheckpointStore(url)
    run = writer.start(BASE, selection="s", mode="full", since=None, jurisdiction=None,
                       dry_run=False)
    writer.record_batch(run.id, patients=["p1"])
    assert reader.run(run.id).patients_done == 1
    writer.close()
    reader.close()
