"""The one SQL database the scan, the scheduler and the app share (CONSENT_GAP_DATABASE_URL):
engines made the same way for every user of it, and its failures in the operator's words.

Any SQLAlchemy URL works; SQLite (a file, the default) and PostgreSQL (``postgresql://``, with
the ``postgresql`` extra installed) are the ones tested. A failure becomes a
:class:`DatabaseUnavailable` that names the setting and the file or server, says what is
wrong in one line, and tells whether trying again later may help (``transient``: a lock, a
server restarting) or a person must fix something first (corrupt, read-only, unreachable
host, wrong password, missing driver).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

#: The variables an operator sets to choose the database (named in every error).
SETTING = "CONSENT_GAP_DATABASE_URL"
OLD_SETTING = "CONSENT_GAP_CHECKPOINT_URL"
#: Seconds SQLite waits for another process's lock before it reports "locked".
SQLITE_BUSY_SECONDS = 30


class DatabaseUnavailable(RuntimeError):
    """The database cannot be used now. ``transient``: retrying later may work (exit 1);
    otherwise a setting, file or server must be fixed first (exit 2)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def parse_url(text: str) -> URL:
    """The SQLAlchemy URL of ``text``; ValueError in words when it is none."""
    try:
        return make_url(text)
    except ArgumentError:
        raise ValueError("must be a SQLAlchemy URL such as sqlite:////var/lib/consent-gap/"
                         "consent-gap.db or postgresql://user@host/dbname") from None


def describe_url(url: str | URL) -> str:
    """Where the database is, for messages: the file of SQLite, else host/database (never the
    password)."""
    parsed = url if isinstance(url, URL) else make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"file {parsed.database}" if parsed.database not in (None, "", ":memory:") \
            else "an in-memory SQLite database"
    host = parsed.host or "localhost"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.get_backend_name()} database {parsed.database or ''} on {host}{port}"


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``: SQLite's folder created, SQLite waiting for locks instead of
    failing at once (the scheduler, a manual scan and the app's workers share the file), WAL
    so readers and a writer overlap, and PostgreSQL connections checked before use (a server
    restart between two nightly runs is not an error)."""
    try:
        parsed = parse_url(url)
    except ValueError as error:
        raise DatabaseUnavailable(f"{SETTING}: {error}", transient=False) from None
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and parsed.database not in (None, "", ":memory:"):
        try:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseUnavailable(
                f"{_where(parsed)}: cannot create its folder ({error.strerror})",
                transient=False) from None
    if not sqlite:
        options.setdefault("pool_pre_ping", True)
    with database_errors(url):
        engine = create_engine(parsed, **options)
    if sqlite:
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")
            # A read-only or damaged file refuses WAL; its first real statement says why.
            with suppress(sqlite3.Error):
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

    return engine


def _where(url: URL) -> str:
    return f"the database ({SETTING} or {OLD_SETTING}) at {describe_url(url)}"


#: (pattern in the driver's message, what it means, transient?) first match wins.
_CAUSES: tuple[tuple[re.Pattern[str], str, bool], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), meaning, transient) for pattern, meaning, transient in (
        (r"database is locked|database table is locked",
         "is locked by another process; try again when it has finished", True),
        (r"file is not a database|disk image is malformed|database corrupt",
         "is corrupt (not a readable SQLite database); restore it from a backup or move it "
         "aside to start afresh", False),
        (r"readonly database|read-only|read only",
         "is read-only for this user; make the file and its folder writable", False),
        (r"unable to open database file",
         "cannot be opened; check that its folder exists and is writable by this user", False),
        (r"disk I/O error|database or disk is full|no space left",
         "cannot be written (disk full or failing)", False),
        (r"password authentication failed|authentication failed|no password supplied|"
         r"role .* does not exist|no pg_hba.conf entry",
         "refused the login; check the user and password in the URL", False),
        (r'database ".*" does not exist',
         "does not exist on the server; create it first", False),
        (r"could not translate host name|name or service not known|nodename nor servname",
         "names a host that cannot be found", False),
        (r"too many connections|the database system is (starting up|shutting down|in recovery)|"
         r"terminating connection|server closed the connection|connection refused|"
         r"timeout expired|timed out|could not connect|connection failed|"
         r"deadlock detected|could not serialize|lock timeout|canceling statement",
         "cannot be reached or is busy right now; try again later", True),
    )
)


def explain(error: BaseException, url: str | URL) -> DatabaseUnavailable:
    """The DatabaseUnavailable of a driver or SQLAlchemy error, for the database at ``url``."""
    parsed = url if isinstance(url, URL) else make_url(url)
    where = _where(parsed)
    if isinstance(error, NoSuchModuleError | ModuleNotFoundError | ImportError):
        extra = ""
        if (parsed.get_backend_name(), parsed.get_driver_name()) == ("postgresql", "psycopg"):
            extra = " (pip install 'consent-gap[postgresql]')"
        return DatabaseUnavailable(f"{where}: its driver is not installed{extra}",
                                   transient=False)
    text = str(getattr(error, "orig", None) or error)
    for pattern, meaning, transient in _CAUSES:
        if pattern.search(text):
            return DatabaseUnavailable(f"{where} {meaning}", transient=transient)
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return DatabaseUnavailable(f"{where} failed: {first[:200]}", transient=False)


@contextmanager
def database_errors(url: str | URL) -> Iterator[None]:
    """Turn what SQLAlchemy or the driver raises inside the block into DatabaseUnavailable."""
    try:
        yield
    except DatabaseUnavailable:
        raise
    except (DBAPIError, SQLAlchemyError, ModuleNotFoundError) as error:
        raise explain(error, url) from None
