"""Launch contexts kept in the server-side session: who launched, for which patient, with
which tokens; and the pending authorizations (state -> PKCE verifier) between /launch and
/callback.

A session may hold several launches (two charts open in two tabs): each has its own id, which
the panel URL carries, so a form posted from one chart can never act on another patient.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from flask import session

MAX_LAUNCHES = 8
MAX_PENDING = 8
PENDING_TTL = 600  # seconds a user may spend at the EHR's login/consent screen


class LaunchMissing(LookupError):
    """The launch id is not in this session (expired, other browser, or made up)."""


@dataclass
class Launch:
    """One completed launch. Tokens stay on the server: this lives in the session store."""

    lid: str
    iss: str
    token_endpoint: str
    patient: str | None
    access_token: str
    expires_at: float
    refresh_token: str | None = None
    scope: str = ""
    encounter: str | None = None
    need_patient_banner: bool = True
    fhir_user: str | None = None
    created: float = 0.0

    @property
    def patient_ref(self) -> str | None:
        return f"Patient/{self.patient}" if self.patient else None

    def expiring(self, margin: float = 60.0, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) >= self.expires_at - margin


def new_id() -> str:
    return secrets.token_urlsafe(12)


def save_launch(launch: Launch) -> None:
    launches: dict[str, Any] = dict(session.get("launches") or {})
    launches[launch.lid] = asdict(launch)
    if len(launches) > MAX_LAUNCHES:
        oldest = sorted(launches, key=lambda key: launches[key].get("created", 0))
        for key in oldest[: len(launches) - MAX_LAUNCHES]:
            del launches[key]
    session["launches"] = launches
    session["latest"] = launch.lid


def get_launch(lid: str | None) -> Launch:
    """The launch ``lid`` of this session (the latest when ``lid`` is None)."""
    launches = session.get("launches") or {}
    key = lid or session.get("latest")
    if not key or key not in launches:
        raise LaunchMissing(key or "")
    return Launch(**launches[key])


def drop_launch(lid: str) -> None:
    launches = dict(session.get("launches") or {})
    launches.pop(lid, None)
    session["launches"] = launches
    if session.get("latest") == lid:
        session.pop("latest", None)


def remember_pending(state: str, data: dict[str, Any]) -> None:
    """Bind an authorization request's ``state`` to this session, with its PKCE verifier."""
    now = time.time()
    pending = {
        key: value
        for key, value in (session.get("pending") or {}).items()
        if value.get("created", 0) + PENDING_TTL > now
    }
    pending[state] = {**data, "created": now}
    if len(pending) > MAX_PENDING:
        for key in sorted(pending, key=lambda k: pending[k]["created"])[:-MAX_PENDING]:
            del pending[key]
    session["pending"] = pending


def take_pending(state: str | None) -> dict[str, Any] | None:
    """Pop the pending request for ``state``: single use, and only from the session that
    started it, and only within PENDING_TTL. None when any of that fails."""
    if not state:
        return None
    pending = dict(session.get("pending") or {})
    data = pending.pop(state, None)
    session["pending"] = pending
    if data is None or data.get("created", 0) + PENDING_TTL < time.time():
        return None
    return data
