"""SMART Backend Services: a requests auth that keeps a client_credentials token fresh.

The token is bought with a `private_key_jwt` client assertion (SMART's
client-confidential-asymmetric profile): header alg RS384 or ES384 and kid = the key's RFC 7638
thumbprint (optionally jku = our JWKS URL); claims iss = sub = client_id, aud = the token URL,
iat, exp at most 5 minutes ahead, and a fresh random jti per assertion. authlib's client-side
PrivateKeyJWT is not used: it defaults to exp = +3600 s, which a strict server refuses, and a
fixed claims dict would freeze the jti (see the stack notes). joserfc signs instead.

Renewal: the cached token is replaced when less than the margin (60 s, or half the token's life
for very short tokens) remains, and once more if the FHIR server still answers 401 (revoked
early, clock skew): the request is then re-sent once with the new token. A second 401 is
returned to the caller as is.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from joserfc import jwt
from requests.auth import AuthBase

from consent_gap.smart.discovery import require_secure_url
from consent_gap.smart.keys import SigningKey, load_signing_key
from consent_gap.smart.tokens import DEFAULT_EXPIRES_IN, post_token_request

log = logging.getLogger("consent_gap.smart")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: SMART caps an assertion's exp at 5 minutes ahead; 4 leaves room for clock skew.
DEFAULT_ASSERTION_LIFETIME = 240
MAX_ASSERTION_LIFETIME = 300
DEFAULT_RENEW_MARGIN = 60.0


def make_client_assertion(
    key: SigningKey,
    client_id: str,
    token_url: str,
    *,
    now: float,
    lifetime: int = DEFAULT_ASSERTION_LIFETIME,
    jku: str | None = None,
) -> str:
    """A signed private_key_jwt client assertion (compact JWS) with a fresh jti."""
    if not 0 < lifetime <= MAX_ASSERTION_LIFETIME:
        raise ValueError(f"assertion lifetime must be 1..{MAX_ASSERTION_LIFETIME} seconds")
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    if jku:
        header["jku"] = jku
    issued = int(now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(header, claims, key.key, algorithms=[key.alg])


@dataclass
class AccessToken:
    """A bearer token, when it stops being usable (epoch seconds), and its full life."""

    value: str = field(repr=False)
    expires_at: float
    lifetime: float
    scope: str = ""

    def fresh(self, now: float, margin: float) -> bool:
        """Usable for a while yet: more than `margin` left, where a token shorter-lived than
        twice the margin is renewed at half its life instead (so it is used at all)."""
        return now < self.expires_at - min(margin, self.lifetime / 2)


class BackendServicesAuth(AuthBase):
    """`requests` auth for unattended runs: fetches, caches and renews the access token."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key_pem_path: str | os.PathLike[str] | None = None,
        scope: str = "",
        alg: str | None = None,
        *,
        key: SigningKey | None = None,
        jku: str | None = None,
        session: requests.Session | None = None,
        renew_margin: float = DEFAULT_RENEW_MARGIN,
        assertion_lifetime: int = DEFAULT_ASSERTION_LIFETIME,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Give the key as a PEM file path (alg checked against it: RS384 for RSA, ES384 for
        EC P-384; inferred when None) or as a loaded `key`. `session` is used for the token
        endpoint only, never with this auth attached (that would recurse)."""
        if key is None:
            if private_key_pem_path is None:
                raise ValueError("give private_key_pem_path or key")
            key = load_signing_key(private_key_pem_path, alg)
        elif alg is not None and alg != key.alg:
            raise ValueError(f"the key signs {key.alg}, not {alg}")
        self.token_url = require_secure_url(token_url, "token_url")
        self.client_id = client_id
        self.scope = scope
        self.key = key
        self.jku = jku
        self.session = session or requests.Session()
        self.renew_margin = renew_margin
        self.assertion_lifetime = assertion_lifetime
        self.timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._token: AccessToken | None = None
        self._lock = threading.Lock()
        self.token_requests = 0

    def __repr__(self) -> str:
        return f"BackendServicesAuth(client_id={self.client_id!r}, kid={self.key.kid!r})"

    # -- tokens ---------------------------------------------------------------------------
    def _form(self) -> dict[str, str]:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": make_client_assertion(
                self.key, self.client_id, self.token_url, now=self._clock(),
                lifetime=self.assertion_lifetime, jku=self.jku),
        }
        if self.scope:
            form["scope"] = self.scope
        return form

    def _fetch(self) -> AccessToken:
        self.token_requests += 1
        requested_at = self._clock()
        body = post_token_request(self.session, self.token_url, self._form,
                                  timeout=self.timeout, sleep=self._sleep)
        expires_in = float(body.get("expires_in", DEFAULT_EXPIRES_IN))
        log.info("backend token obtained for client %s, valid %.0f s", self.client_id,
                 expires_in)
        return AccessToken(body["access_token"], requested_at + expires_in, expires_in,
                           str(body.get("scope", self.scope)))

    def token(self) -> AccessToken:
        """The current token, fetching a new one when none is cached or it is about to expire."""
        with self._lock:
            tok = self._token
            if tok is None or not tok.fresh(self._clock(), self.renew_margin):
                self._token = tok = self._fetch()
            return tok

    def invalidate(self, stale: AccessToken | None = None) -> None:
        """Drop the cached token (only if it is still `stale`, when given: another thread may
        already have renewed it)."""
        with self._lock:
            if stale is None or self._token is stale:
                self._token = None

    # -- requests hooks -------------------------------------------------------------------
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        tok = self.token()
        r.headers["Authorization"] = f"Bearer {tok.value}"
        r.register_hook("response", self._make_401_hook(tok))
        return r

    def _make_401_hook(self, used: AccessToken) -> Callable[..., requests.Response]:
        def on_response(resp: requests.Response, **kwargs: Any) -> requests.Response:
            if resp.status_code != 401 or getattr(resp.request, "_cg_renewed", False):
                return resp
            log.info("FHIR server answered 401; renewing the backend token once")
            self.invalidate(used)
            fresh = self.token()
            prep = resp.request.copy()
            prep.headers["Authorization"] = f"Bearer {fresh.value}"
            prep._cg_renewed = True  # type: ignore[attr-defined]
            prep.hooks = {"response": []}
            _ = resp.content  # drain, so the pooled connection can be reused
            resp.close()
            retried = resp.connection.send(prep, **kwargs)
            retried.history.append(resp)
            retried.request = prep
            return retried

        return on_response
