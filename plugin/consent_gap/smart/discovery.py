"""SMART discovery: `{iss}/.well-known/smart-configuration`, validated and cached.

The configuration says where to send the user (authorize) and where to get tokens. An endpoint
taken from a forged or garbled document would receive codes or assertions, so every endpoint
must be an absolute https URL (plain http only on a loopback host, for the local sandbox).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

WELL_KNOWN = ".well-known/smart-configuration"
DEFAULT_TTL = 3600.0


class DiscoveryError(ValueError):
    """The issuer's SMART configuration is unreachable, not JSON, or unusable."""


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, what: str) -> str:
    """`url` if it is absolute https, or http on a loopback host; DiscoveryError otherwise."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.netloc or parts.scheme not in ("https", "http"):
        raise DiscoveryError(f"{what} is not an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise DiscoveryError(f"{what} must use https (plain http only on a loopback host)")
    return url


@dataclass(frozen=True)
class SmartConfiguration:
    """The parts of a SMART configuration the app uses; `raw` keeps the whole document."""

    issuer: str
    token_endpoint: str
    authorization_endpoint: str | None = None
    capabilities: tuple[str, ...] = ()
    code_challenge_methods_supported: tuple[str, ...] = ()
    grant_types_supported: tuple[str, ...] = ()
    token_endpoint_auth_methods_supported: tuple[str, ...] = ()
    token_endpoint_auth_signing_alg_values_supported: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()
    jwks_uri: str | None = None
    #: The OpenID Connect issuer (`issuer`): what an id_token's `iss` must equal, when given.
    openid_issuer: str | None = None
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    @property
    def supports_s256(self) -> bool:
        return "S256" in self.code_challenge_methods_supported

    @classmethod
    def from_document(cls, issuer: str, doc: Any) -> SmartConfiguration:
        """Validate and keep a parsed `.well-known/smart-configuration` document."""
        if not isinstance(doc, Mapping):
            raise DiscoveryError("smart-configuration is not a JSON object")

        def strings(name: str) -> tuple[str, ...]:
            value = doc.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DiscoveryError(f"smart-configuration {name} is not a list of strings")
            return tuple(value)

        def endpoint(name: str, required: bool) -> str | None:
            value = doc.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not value:
                raise DiscoveryError(f"smart-configuration has no {name}")
            return require_secure_url(value, name)

        grants = strings("grant_types_supported")
        needs_authorize = not grants or "authorization_code" in grants
        return cls(
            issuer=issuer,
            token_endpoint=endpoint("token_endpoint", True) or "",
            authorization_endpoint=endpoint("authorization_endpoint", needs_authorize),
            capabilities=strings("capabilities"),
            code_challenge_methods_supported=strings("code_challenge_methods_supported"),
            grant_types_supported=grants,
            token_endpoint_auth_methods_supported=strings("token_endpoint_auth_methods_supported"),
            token_endpoint_auth_signing_alg_values_supported=strings(
                "token_endpoint_auth_signing_alg_values_supported"),
            scopes_supported=strings("scopes_supported"),
            jwks_uri=endpoint("jwks_uri", False),
            openid_issuer=doc["issuer"] if isinstance(doc.get("issuer"), str) and doc["issuer"]
            else None,
            revocation_endpoint=endpoint("revocation_endpoint", False),
            introspection_endpoint=endpoint("introspection_endpoint", False),
            raw=dict(doc),
        )


_cache: dict[str, tuple[float, SmartConfiguration]] = {}
_cache_lock = threading.Lock()


_jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}

#: The key types a JWKS may hold for signatures the app accepts (never a shared secret).
ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC"})


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
        _jwks_cache.clear()


def discover(
    iss: str,
    session: requests.Session,
    *,
    timeout: float | tuple[float, float] = (5.0, 10.0),
    ttl: float = DEFAULT_TTL,
    clock: Callable[[], float] = time.monotonic,
) -> SmartConfiguration:
    """Fetch (or take from the cache, for `ttl` seconds) the issuer's SMART configuration.

    `iss` is the FHIR base URL; redirects are not followed (a redirect to another host would
    be a place to forge endpoints). Raises DiscoveryError with a one-line reason."""
    require_secure_url(iss, "the issuer")
    key = iss.rstrip("/")
    now = clock()
    with _cache_lock:
        hit = _cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
    doc = _get_json(session, f"{key}/{WELL_KNOWN}", "smart-configuration", timeout)
    config = SmartConfiguration.from_document(key, doc)
    with _cache_lock:
        _cache[key] = (now + ttl, config)
    return config


def fetch_jwks(
    uri: str,
    session: requests.Session,
    *,
    timeout: float | tuple[float, float] = (5.0, 10.0),
    ttl: float = DEFAULT_TTL,
    refresh: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The issuer's published signing keys (`jwks_uri`), cached for `ttl` seconds unless
    `refresh`. Only RSA and EC public keys are kept: a symmetric (`oct`) or private member
    would let a forged token verify. Redirects are not followed, as for the configuration."""
    require_secure_url(uri, "jwks_uri")
    now = clock()
    with _cache_lock:
        hit = _jwks_cache.get(uri)
        if hit and hit[0] > now and not refresh:
            return hit[1]
    doc = _get_json(session, uri, "jwks_uri", timeout)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
        raise DiscoveryError("jwks_uri is not a JSON Web Key Set")
    keys = [key for key in doc["keys"] if isinstance(key, Mapping)
            and key.get("kty") in ASYMMETRIC_KEY_TYPES and "d" not in key
            and key.get("use", "sig") == "sig"]
    jwks = {"keys": keys}
    with _cache_lock:
        _jwks_cache[uri] = (now + ttl, jwks)
    return jwks


def _get_json(session: requests.Session, url: str, what: str,
              timeout: float | tuple[float, float]) -> Any:
    """GET a JSON document of the issuer's without following redirects (a redirect to another
    host would be a place to forge it); DiscoveryError with a one-line reason."""
    try:
        resp = session.get(url, headers={"Accept": "application/json"}, timeout=timeout,
                           allow_redirects=False)
    except requests.RequestException as exc:
        raise DiscoveryError(f"cannot reach the issuer's {what} ({type(exc).__name__})") from exc
    if resp.status_code != 200:
        raise DiscoveryError(f"{what} answered HTTP {resp.status_code}")
    try:
        return resp.json()
    except ValueError as exc:
        raise DiscoveryError(f"{what} is not JSON") from exc
