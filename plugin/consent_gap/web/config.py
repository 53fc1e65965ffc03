"""What the web app needs from the settings, resolved once when the app is built.

The settings module holds the raw variables (``CONSENT_GAP_*``); this module derives what the
app uses at run time: the allowlisted issuers, the origins allowed to frame the panel, the
redirect URI, the cookie flags. Keeping the derivation here keeps settings.py a plain list of
variables and lets the tests build a config without touching the environment.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from consent_gap.settings import Settings

log = logging.getLogger(__name__)

# DESIGN's panel scopes plus two reads the contract needs: RelatedPerson (who may sign for
# a minor or as guardian, CONTRACT 1.2 check 6, 1.3 first row, 1.4) and Observation (a disclosed
# record such as a risk assessment; unreadable, it is unresolved and the decision is review).
# A server that does not grant them leaves those reads out; the panel then decides on less.
PANEL_SCOPES = " ".join(
    [
        "launch",
        "openid",
        "fhirUser",
        "online_access",
        "patient/Patient.r",
        "patient/Consent.rs",
        "patient/Provenance.crs",
        "patient/AuditEvent.rs",
        "patient/DocumentReference.crus",
        "patient/Communication.crs",
        "patient/Device.crs",
        "patient/RelatedPerson.rs",
        "patient/Observation.rs",
        # DESIGN's scopes for CONTRACT 6-8: before a disclosure the panel records it, drafts
        # and signs authorizations and finds recipients; the accounting names recipients.
        "patient/AuditEvent.c",
        "patient/Consent.cu",
        "patient/Task.rs",
        # CONTRACT 7: the privacy office's Task goes with the alert the panel or the guide
        # writes for an unauthorized disclosure (without it, the next scan writes it).
        "patient/Task.c",
        "patient/Practitioner.rs",
        "patient/Organization.rs",
    ]
)

def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased: what CSP and the Origin header compare."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


@dataclass(frozen=True)
class WebConfig:
    """Run-time configuration of the app (see README for the variables behind each field)."""

    # The defaults are the settings' (one place to change them); None, False and () mean unset.
    allowed_issuers: tuple[str, ...] = ()
    client_id: str = Settings.app_client_id
    public_url: str = Settings.public_url
    redirect_uri: str | None = None
    secret_key: str | None = None
    dev_insecure_cookies: bool = False
    frame_ancestors: tuple[str, ...] = ()
    session_store: str = "memory"  # or a SQLAlchemy URL (Settings.session_url)
    session_ttl: int = Settings.session_ttl
    scopes: str = PANEL_SCOPES
    jurisdiction: str | None = None
    privacy_officer: str | None = None
    organization: str | None = None
    jwks_file: Path | None = None  # public keys only: the web tier never holds a private key
    mappings: Path | None = None
    http_timeout: float = 15.0
    cds_clients: tuple[tuple[str, str], ...] = ()  # CDS Hooks: (issuer, JWKS URL)
    notify_secret: str | None = None  # /fhir-notify: the Subscriptions' shared secret
    database_url: str = "sqlite://"  # the checkpoint database, home of the notification queue

    @property
    def callback_url(self) -> str:
        return self.redirect_uri or self.public_url.rstrip("/") + "/callback"

    @property
    def public_origin(self) -> str:
        return origin_of(self.public_url)

    @property
    def ancestor_origins(self) -> tuple[str, ...]:
        """Origins that may frame the panel: the configured list, else the issuers' origins
        (an EHR usually serves its chart from the same origin as its FHIR endpoint)."""
        if self.frame_ancestors:
            return tuple(dict.fromkeys(origin_of(item) for item in self.frame_ancestors))
        return tuple(dict.fromkeys(origin_of(iss) for iss in self.allowed_issuers))

    def resolved_secret(self) -> str:
        if self.secret_key:
            return self.secret_key
        log.warning(
            "CONSENT_GAP_SECRET_KEY is not set: using a random key; sessions end when the "
            "process restarts and are not shared between workers"
        )
        return secrets.token_urlsafe(48)


def from_settings(settings: object) -> WebConfig:
    """Build the web config from a :class:`consent_gap.settings.Settings`. Fields the settings
    do not (yet) define keep their defaults, so the app runs on any settings version."""
    values: dict = {}
    mapping = {
        "allowed_issuers": "allowed_issuers",
        "client_id": "app_client_id",
        "public_url": "public_url",
        "redirect_uri": "redirect_uri",
        "secret_key": "secret_key",
        "dev_insecure_cookies": "dev_insecure_cookies",
        "frame_ancestors": "frame_ancestors",
        "session_store": "session_url",
        "session_ttl": "session_ttl",
        "scopes": "app_scopes",
        "jurisdiction": "jurisdiction",
        "privacy_officer": "privacy_officer",
        "organization": "organization",
        "jwks_file": "jwks_file",
        "mappings": "mappings",
        "cds_clients": "cds_clients",
        "notify_secret": "notify_secret",
        "database_url": "database_url",
    }
    for field_name, setting_name in mapping.items():
        value = getattr(settings, setting_name, None)
        if value is None:
            continue
        if field_name in ("allowed_issuers", "frame_ancestors"):
            value = tuple(value)
        values[field_name] = value
    return WebConfig(**values)
