"""The ``database_url`` fixture: each database test runs on SQLite and on PostgreSQL.

PostgreSQL is the throwaway server scripts/test starts (scripts/postgres), named by
``CONSENT_GAP_TEST_POSTGRES_URL``; every test gets a schema of its own (its connections' search
path), dropped afterwards: as good as a database of its own, and ten times quicker to make.
Without that variable the PostgreSQL cases are skipped, unless
``CONSENT_GAP_TEST_POSTGRES_REQUIRED=1`` (scripts/test sets it) makes them fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL = "CONSENT_GAP_TEST_POSTGRES_URL"
REQUIRED = "CONSENT_GAP_TEST_POSTGRES_REQUIRED"


def _server_url() -> str:
    url = os.environ.get(POSTGRES_URL)
    if not url:
        message = f"{POSTGRES_URL} is not set (scripts/test starts PostgreSQL and sets it)"
        if os.environ.get(REQUIRED) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


def _admin(server: str):
    from sqlalchemy import create_engine

    return create_engine(server, isolation_level="AUTOCOMMIT")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema of this test, as the URL's search path."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    server = _server_url()
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = _admin(server)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    url = make_url(server).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLAlchemy URL of an empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'consent-gap.db'}"
    return request.getfixturevalue("postgres_url")
