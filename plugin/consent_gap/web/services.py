"""The app's services, each with a typed accessor (the Flask tutorial's ``get_db`` style).

`create_app` installs them once with `install`; a view or helper asks for what it needs by
calling `config()`, `http()`, `prefetcher()` or `cds_verifier()`, never by a string key into
``current_app.extensions``: the keys are known here only, and a type checker sees the types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import requests
from flask import Flask, current_app

from .config import WebConfig

if TYPE_CHECKING:
    from .cds_auth import CdsVerifier
    from .chart import Prefetcher

T = TypeVar("T")

# Keys in app.extensions: named here only.
_CONFIG = "consent_gap"
_HTTP = "consent_gap.http"
_PREFETCH = "consent_gap.prefetch"
_CDS_VERIFIER = "consent_gap.cds_verifier"


def install(app: Flask, config: WebConfig, http: requests.Session,
            prefetcher: Prefetcher) -> None:
    app.extensions[_CONFIG] = config
    app.extensions[_HTTP] = http
    app.extensions[_PREFETCH] = prefetcher


def config() -> WebConfig:
    """The app's configuration (settings as the web tier reads them)."""
    return current_app.extensions[_CONFIG]


def http() -> requests.Session:
    """The outbound HTTP session: discovery, tokens and FHIR share its connection pool."""
    return current_app.extensions[_HTTP]


def prefetcher() -> Prefetcher:
    """The per-process prefetcher that starts a launch's first read at /callback."""
    return current_app.extensions[_PREFETCH]


def kept(name: str, make: Callable[[], T]) -> T:
    """A per-app object a blueprint keeps for itself (e.g. the guide's opened charts), made
    on first use: one place that names the keys."""
    key = f"consent_gap.{name}"
    found = current_app.extensions.get(key)
    if found is None:
        found = current_app.extensions.setdefault(key, make())
    return found


def cds_verifier() -> CdsVerifier:
    """The CDS client JWT verifier, built on first use (its JWKS cache lives as long as the
    app)."""
    verifier = current_app.extensions.get(_CDS_VERIFIER)
    if verifier is None:
        from .cds_auth import CdsVerifier, JwksCache

        verifier = CdsVerifier(dict(config().cds_clients), JwksCache(http()))
        current_app.extensions[_CDS_VERIFIER] = verifier
    return verifier
