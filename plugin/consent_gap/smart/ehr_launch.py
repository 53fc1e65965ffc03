"""The client side of a SMART App Launch (EHR or standalone), for the web app.

Pure pieces (issuer allowlist, PKCE, state, the authorize URL) do no I/O; the code exchange and
refresh take the `requests.Session` to use. Nothing here stores anything: the web app keeps the
`PendingAuthorization` and the `TokenSet` server-side, keyed by its session id.

Order matters for security: `require_allowed_issuer` runs before discovery, so an `iss` off the
allowlist never causes an outbound request (an attacker cannot make the app call arbitrary
hosts, or phish a user through a look-alike EHR).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from consent_gap.smart.discovery import SmartConfiguration, require_secure_url
from consent_gap.smart.idtoken import verified_claims
from consent_gap.smart.tokens import DEFAULT_EXPIRES_IN, post_token_request


class IssuerNotAllowed(ValueError):
    """The launch's `iss` is not on the configured allowlist."""


class LaunchRefused(ValueError):
    """The app refuses to go on with the launch: the EHR lacks what the protocol demands (no
    S256 support, no authorization endpoint), the callback or the refresh is missing a part."""


def normalize_issuer(iss: str) -> str:
    """Comparable form of a FHIR base URL: lower-case scheme and host, default port dropped,
    no trailing slash, no query or fragment (an issuer never has them)."""
    parts = urlsplit(iss.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise IssuerNotAllowed("the issuer is not an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise IssuerNotAllowed("the issuer URL has a query, fragment or credentials")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


def require_allowed_issuer(iss: str | None, allowlist: Iterable[str]) -> str:
    """The normalized issuer if it is exactly on the allowlist (no prefix or suffix matching);
    IssuerNotAllowed otherwise. Pure: makes no request."""
    if not iss:
        raise IssuerNotAllowed("the launch has no iss")
    wanted = normalize_issuer(iss)
    allowed = set()
    for entry in allowlist:
        try:
            allowed.add(normalize_issuer(entry))
        except IssuerNotAllowed:
            continue
    if wanted not in allowed:
        raise IssuerNotAllowed("the issuer is not on the allowlist of EHRs")
    return wanted


# -- PKCE and state ------------------------------------------------------------------------
@dataclass(frozen=True)
class PkcePair:
    verifier: str = field(repr=False)
    challenge: str
    method: str = "S256"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256_challenge(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def make_pkce_pair() -> PkcePair:
    """RFC 7636: a 64-character verifier from 48 random bytes, and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return PkcePair(verifier, s256_challenge(verifier))


def new_state() -> str:
    """An unguessable `state` (256 bits)."""
    return secrets.token_urlsafe(32)


def states_match(expected: str | None, received: str | None) -> bool:
    """Constant-time comparison; a missing value never matches."""
    return bool(expected) and bool(received) and secrets.compare_digest(
        str(expected), str(received))


# -- the authorize redirect ----------------------------------------------------------------
def build_authorize_url(
    config: SmartConfiguration,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    code_challenge: str,
    aud: str,
    launch: str | None = None,
) -> str:
    """The URL to send the browser to. Refuses a server without S256 PKCE."""
    if not config.authorization_endpoint:
        raise LaunchRefused("the EHR has no authorization_endpoint")
    if not config.supports_s256:
        raise LaunchRefused("the EHR does not support PKCE S256")
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "aud": aud,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    if launch:
        params["launch"] = launch
    endpoint = config.authorization_endpoint
    sep = "&" if urlsplit(endpoint).query else "?"
    return f"{endpoint}{sep}{urlencode(params)}"


@dataclass(frozen=True)
class PendingAuthorization:
    """What the app keeps server-side between /launch and /callback: the PKCE verifier and
    state, and what the id_token will be checked against (`id_token_issuer`, `jwks_uri`)."""

    iss: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str
    token_endpoint: str
    authorize_url: str = field(repr=False)
    created_at: float = 0.0
    id_token_issuer: str = ""
    jwks_uri: str | None = None
    scope: str = ""  # as requested: what was granted when the answer names no scope

    def expired(self, now: float, max_age: float = 600.0) -> bool:
        return now - self.created_at > max_age


def start_authorization(
    config: SmartConfiguration,
    *,
    iss: str,
    client_id: str,
    redirect_uri: str,
    scope: str,
    launch: str | None = None,
    aud: str | None = None,
    now: float | None = None,
) -> PendingAuthorization:
    """New PKCE pair and state, and the authorize URL carrying them.

    `iss` is the FHIR base the app will call; `aud` the launch's `iss` exactly as the EHR sent
    it (default `iss`): a server that matches `aud` exactly refuses any other spelling. The
    id_token must come from the OpenID issuer the configuration names, else from `aud`
    (OpenID Connect Core 3.1.3.7 step 2: the issuer "obtained during Discovery")."""
    audience = aud or iss
    pkce = make_pkce_pair()
    state = new_state()
    url = build_authorize_url(config, client_id=client_id, redirect_uri=redirect_uri,
                              scope=scope, state=state, code_challenge=pkce.challenge,
                              aud=audience, launch=launch)
    return PendingAuthorization(iss=iss, state=state, code_verifier=pkce.verifier,
                                redirect_uri=redirect_uri, token_endpoint=config.token_endpoint,
                                authorize_url=url,
                                created_at=time.time() if now is None else now,
                                id_token_issuer=config.openid_issuer or audience,
                                jwks_uri=config.jwks_uri, scope=scope)


# -- tokens --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenSet:
    """A token response with its SMART launch context. Tokens are hidden from repr.

    `fhir_user` comes only from the claims of an id_token that was verified (signature,
    issuer, audience, expiry: see idtoken.py); never from an unverified token or the
    response's other fields. `scope` is what the server granted, which may be less than asked."""

    access_token: str = field(repr=False)
    expires_at: float
    scope: str = ""
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    patient: str | None = None
    encounter: str | None = None
    need_patient_banner: bool = False
    fhir_user: str | None = None
    fhir_context: tuple[Mapping[str, Any], ...] = ()
    intent: str | None = None
    smart_style_url: str | None = None
    tenant: str | None = None

    @classmethod
    def from_response(cls, body: Mapping[str, Any], now: float,
                      claims: Mapping[str, Any] | None = None) -> TokenSet:
        """The token set of a response; `claims` are its id_token's, once verified."""
        expires_in = float(body.get("expires_in", DEFAULT_EXPIRES_IN))
        id_token = id_token_of(body) if claims is not None else None
        fhir_user = (claims or {}).get("fhirUser")
        context = body.get("fhirContext")
        return cls(
            access_token=str(body["access_token"]),
            expires_at=now + expires_in,
            scope=str(body.get("scope", "")),
            refresh_token=body.get("refresh_token") or None,
            id_token=id_token,
            patient=body.get("patient") or None,
            encounter=body.get("encounter") or None,
            need_patient_banner=bool(body.get("need_patient_banner", False)),
            fhir_user=str(fhir_user) if fhir_user else None,
            fhir_context=tuple(c for c in context if isinstance(c, Mapping))
            if isinstance(context, list) else (),
            intent=body.get("intent") or None,
            smart_style_url=body.get("smart_style_url") or None,
            tenant=body.get("tenant") or None,
        )

    def expires_in(self, now: float) -> float:
        return self.expires_at - now

    def needs_refresh(self, now: float, margin: float = 60.0) -> bool:
        return now >= self.expires_at - margin

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


def id_token_of(body: Mapping[str, Any]) -> str | None:
    value = body.get("id_token")
    return value if isinstance(value, str) and value else None


def _client_auth(
    form: dict[str, str], client_id: str, client_secret: str | None,
) -> tuple[str, str] | None:
    """Public client: client_id in the form. Confidential (symmetric): HTTP Basic."""
    if client_secret:
        return (client_id, client_secret)
    form["client_id"] = client_id
    return None


def exchange_code(
    session: requests.Session,
    pending: PendingAuthorization,
    *,
    code: str,
    client_id: str,
    client_secret: str | None = None,
    timeout: float | tuple[float, float] = (5.0, 30.0),
    clock: Callable[[], float] = time.time,
) -> TokenSet:
    """Trade the authorization code (with the PKCE verifier) for tokens. An id_token in the
    answer is verified before anything is taken from it (IdTokenRejected otherwise)."""
    if not code:
        raise LaunchRefused("the callback has no code")
    require_secure_url(pending.token_endpoint, "token_endpoint")
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": pending.redirect_uri, "code_verifier": pending.code_verifier}
    auth = _client_auth(form, client_id, client_secret)
    now = clock()
    body = post_token_request(session, pending.token_endpoint, form, auth=auth,
                              timeout=timeout, attempts=1)
    id_token = id_token_of(body)
    claims = verified_claims(
        session, id_token, jwks_uri=pending.jwks_uri, issuer=pending.id_token_issuer,
        client_id=client_id, timeout=timeout, clock=clock,
    ) if id_token else None
    tokens = TokenSet.from_response(body, now, claims)
    # RFC 6749 5.1: a token response without `scope` granted exactly what was requested.
    return tokens if tokens.scope else replace(tokens, scope=pending.scope)


def refresh(
    session: requests.Session,
    token_endpoint: str,
    tokens: TokenSet,
    *,
    client_id: str,
    client_secret: str | None = None,
    timeout: float | tuple[float, float] = (5.0, 30.0),
    clock: Callable[[], float] = time.time,
) -> TokenSet:
    """Use the refresh token. The launch context (patient, encounter, banner...) is kept from
    the old set unless the server sends it again, and so is the refresh token when the server
    does not rotate it. The user (`fhir_user`, the id_token) stays the one verified at launch:
    a refresh cannot change who signed in."""
    if not tokens.refresh_token:
        raise LaunchRefused("no refresh token (ask for online_access or offline_access)")
    require_secure_url(token_endpoint, "token_endpoint")
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    auth = _client_auth(form, client_id, client_secret)
    now = clock()
    body = post_token_request(session, token_endpoint, form, auth=auth, timeout=timeout,
                              attempts=1)
    new = TokenSet.from_response(body, now)
    return replace(
        new,
        refresh_token=new.refresh_token or tokens.refresh_token,
        id_token=tokens.id_token,
        scope=new.scope or tokens.scope,
        patient=new.patient or tokens.patient,
        encounter=new.encounter or tokens.encounter,
        need_patient_banner=new.need_patient_banner if "need_patient_banner" in body
        else tokens.need_patient_banner,
        fhir_user=tokens.fhir_user,
        fhir_context=new.fhir_context or tokens.fhir_context,
        intent=new.intent or tokens.intent,
        smart_style_url=new.smart_style_url or tokens.smart_style_url,
        tenant=new.tenant or tokens.tenant,
    )
