"""The database's failures in the operator's words: one line naming the setting and the file
or server, exit 1 when trying again later may work (locked, unreachable), 2 when a person must
fix something first (corrupt, read-only, wrong URL, missing driver); never a traceback."""

from __future__ import annotations

import sqlite3

import pytest
from consent_gap import database
from consent_gap.checkpoint import CheckpointStore
from consent_gap.cli import main
from consent_gap.database import DatabaseUnavailable


def scan_status(capsys, monkeypatch, url: str) -> tuple[int, str]:
    monkeypatch.setenv("CONSENT_GAP_DATABASE_URL", url)
    code = main(["scan", "--status"])
    err = capsys.readouterr().err.strip()
    return code, err


def _one_line_naming(err: str, *words: str) -> None:
    assert "\n" not in err and "Traceback" not in err
    assert "CONSENT_GAP_DATABASE_URL" in err and "CONSENT_GAP_CHECKPOINT_URL" in err
    for word in words:
        assert word in err


def test_a_corrupt_file_is_named_and_exits_2(tmp_path, capsys, monkeypatch):
    path = tmp_path / "consent-gap.db"
    path.write_bytes(b"this is no SQLite database, whatever its name says " * 100)
    code, err = scan_status(capsys, monkeypatch, f"sqlite:///{path}")
    assert code == 2
    _one_line_naming(err, str(path), "corrupt")


def test_a_locked_database_is_transient_and_exits_1(tmp_path, capsys, monkeypatch):
    path = tmp_path / "consent-gap.db"
    CheckpointStore(f"sqlite:///{path}").close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")  # readers wait for a writer, as on NFS
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(database, "SQLITE_BUSY_SECONDS", 0.2)
    try:
        code, err = scan_status(capsys, monkeypatch, f"sqlite:///{path}")
    finally:
        holder.rollback()
        holder.close()
    assert code == 1
    _one_line_naming(err, str(path), "locked", "try again")


def test_a_read_only_database_is_named_and_exits_2(tmp_path):
    path = tmp_path / "consent-gap.db"
    CheckpointStore(f"sqlite:///{path}").close()
    # chmod does not stop root, so the file is opened read-only the way SQLite can be told to.
    store = CheckpointStore(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert store.last_runs() == []  # reading works
    with pytest.raises(DatabaseUnavailable) as caught:
        store.start("http://fhir.test/fhir", selection="s", mode="full", since=None,
                    jurisdiction=None, dry_run=False)
    store.close()
    assert not caught.value.transient
    assert "read-only" in str(caught.value) and str(path) in str(caught.value)


def test_a_folder_that_cannot_be_made_is_named(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    code, err = scan_status(capsys, monkeypatch, f"sqlite:///{blocker / 'consent-gap.db'}")
    assert code == 2
    _one_line_naming(err, str(blocker), "cannot create its folder")


def test_an_unreachable_server_is_transient_and_names_the_host(capsys, monkeypatch):
    url = "postgresql+psycopg://scan:s3cret@127.0.0.1:9/consent?connect_timeout=3"
    code, err = scan_status(capsys, monkeypatch, url)
    assert code == 1
    _one_line_naming(err, "127.0.0.1:9", "cannot be reached")
    assert "s3cret" not in err


def test_a_missing_driver_says_what_to_install(capsys, monkeypatch):
    code, err = scan_status(capsys, monkeypatch, "mysql://scan@db.example/consent")
    assert code == 2
    _one_line_naming(err, "db.example", "driver is not installed")


def test_the_postgresql_extra_is_named_when_psycopg_is_missing(monkeypatch):
    error = database.explain(ModuleNotFoundError("No module named 'psycopg'"),
                             "postgresql://scan@db.example/consent")
    assert "pip install 'consent-gap[postgresql]'" in str(error)
    assert not error.transient


@pytest.mark.parametrize(("driver_message", "transient"), [
    ("database is locked", True),
    ('connection failed: FATAL:  the database system is starting up', True),
    ("deadlock detected", True),
    ('FATAL:  password authentication failed for user "scan"', False),
    ('FATAL:  database "consent" does not exist', False),
    ("cannot execute INSERT in a read-only transaction", False),
    ("database disk image is malformed", False),
])
def test_causes_are_sorted_into_transient_and_not(driver_message, transient):
    error = database.explain(RuntimeError(driver_message), "postgresql://scan@db/consent")
    assert error.transient is transient
    assert "postgresql database consent on db" in str(error)


def test_a_bad_url_names_the_variable(capsys, monkeypatch):
    code, err = scan_status(capsys, monkeypatch, "::nonsense::")
    assert code == 2
    assert "CONSENT_GAP_DATABASE_URL: must be a SQLAlchemy URL" in err


def test_describe_url_never_shows_a_password():
    assert "s3cret" not in database.describe_url("postgresql://scan:s3cret@db:5433/consent")
    assert database.describe_url("sqlite:////var/lib/cg/consent-gap.db") == \
        "file /var/lib/cg/consent-gap.db"
