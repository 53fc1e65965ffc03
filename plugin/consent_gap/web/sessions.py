"""Server-side sessions: the cookie carries only a random id; tokens and launch context stay here.

Why not Flask's default signed-cookie session: it would put the access and refresh tokens into
the browser. Here the cookie value is 256 random bits; the store keys rows by its SHA-256 (a
leaked database does not hand out live cookies) and encrypts each row with AES-GCM under a key
derived from the app's secret (a leaked database does not hand out tokens either).

Two stores: in memory (one process: development, tests) and SQLite (several gunicorn workers
on one host share the file).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

COOKIE_NAME = "cg_session"


class SessionStore(Protocol):
    """Where session rows live. ``key`` is already the hash of the cookie value."""

    def load(self, key: str) -> bytes | None: ...

    def save(self, key: str, blob: bytes, expires_at: float) -> None: ...

    def delete(self, key: str) -> None: ...

    def touch(self, key: str, expires_at: float) -> None: ...


class MemoryStore:
    """A dict behind a lock; rows vanish after their expiry."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> bytes | None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                return None
            if row[1] < time.time():
                del self._rows[key]
                return None
            return row[0]

    def save(self, key: str, blob: bytes, expires_at: float) -> None:
        with self._lock:
            self._rows[key] = (blob, expires_at)
            if len(self._rows) % 256 == 0:
                self._sweep()

    def delete(self, key: str) -> None:
        with self._lock:
            self._rows.pop(key, None)

    def touch(self, key: str, expires_at: float) -> None:
        with self._lock:
            row = self._rows.get(key)
            if row is not None:
                self._rows[key] = (row[0], expires_at)

    def _sweep(self) -> None:
        now = time.time()
        for stale in [key for key, (_, exp) in self._rows.items() if exp < now]:
            del self._rows[stale]

    def __len__(self) -> int:
        return len(self._rows)


class SqliteStore:
    """One table in a SQLite file; a connection per call keeps it safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS web_session "
                "(key TEXT PRIMARY KEY, blob BLOB NOT NULL, expires_at REAL NOT NULL)"
            )
        self._saves = 0
        os.chmod(self.path, 0o600)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        # WAL (set once at creation, it persists in the file) lets readers and a writer
        # overlap; NORMAL skips an fsync per commit: a session lost in a power cut is a new
        # launch, not lost data.
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def load(self, key: str) -> bytes | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT blob FROM web_session WHERE key = ? AND expires_at >= ?",
                (key, time.time()),
            ).fetchone()
        return row[0] if row else None

    def save(self, key: str, blob: bytes, expires_at: float) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO web_session (key, blob, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET blob = excluded.blob, "
                "expires_at = excluded.expires_at",
                (key, blob, expires_at),
            )
            self._saves += 1
            if self._saves % 64 == 1:  # sweep now and then, not on every write
                db.execute("DELETE FROM web_session WHERE expires_at < ?", (time.time(),))

    def delete(self, key: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM web_session WHERE key = ?", (key,))

    def touch(self, key: str, expires_at: float) -> None:
        with self._connect() as db:
            db.execute("UPDATE web_session SET expires_at = ? WHERE key = ?", (expires_at, key))


def make_store(spec: str) -> SessionStore:
    """``memory`` or ``sqlite:PATH`` (a bare path also means SQLite)."""
    if spec == "memory":
        return MemoryStore()
    path = spec.removeprefix("sqlite:").removeprefix("///")
    return SqliteStore(Path(path).expanduser())


class ServerSession(CallbackDict, SessionMixin):
    """The session dict; ``rotate()`` asks for a fresh id (after login, against fixation)."""

    def __init__(self, initial: dict | None = None, sid: str | None = None) -> None:
        def on_update(this: ServerSession) -> None:
            this.modified = True

        super().__init__(initial or {}, on_update)
        self.sid = sid
        self.modified = False
        self.rotate_requested = False

    def rotate(self) -> None:
        self.rotate_requested = True
        self.modified = True


class _Sealer:
    """AES-GCM with a key derived from the app secret; a row that fails to open is no row."""

    def __init__(self, secret: str) -> None:
        key = hashlib.sha256(b"consent-gap web session v1|" + secret.encode()).digest()
        self._aead = AESGCM(key)

    def seal(self, data: dict, key: str) -> bytes:
        nonce = os.urandom(12)
        plain = json.dumps(data, separators=(",", ":")).encode()
        return nonce + self._aead.encrypt(nonce, plain, key.encode())

    def open(self, blob: bytes, key: str) -> dict | None:
        try:
            plain = self._aead.decrypt(blob[:12], blob[12:], key.encode())
        except (InvalidTag, ValueError):
            return None
        return json.loads(plain)


def _row_key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class ServerSessionInterface(SessionInterface):
    """Flask session interface over a :class:`SessionStore`."""

    def __init__(self, store: SessionStore, secret: str, ttl: int) -> None:
        self.store = store
        self.ttl = ttl
        self._sealer = _Sealer(secret)

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if sid and 20 <= len(sid) <= 100:
            key = _row_key(sid)
            blob = self.store.load(key)
            data = self._sealer.open(blob, key) if blob is not None else None
            if data is not None:
                return ServerSession(data, sid)
        return ServerSession()

    def save_session(
        self, app: Flask, session: MutableMapping[str, Any], response: Response
    ) -> None:
        assert isinstance(session, ServerSession)
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        if not session:
            if session.sid:
                self.store.delete(_row_key(session.sid))
                response.delete_cookie(
                    name, domain=domain, path=path, secure=self.get_cookie_secure(app),
                    samesite=self.get_cookie_samesite(app), httponly=True,
                )
            return
        if session.sid and session.rotate_requested:
            self.store.delete(_row_key(session.sid))
            session.sid = None
        if session.sid and not session.modified:
            # Sliding expiry without rewriting the row: a concurrent request that did change
            # the session must not be overwritten by this one's stale copy.
            self.store.touch(_row_key(session.sid), time.time() + self.ttl)
            return
        new_cookie = session.sid is None
        sid = session.sid or secrets.token_urlsafe(32)
        key = _row_key(sid)
        self.store.save(key, self._sealer.seal(dict(session), key), time.time() + self.ttl)
        if new_cookie or session.modified:
            response.set_cookie(  # the id is the only thing the browser holds
                name,
                sid,
                path=path,
                domain=domain,
                secure=self.get_cookie_secure(app),
                httponly=True,
                samesite=self.get_cookie_samesite(app),
                partitioned=self.get_cookie_partitioned(app),
            )
        response.vary.add("Cookie")
