"""Server-side sessions: the cookie carries only a random id; tokens and launch context stay here.

Why not Flask's default signed-cookie session: it would put the access and refresh tokens into
the browser. Here the cookie value is 256 random bits; the store keys rows by its SHA-256 (a
leaked database does not hand out live cookies) and encrypts each row with AES-GCM under a key
derived from the app's secret (a leaked database does not hand out tokens either).

Two stores: in memory (one process: development, tests) and SQL (``web_sessions`` in the
database of CONSENT_GAP_DATABASE_URL, SQLite or PostgreSQL: several gunicorn workers, or several
hosts, share it).

A session that holds no completed launch yet (a browser between /launch and the EHR's answer,
or one that never comes back) is *pending*: it lives PENDING_TTL (10 minutes) instead of the
session TTL, and at most ``max_pending`` such rows are kept, the oldest evicted first, so
unauthenticated requests cannot grow the store without bound. A browser's repeated launches
rewrite its one row (its cookie names it); they never add rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from werkzeug.datastructures import CallbackDict

from consent_gap.database import database_errors, make_engine

COOKIE_NAME = "cg_session"
#: Seconds a pending (not yet signed-in) session lives: the time a user may spend at the EHR's
#: login and consent screens (the pending authorization itself expires with it, context.py).
PENDING_TTL = 600
#: Pending sessions kept at most, store-wide; beyond it the oldest is evicted. A few thousand
#: users launching within ten minutes fit; a loop of anonymous requests does not grow memory.
MAX_PENDING = 5000


class SessionStore(Protocol):
    """Where session rows live. ``key`` is already the hash of the cookie value; ``pending``
    marks a row that holds no completed launch (bounded, see the module docstring)."""

    def load(self, key: str) -> bytes | None: ...

    def save(self, key: str, blob: bytes, expires_at: float, pending: bool = False) -> None: ...

    def delete(self, key: str) -> None: ...

    def touch(self, key: str, expires_at: float) -> None: ...


class MemoryStore:
    """A dict behind a lock; rows vanish after their expiry; pending rows are bounded."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self._rows: dict[str, tuple[bytes, float]] = {}
        self._pending: OrderedDict[str, None] = OrderedDict()  # oldest first
        self._lock = threading.Lock()
        self.max_pending = max_pending

    def load(self, key: str) -> bytes | None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                return None
            if row[1] < time.time():
                self._drop(key)
                return None
            return row[0]

    def save(self, key: str, blob: bytes, expires_at: float, pending: bool = False) -> None:
        with self._lock:
            self._rows[key] = (blob, expires_at)
            self._pending.pop(key, None)
            if pending:
                self._pending[key] = None
                while len(self._pending) > self.max_pending:
                    self._drop(next(iter(self._pending)))
            if len(self._rows) % 256 == 0:
                self._sweep()

    def delete(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def touch(self, key: str, expires_at: float) -> None:
        with self._lock:
            row = self._rows.get(key)
            if row is not None:
                self._rows[key] = (row[0], expires_at)

    def _drop(self, key: str) -> None:
        self._rows.pop(key, None)
        self._pending.pop(key, None)

    def _sweep(self) -> None:
        now = time.time()
        for stale in [key for key, (_, exp) in self._rows.items() if exp < now]:
            self._drop(stale)

    def __len__(self) -> int:
        return len(self._rows)


_metadata = MetaData()
web_sessions = Table(
    "web_sessions",
    _metadata,
    Column("key", String(64), primary_key=True),
    Column("blob", LargeBinary, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("pending", Boolean, nullable=False, default=False),
    Column("saved_at", Float, nullable=False),
    Index("ix_web_sessions_expires_at", "expires_at"),
    Index("ix_web_sessions_pending_saved_at", "pending", "saved_at"),
)


class SqlStore:
    """The table ``web_sessions`` in a SQL database (SQLAlchemy: SQLite or PostgreSQL).

    Writes are few (a session changes at launch, sign-in and after an action); reads use the
    primary key. Expired rows are swept now and then, not on every write; the pending bound is
    checked on every pending write (one indexed count)."""

    def __init__(self, url: str, max_pending: int = MAX_PENDING) -> None:
        self.url = url
        self.max_pending = max_pending
        self.engine = make_engine(url)
        with database_errors(url):
            _metadata.create_all(self.engine)
        self._saves = 0
        if self.engine.dialect.name == "sqlite" and self.engine.url.database:
            os.chmod(self.engine.url.database, 0o600)  # sealed rows, still nobody else's

    def load(self, key: str) -> bytes | None:
        query = select(web_sessions.c.blob).where(web_sessions.c.key == key,
                                                  web_sessions.c.expires_at >= time.time())
        with database_errors(self.url), self.engine.connect() as connection:
            return connection.execute(query).scalar()

    def save(self, key: str, blob: bytes, expires_at: float, pending: bool = False) -> None:
        now = time.time()
        values = {"blob": blob, "expires_at": expires_at, "pending": pending, "saved_at": now}
        with database_errors(self.url), self.engine.begin() as connection:
            changed = connection.execute(
                update(web_sessions).where(web_sessions.c.key == key).values(**values)
            ).rowcount
            if not changed:
                connection.execute(insert(web_sessions).values(key=key, **values))
            self._saves += 1
            if self._saves % 64 == 1:  # sweep now and then, not on every write
                connection.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
            if pending:
                self._evict_pending(connection)

    def _evict_pending(self, connection: Any) -> None:
        count = connection.execute(select(func.count()).select_from(web_sessions)
                                   .where(web_sessions.c.pending.is_(True))).scalar() or 0
        if count <= self.max_pending:
            return
        oldest = (select(web_sessions.c.key).where(web_sessions.c.pending.is_(True))
                  .order_by(web_sessions.c.saved_at).limit(count - self.max_pending))
        connection.execute(delete(web_sessions).where(web_sessions.c.key.in_(oldest)))

    def delete(self, key: str) -> None:
        with database_errors(self.url), self.engine.begin() as connection:
            connection.execute(delete(web_sessions).where(web_sessions.c.key == key))

    def touch(self, key: str, expires_at: float) -> None:
        with database_errors(self.url), self.engine.begin() as connection:
            connection.execute(update(web_sessions).where(web_sessions.c.key == key)
                               .values(expires_at=expires_at))

    def __len__(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(web_sessions)).scalar()


class SqliteStore(SqlStore):
    """A SqlStore on a SQLite file (the earlier ``sqlite:PATH`` setting)."""

    def __init__(self, path: Path, max_pending: int = MAX_PENDING) -> None:
        self.path = Path(path)
        super().__init__(f"sqlite:///{self.path}", max_pending)


def make_store(spec: str) -> SessionStore:
    """``memory``, ``sqlite:PATH`` or a SQLAlchemy URL (Settings.session_url)."""
    if spec == "memory":
        return MemoryStore()
    if spec.startswith("sqlite:") and not spec.startswith("sqlite://"):
        return SqliteStore(Path(spec.removeprefix("sqlite:")).expanduser())
    return SqlStore(spec)


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

    def lifetime(self, session: MutableMapping[str, Any]) -> tuple[float, bool]:
        """(seconds the row lives from now, pending?): a session without a completed launch
        is pending and lives at most PENDING_TTL."""
        pending = not session.get("launches")
        return (min(self.ttl, PENDING_TTL) if pending else self.ttl), pending

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
        lifetime, pending = self.lifetime(session)
        if session.sid and not session.modified:
            # Sliding expiry without rewriting the row: a concurrent request that did change
            # the session must not be overwritten by this one's stale copy. A pending session
            # does not slide: it ends PENDING_TTL after its launch, whatever it requests.
            if not pending:
                self.store.touch(_row_key(session.sid), time.time() + lifetime)
            return
        new_cookie = session.sid is None
        sid = session.sid or secrets.token_urlsafe(32)
        key = _row_key(sid)
        self.store.save(key, self._sealer.seal(dict(session), key), time.time() + lifetime,
                        pending=pending)
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
