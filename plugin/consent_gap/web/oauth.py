"""The OAuth steps of a SMART launch as the web blueprints use them.

The protocol lives in :mod:`consent_gap.smart` (discovery; ehr_launch: allowlist, PKCE, state,
authorize URL, code exchange, refresh). This adapter binds it to the app's configuration and
turns every failure into one :class:`SignInFailed` with a line fit for the user's page, but
for a rejected id_token (:class:`IdTokenRejected`), which gets its own page.
"""

from __future__ import annotations

import requests

from consent_gap.fhir import FhirError
from consent_gap.smart import discovery, ehr_launch
from consent_gap.smart.ehr_launch import IssuerNotAllowed, PendingAuthorization, TokenSet
from consent_gap.smart.idtoken import IdTokenRejected

from .config import WebConfig

__all__ = [
    "IdTokenRejected",
    "IssuerNotAllowed",
    "PendingAuthorization",
    "SignInFailed",
    "TokenSet",
    "allowed_issuer",
    "begin",
    "exchange_code",
    "refresh",
]


class SignInFailed(Exception):
    """Signing in at the EHR failed (unreachable, refused, or short of what SMART requires):
    the user's page says so in one line."""


def allowed_issuer(config: WebConfig, iss: str | None) -> str:
    """The normalized issuer when it is on the allowlist; IssuerNotAllowed otherwise.
    Pure: nothing is fetched, so an issuer off the list causes no request at all."""
    return ehr_launch.require_allowed_issuer(iss, config.allowed_issuers)


def standalone_scopes(scope: str) -> str:
    """A standalone launch asks the user to pick a patient: ``launch/patient``, not ``launch``."""
    return " ".join("launch/patient" if item == "launch" else item for item in scope.split())


def begin(config: WebConfig, http: requests.Session, iss: str,
          launch: str | None, *, aud: str | None = None,
          scope: str | None = None) -> PendingAuthorization:
    """Discover the issuer's endpoints and start an authorization (PKCE S256, fresh state).
    ``iss`` is the allowlisted FHIR base; ``aud`` the launch's ``iss`` as the EHR sent it;
    ``scope`` replaces the panel's (the worklist asks for its own, without a patient)."""
    try:
        smart = discovery.discover(iss, http, timeout=config.http_timeout)
        if scope is None:
            scope = config.scopes if launch else standalone_scopes(config.scopes)
        return ehr_launch.start_authorization(
            smart, iss=iss, aud=aud, client_id=config.client_id,
            redirect_uri=config.callback_url, scope=scope, launch=launch,
        )
    except (discovery.DiscoveryError, ehr_launch.LaunchRefused) as error:
        raise SignInFailed(str(error)) from None


def exchange_code(config: WebConfig, http: requests.Session, pending: PendingAuthorization,
                  code: str) -> TokenSet:
    """The launch's tokens; IdTokenRejected passes through (the launch is refused with its own
    page), every other failure is a SignInFailed."""
    try:
        return ehr_launch.exchange_code(http, pending, code=code, client_id=config.client_id,
                                        timeout=config.http_timeout)
    except (FhirError, ehr_launch.LaunchRefused, discovery.DiscoveryError) as error:
        raise SignInFailed(str(error)) from None


def refresh(config: WebConfig, http: requests.Session, token_endpoint: str,
            tokens: TokenSet) -> TokenSet:
    try:
        return ehr_launch.refresh(http, token_endpoint, tokens, client_id=config.client_id,
                                  timeout=config.http_timeout)
    except (FhirError, ehr_launch.LaunchRefused, discovery.DiscoveryError) as error:
        raise SignInFailed(str(error)) from None
