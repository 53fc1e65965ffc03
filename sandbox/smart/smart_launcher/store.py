"""In-memory state of the launcher: launches, pending consents, codes, tokens, seen `jti`s.

It is a sandbox: a restart forgets everything but the keys. One lock guards every table, so a code
is handed out once even when two token requests race, and a `jti` is accepted once.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .scopes import ScopeSet, split_scope

CODE_LIFETIME = 600
LAUNCH_LIFETIME = 3600
PENDING_LIFETIME = 1800
OFFLINE_REFRESH_LIFETIME = 30 * 24 * 3600
ONLINE_REFRESH_LIFETIME = 8 * 3600


def new_id(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass
class SandboxUser:
    """The signed-in sandbox user (a Practitioner) with the launch context they approved.

    authlib passes this object around as `grant_user`; the token generator reads the context
    from it, so every token issued for it (and every refreshed one) carries the same context.
    """

    practitioner: str
    fhir_user: str
    patient: str | None = None
    encounter: str | None = None
    need_patient_banner: bool = True

    def get_user_id(self) -> str:
        return self.practitioner

    def launch_context(self) -> dict[str, Any]:
        context: dict[str, Any] = {}
        if self.patient:
            context["patient"] = self.patient
            context["need_patient_banner"] = self.need_patient_banner
        if self.encounter:
            context["encounter"] = self.encounter
        return context


@dataclass
class Launch:
    """What the EHR page bound to a `launch` id: the chart open and the user looking at it
    (no patient: a launch from a non-patient context, such as the privacy office)."""

    patient: str | None
    practitioner: str
    encounter: str | None = None
    client_id: str | None = None
    need_patient_banner: bool = False
    auto_approve: bool | None = None
    expires_at: float = 0.0


@dataclass
class Pending:
    """An authorization request waiting on the consent page (or the patient picker)."""

    params: dict[str, str]
    uri: str
    user: SandboxUser
    needs_patient: bool
    expires_at: float


@dataclass
class AuthorizationCode:
    """An issued code; the method names are the ones authlib's grants and OIDC call."""

    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    user: SandboxUser
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class TokenRecord:
    """An access token (and its refresh token, if any) with what it grants."""

    access_token: str
    client_id: str
    scope: str
    user: SandboxUser | None
    expires_at: float
    refresh_token: str | None = None
    refresh_expires_at: float = 0.0
    revoked: bool = False
    scopes: ScopeSet = field(default_factory=lambda: ScopeSet(()))

    @property
    def patient(self) -> str | None:
        return self.user.patient if self.user else None

    def get_scope(self) -> str:
        return self.scope

    def check_client(self, client: Any) -> bool:
        return client.get_client_id() == self.client_id

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked


class Store:
    """All launcher state, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._launches: dict[str, Launch] = {}
        self._pending: dict[str, Pending] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._used_codes: dict[str, list[str]] = {}  # code -> access tokens issued with it
        self._tokens: dict[str, TokenRecord] = {}
        self._refresh: dict[str, TokenRecord] = {}
        self._jtis: dict[tuple[str, str], float] = {}
        self._nonces: dict[tuple[str, str], float] = {}

    # launches ------------------------------------------------------------------------------
    def new_launch(self, launch: Launch) -> str:
        launch_id = new_id(16)
        launch.expires_at = time.time() + LAUNCH_LIFETIME
        with self._lock:
            self._launches[launch_id] = launch
        return launch_id

    def get_launch(self, launch_id: str | None) -> Launch | None:
        if not launch_id:
            return None
        with self._lock:
            launch = self._launches.get(launch_id)
        if launch is None or launch.expires_at < time.time():
            return None
        return launch

    # pending consents ----------------------------------------------------------------------
    def put_pending(self, pending: Pending) -> str:
        txn = new_id()
        now = time.time()
        with self._lock:
            for key in [k for k, v in self._pending.items() if v.expires_at < now]:
                del self._pending[key]
            self._pending[txn] = pending
        return txn

    def get_pending(self, txn: str) -> Pending | None:
        with self._lock:
            pending = self._pending.get(txn)
        return pending if pending and pending.expires_at >= time.time() else None

    def take_pending(self, txn: str) -> Pending | None:
        with self._lock:
            pending = self._pending.pop(txn, None)
        return pending if pending and pending.expires_at >= time.time() else None

    # authorization codes -------------------------------------------------------------------
    def save_code(self, code: AuthorizationCode) -> None:
        with self._lock:
            self._codes[code.code] = code

    def take_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """Hand a code out once. A second use revokes the tokens issued with it (RFC 6749 4.1.2)."""
        with self._lock:
            if code in self._used_codes:
                for access in self._used_codes[code]:
                    record = self._tokens.get(access)
                    if record:
                        record.revoked = True
                return None
            item = self._codes.pop(code, None)
            if item is None:
                return None
            self._used_codes[code] = []
        if item.client_id != client_id or item.expires_at < time.time():
            return None
        return item

    # tokens --------------------------------------------------------------------------------
    def save_token(self, record: TokenRecord, code: str | None = None) -> None:
        with self._lock:
            self._tokens[record.access_token] = record
            if record.refresh_token:
                self._refresh[record.refresh_token] = record
            if code is not None:
                self._used_codes.setdefault(code, []).append(record.access_token)

    def get_token(self, access_token: str) -> TokenRecord | None:
        with self._lock:
            record = self._tokens.get(access_token)
        if record is None or record.revoked or record.is_expired():
            return None
        return record

    def get_refresh(self, refresh_token: str) -> TokenRecord | None:
        with self._lock:
            record = self._refresh.get(refresh_token)
        if record is None or record.revoked or record.refresh_expires_at < time.time():
            return None
        return record

    def revoke_refresh(self, record: TokenRecord) -> None:
        with self._lock:
            if record.refresh_token:
                self._refresh.pop(record.refresh_token, None)

    # replay caches -------------------------------------------------------------------------
    def use_jti(self, client_id: str, jti: str, exp: float) -> bool:
        """True the first time a client presents `jti` (kept until the assertion expires)."""
        now = time.time()
        with self._lock:
            for key in [k for k, until in self._jtis.items() if until < now]:
                del self._jtis[key]
            if (client_id, jti) in self._jtis:
                return False
            self._jtis[(client_id, jti)] = max(float(exp), now) + 60
            return True

    def nonce_seen(self, client_id: str, nonce: str) -> bool:
        """True when a code was already issued to the client with this OIDC nonce."""
        with self._lock:
            return (client_id, nonce) in self._nonces

    def record_nonce(self, client_id: str, nonce: str) -> None:
        with self._lock:
            self._nonces[(client_id, nonce)] = time.time()


def refresh_lifetime(scope: str) -> int:
    scopes = split_scope(scope)
    if "offline_access" in scopes:
        return OFFLINE_REFRESH_LIFETIME
    return ONLINE_REFRESH_LIFETIME
