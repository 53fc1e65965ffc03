"""Who may call the CDS Hooks service: the CDS client's bearer JWT, verified.

CDS Hooks 2.0 has the CDS client (the EHR) sign a short JWT per call; CONTRACT.md section 9
asks for its `iss` on the allowlist `CONSENT_GAP_CDS_CLIENTS` (issuer -> JWKS URL), the
signature by a key of that JWKS chosen by `kid`, `aud` the service's own URL and `exp` not
passed. On top of that, as a careful reading of the spec's security section and of RFC 8725:

- only RS384 and ES384 (the two algorithms CDS Hooks names; never `none` or HMAC, whose
  "key" would be the public JWKS);
- `kid` required: with several keys in a set, a guess would accept whichever verifies;
- the header's `jku` is never fetched: the keys come only from the configured URL;
- `iat` and `jti` required; a `jti` is accepted once per issuer while its token lives
  (per process: with several workers a replay can reach another worker, but never outlive
  the token's five minutes);
- `exp` at most five minutes ahead (the spec's recommended lifetime), so a stolen token is
  short-lived and the replay memory stays small.

Every failure is a :class:`CdsAuthError` with a reason fit for a log line and a 401: the
token itself, its claims beyond the issuer, and the key material are never logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

log = logging.getLogger(__name__)

ALGORITHMS = ("RS384", "ES384")
#: Seconds of clock difference tolerated between the CDS client and us.
LEEWAY = 60
#: The longest lifetime a CDS client's token may claim (CDS Hooks recommends five minutes).
MAX_LIFETIME = 300
#: How long a fetched JWKS is used before it is fetched again.
JWKS_TTL = 300.0
#: An unknown `kid` refetches the set (the client rotated its key), at most this often.
JWKS_REFETCH_INTERVAL = 30.0


class CdsAuthError(Exception):
    """The call is not from a trusted CDS client; the message is the reason (no token)."""


@dataclass(frozen=True)
class CdsCaller:
    """The verified caller: the issuer (from the allowlist) and the token's id."""

    issuer: str
    jti: str


class JwksCache:
    """The JWKS of each trusted issuer, fetched from its configured URL and kept a while."""

    def __init__(self, http: requests.Session, *, ttl: float = JWKS_TTL,
                 clock: Callable[[], float] = time.monotonic, timeout: float = 5.0) -> None:
        self._http = http
        self._ttl = ttl
        self._clock = clock
        self._timeout = timeout
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, KeySet]] = {}

    def keys(self, url: str, *, refresh: bool = False) -> KeySet:
        """The key set at `url`; `refresh` fetches again unless it was fetched just now."""
        now = self._clock()
        with self._lock:
            cached = self._sets.get(url)
        if cached and now - cached[0] < self._ttl and not (
                refresh and now - cached[0] >= JWKS_REFETCH_INTERVAL):
            return cached[1]
        fetched = self._fetch(url)
        with self._lock:
            self._sets[url] = (now, fetched)
        return fetched

    def _fetch(self, url: str) -> KeySet:
        try:
            response = self._http.get(url, timeout=self._timeout, allow_redirects=False,
                                      headers={"Accept": "application/json"})
            response.raise_for_status()
            return KeySet.import_key_set(response.json())
        except (requests.RequestException, ValueError, JoseError, TypeError, KeyError) as exc:
            raise CdsAuthError(f"the issuer's JWKS could not be read ({type(exc).__name__})"
                               ) from None


class ReplayGuard:
    """Remembers each accepted (issuer, jti) until its token expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], float] = {}

    def use(self, issuer: str, jti: str, exp: float, now: float) -> bool:
        """True the first time; False for a replay."""
        with self._lock:
            for key in [k for k, until in self._seen.items() if until < now]:
                del self._seen[key]
            if (issuer, jti) in self._seen:
                return False
            self._seen[(issuer, jti)] = exp + LEEWAY
            return True


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CdsAuthError("no bearer token")
    return token.strip()


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before the signature is checked: only to find the issuer and key."""
    try:
        compact = extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError):
        raise CdsAuthError("the token is not a compact JWS") from None
    if not isinstance(claims, dict):
        raise CdsAuthError("the token's payload is not a JSON object")
    return dict(compact.headers()), claims


def _audience_ok(aud: Any, expected: str) -> bool:
    if isinstance(aud, str):
        return aud == expected
    return isinstance(aud, list) and expected in aud


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CdsAuthError(f"the token has no numeric {name}")
    return float(value)


class CdsVerifier:
    """Verifies CDS clients' JWTs against the allowlist (issuer -> JWKS URL)."""

    def __init__(self, clients: Mapping[str, str], jwks: JwksCache, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._clients = dict(clients)
        self._jwks = jwks
        self._clock = clock
        self._replays = ReplayGuard()

    def verify(self, authorization: str | None, audience: str) -> CdsCaller:
        """The caller of a request with this Authorization header, for the service at
        `audience`; CdsAuthError when it is not a trusted CDS client's valid token."""
        token = bearer_token(authorization)
        header, unverified = _unverified(token)
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self._clients:
            raise CdsAuthError("the issuer is not a trusted CDS client")
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise CdsAuthError("the token is not signed with RS384 or ES384")
        if not isinstance(kid, str) or not kid:
            raise CdsAuthError("the token has no kid")
        claims = self._signed_claims(token, issuer, kid, alg)
        return self._checked(claims, issuer, audience)

    def _signed_claims(self, token: str, issuer: str, kid: str, alg: str) -> dict[str, Any]:
        url = self._clients[issuer]
        key = _by_kid(self._jwks.keys(url), kid)
        if key is None:  # perhaps a new key: the client rotated it since we fetched the set
            key = _by_kid(self._jwks.keys(url, refresh=True), kid)
        if key is None:
            raise CdsAuthError("the token's kid is not in the issuer's JWKS")
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except (JoseError, ValueError) as exc:
            raise CdsAuthError(f"the signature does not verify ({type(exc).__name__})") from None
        if decoded.claims.get("iss") != issuer:
            raise CdsAuthError("the issuer changed under the signature")
        return dict(decoded.claims)

    def _checked(self, claims: dict[str, Any], issuer: str, audience: str) -> CdsCaller:
        now = self._clock()
        if not _audience_ok(claims.get("aud"), audience):
            raise CdsAuthError("the token's aud is not this service's URL")
        exp = _number(claims, "exp")
        if exp <= now - LEEWAY:
            raise CdsAuthError("the token has expired")
        if exp > now + MAX_LIFETIME + LEEWAY:
            raise CdsAuthError("the token's exp is more than five minutes ahead")
        if _number(claims, "iat") > now + LEEWAY:
            raise CdsAuthError("the token was issued in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise CdsAuthError("the token has no jti")
        if not self._replays.use(issuer, jti, exp, now):
            raise CdsAuthError("the token's jti was already used")
        return CdsCaller(issuer=issuer, jti=jti)


def _by_kid(keys: KeySet, kid: str) -> Any:
    for key in keys.keys:
        if key.kid == kid:
            return key
    return None
