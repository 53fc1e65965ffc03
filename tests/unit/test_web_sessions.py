"""Server-side sessions: the cookie is only an id, rows are sealed, tampering ends a session;
pending (not signed-in) sessions are short-lived and bounded. The SQL store runs on SQLite and
on PostgreSQL (the `database_url` fixture)."""

from __future__ import annotations

import time

import pytest
from consent_gap.web.sessions import (
    PENDING_TTL,
    MemoryStore,
    ServerSessionInterface,
    SqliteStore,
    SqlStore,
    _row_key,
    make_store,
)
from flask import Flask, session

SECRET_TOKEN = "access-token-that-must-not-leak"


def _app(store, secret="s3cret", ttl=60) -> Flask:
    app = Flask(__name__)
    app.config.update(SESSION_COOKIE_NAME="cg_session", SESSION_COOKIE_SECURE=True,
                      SESSION_COOKIE_SAMESITE="None")
    app.session_interface = ServerSessionInterface(store, secret, ttl)

    @app.get("/put")
    def put():
        session["token"] = SECRET_TOKEN
        session["launches"] = {"l1": {}}  # signed in: the full TTL
        return "ok"

    @app.get("/pending")
    def pending():
        session["pending"] = {"state": "x" * 40}  # between /launch and the EHR's answer
        return "ok"

    @app.get("/get")
    def get():
        return session.get("token", "none")

    @app.get("/rotate")
    def rotate():
        session.rotate()
        return "ok"

    @app.get("/clear")
    def clear():
        session.clear()
        return "ok"

    return app


def _cookie(response) -> str:
    header = response.headers["Set-Cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_store(request, tmp_path):
    """Each store: in memory, then SQL on SQLite and on PostgreSQL."""
    if request.param == "memory":
        yield MemoryStore(max_pending=20)
        return
    url = (f"sqlite:///{tmp_path / 'sessions.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    store = SqlStore(url, max_pending=20)
    yield store
    store.engine.dispose()


def test_cookie_is_only_an_id_and_the_row_is_sealed(any_store):
    store = any_store
    client = _app(store).test_client()
    response = client.get("/put")
    sid = _cookie(response)
    assert SECRET_TOKEN not in response.headers["Set-Cookie"]
    assert len(sid) >= 40
    blob = store.load(_row_key(sid))
    assert blob is not None and SECRET_TOKEN.encode() not in blob
    assert store.load(sid) is None  # rows are keyed by the id's hash, not the id
    assert client.get("/get").data.decode() == SECRET_TOKEN


def test_a_made_up_or_foreign_id_gets_an_empty_session():
    store = MemoryStore()
    client = _app(store).test_client()
    client.set_cookie("cg_session", "x" * 43)
    assert client.get("/get").data.decode() == "none"


def test_another_secret_cannot_open_the_row():
    store = MemoryStore()
    first = _app(store, secret="one").test_client()
    sid = _cookie(first.get("/put"))
    other = _app(store, secret="two").test_client()
    other.set_cookie("cg_session", sid)
    assert other.get("/get").data.decode() == "none"


def test_rotate_issues_a_new_id_and_forgets_the_old():
    store = MemoryStore()
    client = _app(store).test_client()
    old = _cookie(client.get("/put"))
    new = _cookie(client.get("/rotate"))
    assert new != old
    assert store.load(_row_key(old)) is None
    assert client.get("/get").data.decode() == SECRET_TOKEN


def test_clearing_deletes_the_row_and_the_cookie():
    store = MemoryStore()
    client = _app(store).test_client()
    sid = _cookie(client.get("/put"))
    response = client.get("/clear")
    assert store.load(_row_key(sid)) is None
    assert "cg_session=;" in response.headers["Set-Cookie"]


def test_rows_expire(any_store):
    store = any_store
    store.save("k", b"blob", time.time() - 1)
    assert store.load("k") is None
    store.save("k", b"blob", time.time() + 60)
    store.touch("k", time.time() - 1)
    assert store.load("k") is None


def test_sqlite_store_is_private_to_its_owner(tmp_path):
    path = tmp_path / "sessions.db"
    SqliteStore(path)
    assert (path.stat().st_mode & 0o077) == 0  # not readable by others


def test_the_sql_store_is_shared_between_instances(database_url):
    one, two = SqlStore(database_url), SqlStore(database_url)
    one.save("k", b"blob", time.time() + 60)
    assert two.load("k") == b"blob"
    one.save("k", b"blob2", time.time() + 60)  # a second save rewrites the one row
    assert two.load("k") == b"blob2" and len(two) == 1
    one.engine.dispose()
    two.engine.dispose()


def test_make_store_specs(tmp_path, database_url):
    assert isinstance(make_store("memory"), MemoryStore)
    store = make_store(f"sqlite:{tmp_path / 'x.db'}")
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "x.db"
    assert isinstance(make_store(database_url), SqlStore)


# ---- pending sessions: short-lived, one row per browser, bounded store-wide


def _expiry(store, sid: str) -> float:
    key = _row_key(sid)
    if isinstance(store, MemoryStore):
        return store._rows[key][1]
    from consent_gap.web.sessions import web_sessions
    from sqlalchemy import select

    with store.engine.connect() as connection:
        return connection.execute(select(web_sessions.c.expires_at)
                                  .where(web_sessions.c.key == key)).scalar()


def test_a_pending_session_lives_ten_minutes_a_signed_in_one_the_ttl(any_store):
    client = _app(any_store, ttl=3600).test_client()
    sid = _cookie(client.get("/pending"))
    assert _expiry(any_store, sid) <= time.time() + PENDING_TTL + 1
    client.get("/get")  # reading does not extend a pending session
    assert _expiry(any_store, sid) <= time.time() + PENDING_TTL + 1
    client.get("/put")  # signed in
    assert _expiry(any_store, sid) >= time.time() + 3600 - 5


def test_repeated_launches_of_one_browser_keep_one_row(any_store):
    client = _app(any_store).test_client()
    sid = _cookie(client.get("/pending"))
    for _ in range(30):
        client.get("/pending")
    assert len(any_store) == 1
    assert any_store.load(_row_key(sid)) is not None


def test_pending_sessions_are_bounded_and_the_oldest_go_first(any_store):
    app = _app(any_store)
    signed_in = app.test_client()
    kept = _cookie(signed_in.get("/put"))
    first = _cookie(app.test_client().get("/pending"))
    sids = [_cookie(app.test_client().get("/pending")) for _ in range(40)]  # 40 new browsers
    assert len(any_store) == 20 + 1  # the bound, plus the signed-in session
    assert any_store.load(_row_key(first)) is None  # the oldest pending went first
    assert any_store.load(_row_key(sids[-1])) is not None
    assert any_store.load(_row_key(kept)) is not None  # signed-in sessions are never evicted
    assert signed_in.get("/get").data.decode() == SECRET_TOKEN
