"""Server-side sessions: the cookie is only an id, rows are sealed, tampering ends a session."""

from __future__ import annotations

import time

import pytest
from consent_gap.web.sessions import (
    MemoryStore,
    ServerSessionInterface,
    SqliteStore,
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


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_cookie_is_only_an_id_and_the_row_is_sealed(kind, tmp_path):
    store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "s.db")
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


def test_rows_expire():
    store = MemoryStore()
    store.save("k", b"blob", time.time() - 1)
    assert store.load("k") is None
    store.save("k", b"blob", time.time() + 60)
    store.touch("k", time.time() - 1)
    assert store.load("k") is None


def test_sqlite_store_is_shared_between_instances(tmp_path):
    path = tmp_path / "sessions.db"
    one, two = SqliteStore(path), SqliteStore(path)
    one.save("k", b"blob", time.time() + 60)
    assert two.load("k") == b"blob"
    assert (path.stat().st_mode & 0o077) == 0  # not readable by others


def test_make_store_specs(tmp_path):
    assert isinstance(make_store("memory"), MemoryStore)
    store = make_store(f"sqlite:{tmp_path / 'x.db'}")
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "x.db"
