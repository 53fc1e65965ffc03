"""The launcher's configuration: its addresses, the sandbox user and the registered clients.

Clients are registered from a TOML file (sandbox/smart/clients.toml); see that file for the
fields. Key files named there are relative to the keys folder and are generated when absent.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .keys import ensure_key, public_jwk

CLIENT_TYPES = ("public", "confidential-asymmetric", "backend")
SUPPORTED_ALGS = ("RS384", "ES384")


class ConfigError(ValueError):
    """A clients file that cannot be used; the message names the file and the client."""


@dataclass(frozen=True)
class ClientSpec:
    """One registered client, as clients.toml describes it."""

    client_id: str
    client_type: str
    name: str = ""
    scope: str = ""
    redirect_uris: tuple[str, ...] = ()
    launch_url: str | None = None
    # The app's launch URL from a non-patient context (the EHR's "Privacy office" entry).
    office_launch_url: str | None = None
    auto_approve: bool = False
    jwks: dict | None = None  # public keys by value
    jwks_uri: str | None = None  # public keys by URL
    key_file: Path | None = None  # the private key the launcher generated for this client
    alg: str | None = None
    grant_types: tuple[str, ...] = ()
    cds_services: str | None = None  # the app's CDS Hooks discovery URL, called on chart open

    @property
    def auth_method(self) -> str:
        return "none" if self.client_type == "public" else "private_key_jwt"


class LauncherUrls:
    """The launcher's own URLs, derived from its `origin` (scheme://host:port): one place for
    the app's configuration and the test harness that drives a running launcher."""

    origin: str

    @property
    def fhir_base(self) -> str:
        return f"{self.origin}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.origin}/oauth/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.origin}/oauth/authorize"


@dataclass
class LauncherConfig(LauncherUrls):
    """Everything create_app needs. `origin` is the launcher's own scheme://host:port."""

    origin: str
    upstream: str
    keys_dir: Path
    clients: dict[str, ClientSpec] = field(default_factory=dict)
    practitioner: str = "sandbox-practitioner"
    practitioner_name: str = "Dana Sandbox"
    access_token_lifetime: int = 3600
    backend_token_lifetime: int = 300
    published_jwks: dict[str, dict] = field(default_factory=dict)  # client_id -> JWKS served by us
    # The EHR's own key as a CDS Hooks client (signs the JWT of each hook call).
    cds_client_key: str = "ehr-cds-client.pem"
    cds_client_alg: str = "ES384"


def load_config(
    clients_file: Path, *, origin: str, upstream: str, keys_dir: Path,
    app_origin: str | None = None,
) -> LauncherConfig:
    """Read the clients file, creating the key pairs it names that do not exist yet.
    ``app_origin`` moves the clients registered at the file's ``[launcher] app_origin`` (the
    consent-gap app, http://127.0.0.1:8082) to another origin (sandbox/app's APP_PORT)."""
    try:
        data = tomllib.loads(clients_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{clients_file}: {exc}") from exc
    launcher = data.get("launcher", {})
    registered_origin = str(launcher.get("app_origin", "")).rstrip("/")
    if app_origin and registered_origin:
        data["clients"] = [_moved(entry, registered_origin, app_origin.rstrip("/"))
                           for entry in data.get("clients", [])]
    config = LauncherConfig(
        origin=origin.rstrip("/"),
        upstream=upstream.rstrip("/"),
        keys_dir=keys_dir,
        practitioner=str(launcher.get("practitioner", "sandbox-practitioner")),
        practitioner_name=str(launcher.get("practitioner_name", "Dana Sandbox")),
        access_token_lifetime=int(launcher.get("access_token_lifetime", 3600)),
        backend_token_lifetime=int(launcher.get("backend_token_lifetime", 300)),
        cds_client_key=str(launcher.get("cds_client_key", "ehr-cds-client.pem")),
        cds_client_alg=str(launcher.get("cds_client_alg", "ES384")),
    )
    if config.cds_client_alg not in SUPPORTED_ALGS:
        raise ConfigError(f"{clients_file}: cds_client_alg must be one of "
                          f"{', '.join(SUPPORTED_ALGS)}")
    for index, entry in enumerate(data.get("clients", [])):
        spec = _client(entry, index, clients_file, config)
        if spec.client_id in config.clients:
            raise ConfigError(f"{clients_file}: client {spec.client_id!r} is registered twice")
        config.clients[spec.client_id] = spec
    return config


def _moved(entry: dict, old: str, new: str) -> dict:
    """A client entry whose app URLs at origin ``old`` now point at ``new``."""
    def move(url: object) -> object:
        return new + url[len(old):] if isinstance(url, str) and url.startswith(old + "/") else url

    moved = dict(entry)
    for name in ("launch_url", "cds_services"):
        if name in moved:
            moved[name] = move(moved[name])
    if "redirect_uris" in moved:
        moved["redirect_uris"] = [move(uri) for uri in moved["redirect_uris"]]
    return moved


def _client(entry: dict, index: int, source: Path, config: LauncherConfig) -> ClientSpec:
    client_id = entry.get("client_id")
    where = f"{source}: clients[{index}] ({client_id or 'no client_id'})"
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError(f"{where}: client_id is required")
    client_type = entry.get("type", "public")
    if client_type not in CLIENT_TYPES:
        raise ConfigError(f"{where}: type must be one of {', '.join(CLIENT_TYPES)}")
    defaults = {
        "public": ("authorization_code", "refresh_token"),
        "confidential-asymmetric": ("authorization_code", "refresh_token"),
        "backend": ("client_credentials",),
    }[client_type]
    jwks, jwks_uri, key_file, alg = None, None, None, entry.get("alg")
    if client_type != "public":
        if alg not in SUPPORTED_ALGS:
            raise ConfigError(f"{where}: alg must be one of {', '.join(SUPPORTED_ALGS)}")
        jwks_uri = entry.get("jwks_uri")
        if jwks_uri:
            jwks_uri = str(jwks_uri).replace("{origin}", config.origin)
        if "jwks" in entry:
            jwks = {"keys": list(entry["jwks"])}
        if entry.get("key"):
            key_file = config.keys_dir / str(entry["key"])
            key = ensure_key(key_file, alg)
            published = {"keys": [public_jwk(key, alg)]}
            if jwks_uri:
                config.published_jwks[client_id] = published
            elif jwks is None:
                jwks = published
        if jwks is None and not jwks_uri:
            raise ConfigError(
                f"{where}: a backend or confidential client needs key, jwks or jwks_uri"
            )
    return ClientSpec(
        client_id=client_id,
        client_type=client_type,
        name=str(entry.get("name", client_id)),
        scope=" ".join(str(entry.get("scope", "")).split()),
        redirect_uris=tuple(entry.get("redirect_uris", ())),
        launch_url=entry.get("launch_url"),
        office_launch_url=entry.get("office_launch_url"),
        auto_approve=bool(entry.get("auto_approve", False)),
        jwks=jwks,
        jwks_uri=jwks_uri,
        key_file=key_file,
        alg=alg,
        grant_types=tuple(entry.get("grant_types", defaults)),
        cds_services=entry.get("cds_services"),
    )
