"""The OAuth steps of a SMART launch as the web app uses them: discovery, the authorization
request (PKCE S256 + state), the code exchange and the refresh.

A thin adapter: the protocol lives in :mod:`consent_gap.smart` (discovery, ehr_launch) where
those modules provide it; this module keeps the web blueprints independent of their exact
signatures and turns their answers into a :class:`TokenSet`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from consent_gap.smart import discovery

from .config import WebConfig


class LaunchError(Exception):
    """The EHR's authorization server did something the app cannot go on from."""


@dataclass(frozen=True)
class Endpoints:
    authorization_endpoint: str
    token_endpoint: str


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    expires_at: float
    refresh_token: str | None
    scope: str
    patient: str | None
    encounter: str | None
    need_patient_banner: bool
    fhir_user: str | None


def discover(iss: str, http: requests.Session, timeout: float) -> Endpoints:
    """The issuer's endpoints from its SMART configuration (smart.discovery validates and
    caches it); refuse a server without PKCE S256, which SMART 2 requires."""
    try:
        found = discovery.discover(iss, http, timeout=timeout)
    except discovery.DiscoveryError as error:
        raise LaunchError(str(error)) from None
    if not found.supports_s256:
        raise LaunchError("the EHR does not support PKCE with S256, which SMART requires")
    if not found.authorization_endpoint:
        raise LaunchError("the EHR's SMART configuration has no authorization_endpoint")
    return Endpoints(found.authorization_endpoint, found.token_endpoint)


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge): 43+ characters of 256 random bits, RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_request(
    config: WebConfig, endpoints: Endpoints, iss: str, launch: str | None
) -> AuthorizationRequest:
    """The authorize URL for an EHR launch (``launch`` given) or a standalone launch."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(32)
    scope = config.scopes
    if launch is None:
        scope = " ".join("launch/patient" if s == "launch" else s for s in scope.split())
    params = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": config.callback_url,
        "scope": scope,
        "state": state,
        "aud": iss,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if launch is not None:
        params["launch"] = launch
    sep = "&" if "?" in endpoints.authorization_endpoint else "?"
    return AuthorizationRequest(
        endpoints.authorization_endpoint + sep + urlencode(params), state, verifier
    )


def _post_token(
    http: requests.Session, token_endpoint: str, form: dict[str, str], timeout: float
) -> dict[str, Any]:
    try:
        response = http.post(
            token_endpoint, data=form, timeout=timeout, headers={"Accept": "application/json"}
        )
    except requests.RequestException as error:
        raise LaunchError(
            f"the EHR's token endpoint could not be reached ({type(error).__name__})"
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        code = body.get("error") if isinstance(body, dict) else None
        raise LaunchError(f"the EHR refused the token request ({code or response.status_code})")
    return body


def _token_set(body: dict[str, Any], previous_refresh: str | None = None) -> TokenSet:
    expires_in = body.get("expires_in")
    try:
        lifetime = float(expires_in) if expires_in is not None else 300.0
    except (TypeError, ValueError):
        lifetime = 300.0
    banner = body.get("need_patient_banner")
    return TokenSet(
        access_token=str(body["access_token"]),
        expires_at=time.time() + lifetime,
        refresh_token=body.get("refresh_token") or previous_refresh,
        scope=str(body.get("scope") or ""),
        patient=body.get("patient"),
        encounter=body.get("encounter"),
        need_patient_banner=True if banner is None else bool(banner),
        fhir_user=body.get("fhirUser"),
    )


def exchange_code(
    config: WebConfig, http: requests.Session, token_endpoint: str, code: str, verifier: str
) -> TokenSet:
    """Trade the authorization code (with the PKCE verifier) for tokens; public client."""
    body = _post_token(
        http,
        token_endpoint,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": config.callback_url,
            "client_id": config.client_id,
            "code_verifier": verifier,
        },
        config.http_timeout,
    )
    return _token_set(body)


def refresh(
    config: WebConfig, http: requests.Session, token_endpoint: str, refresh_token: str
) -> TokenSet:
    body = _post_token(
        http,
        token_endpoint,
        {"grant_type": "refresh_token", "refresh_token": refresh_token,
         "client_id": config.client_id},
        config.http_timeout,
    )
    return _token_set(body, previous_refresh=refresh_token)
