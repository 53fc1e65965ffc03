"""Launch contexts kept in the server-side session: who launched, for which patient, with
which tokens; and the pending authorizations (state -> PKCE verifier) between /launch and
/callback.

A session may hold several launches (two charts open in two tabs): each has its own id, which
the panel URL carries, so a form posted from one chart can never act on another patient.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from flask import session

from consent_gap.smart.ehr_launch import PendingAuthorization, TokenSet, states_match

MAX_LAUNCHES = 8
MAX_PENDING = 8
PENDING_TTL = 600  # seconds a user may spend at the EHR's login/consent screen


class LaunchMissing(LookupError):
    """The launch id is not in this session (expired, other browser, or made up)."""


@dataclass(frozen=True, kw_only=True)
class Launch(TokenSet):
    """One completed launch: smart's token set (the one launch state: tokens, granted scope,
    launch context, the verified user) plus where it came from. Tokens stay on the server:
    this lives in the session store."""

    lid: str
    iss: str
    token_endpoint: str
    created: float = 0.0

    @classmethod
    def from_tokens(cls, lid: str, iss: str, token_endpoint: str, tokens: TokenSet) -> Launch:
        return cls(**{f.name: getattr(tokens, f.name) for f in fields(TokenSet)},
                   lid=lid, iss=iss, token_endpoint=token_endpoint, created=time.time())

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> Launch:
        """The launch as `save_launch` stored it (JSON turned its tuples into lists)."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["fhir_context"] = tuple(values.get("fhir_context") or ())
        return cls(**values)

    def token_set(self) -> TokenSet:
        """The tokens for a refresh: the launch is one."""
        return self

    @property
    def patient_ref(self) -> str | None:
        return f"Patient/{self.patient}" if self.patient else None

    def expiring(self, margin: float = 60.0, now: float | None = None) -> bool:
        return self.needs_refresh(now if now is not None else time.time(), margin)


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
    return Launch.from_session(launches[key])


def drop_launch(lid: str) -> None:
    launches = dict(session.get("launches") or {})
    launches.pop(lid, None)
    session["launches"] = launches
    if session.get("latest") == lid:
        session.pop("latest", None)


def remember_pending(request: PendingAuthorization) -> None:
    """Bind an authorization request's ``state`` to this session, with its PKCE verifier."""
    now = time.time()
    pending = {
        key: value
        for key, value in (session.get("pending") or {}).items()
        if not PendingAuthorization(**value).expired(now, PENDING_TTL)
    }
    # Without the authorize URL: the browser was sent there already, and the row stays small.
    pending[request.state] = asdict(replace(request, authorize_url=""))
    if len(pending) > MAX_PENDING:
        for key in sorted(pending, key=lambda k: pending[k]["created_at"])[:-MAX_PENDING]:
            del pending[key]
    session["pending"] = pending


def take_pending(state: str | None) -> PendingAuthorization | None:
    """Pop the pending request for ``state``: single use, only from the session that started
    it, only within PENDING_TTL. None when any of that fails."""
    if not state:
        return None
    pending = dict(session.get("pending") or {})
    data = pending.pop(state, None)
    if data is None:
        return None
    session["pending"] = pending
    found = PendingAuthorization(**data)
    if found.expired(time.time(), PENDING_TTL) or not states_match(found.state, state):
        return None
    return found


def remember_target(state: str, target: str) -> None:
    """Which page a pending sign-in opens (the worklist; the panel when none is named)."""
    targets = dict(session.get("targets") or {})
    targets[state] = target
    session["targets"] = dict(list(targets.items())[-MAX_PENDING:])


def take_target(state: str | None) -> str | None:
    if not state:
        return None
    targets = dict(session.get("targets") or {})
    target = targets.pop(state, None)
    if target is not None:
        session["targets"] = targets
    return target
