"""SMART on FHIR, client side: discovery, EHR launch (PKCE, the id_token verified, granted
scopes), Backend Services, signing keys."""

from consent_gap.smart.backend import BackendServicesAuth, make_client_assertion
from consent_gap.smart.discovery import DiscoveryError, SmartConfiguration, discover
from consent_gap.smart.ehr_launch import (
    IssuerNotAllowed,
    LaunchRefused,
    PendingAuthorization,
    TokenSet,
    exchange_code,
    refresh,
    require_allowed_issuer,
    start_authorization,
)
from consent_gap.smart.idtoken import IdTokenRejected
from consent_gap.smart.keys import SigningKey, ensure_signing_key, load_signing_key, public_jwks
from consent_gap.smart.tokens import TokenError

__all__ = [
    "BackendServicesAuth",
    "DiscoveryError",
    "IdTokenRejected",
    "IssuerNotAllowed",
    "LaunchRefused",
    "PendingAuthorization",
    "SigningKey",
    "SmartConfiguration",
    "TokenError",
    "TokenSet",
    "discover",
    "ensure_signing_key",
    "exchange_code",
    "load_signing_key",
    "make_client_assertion",
    "public_jwks",
    "refresh",
    "require_allowed_issuer",
    "start_authorization",
]
