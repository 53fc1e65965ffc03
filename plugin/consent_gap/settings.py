# ruff: noqa: E501  (the variable table below is Markdown, copied into README as is)
"""Configuration of the scan, the scheduler and the app: environment first, then a TOML file.

Every setting has one environment variable, ``CONSENT_GAP_<NAME>``, and one key ``<name>`` in
the optional TOML file named by ``CONSENT_GAP_CONFIG`` (top-level keys, or under a
``[consent_gap]`` table). The environment wins over the file, the file over the default. A bad
value raises :class:`SettingsError` naming the variable, so an operator sees which line to fix.

| variable | TOML key | default | meaning |
|---|---|---|---|
| `CONSENT_GAP_CONFIG` | — | none | path of a TOML file holding any of the keys below |
| `CONSENT_GAP_FHIR_BASE` | `fhir_base` | none | FHIR R4 base URL the scan reads and writes |
| `CONSENT_GAP_AUTH` | `auth` | `none` | `none` (open server) or `backend` (SMART Backend Services) |
| `CONSENT_GAP_CLIENT_ID` | `client_id` | `consent-gap-scan` | backend-services client id registered with the EHR |
| `CONSENT_GAP_PRIVATE_KEY` | `private_key` | none | PEM file of the backend-services key (RS384 or ES384); required with `auth = backend` |
| `CONSENT_GAP_JWKS_FILE` | `jwks_file` | none (an empty JWKS) | the app: JSON file of the public keys it publishes at `/.well-known/jwks.json` (written by `consent-gap keys`; a private key in it is refused) |
| `CONSENT_GAP_TOKEN_URL` | `token_url` | discovered | token endpoint; default from `<fhir_base>/.well-known/smart-configuration` |
| `CONSENT_GAP_SCOPES` | `scopes` | the scan's `system/` scopes | scopes requested by the scan |
| `CONSENT_GAP_JURISDICTION` | `jurisdiction` | none (federal rules only) | ISO 3166-2 code, e.g. `US-CA` |
| `CONSENT_GAP_PRIVACY_OFFICER` | `privacy_officer` | none | reference of the privacy officer, e.g. `Practitioner/po-1`; alerts go there |
| `CONSENT_GAP_ORGANIZATION` | `organization` | none | reference of the practice, e.g. `Organization/org-1`; custodian of written notes; its name heads the accounting of disclosures |
| `CONSENT_GAP_STATE_DIR` | `state_dir` | `~/.local/state/consent-gap` | folder for the default database (SQLite) and the scheduler's lock |
| `CONSENT_GAP_DATABASE_URL` | `database_url` | `sqlite:///<state_dir>/consent-gap.db` | SQLAlchemy URL of the one database of the checkpoint, the scheduler's job store and, when set, the app's sessions; `postgresql://user:password@host/dbname` needs the `postgresql` extra |
| `CONSENT_GAP_CHECKPOINT_URL` | `checkpoint_url` | `CONSENT_GAP_DATABASE_URL` | the earlier name of `CONSENT_GAP_DATABASE_URL`, still honoured for the checkpoint and the job store (both set and different: refused) |
| `CONSENT_GAP_SCHEDULE` | `schedule` | `0 2 * * *` | cron expression (minute hour day month day-of-week) of the nightly scan |
| `CONSENT_GAP_TIMEZONE` | `timezone` | `UTC` | IANA time zone the schedule is read in |
| `CONSENT_GAP_BATCH_SIZE` | `batch_size` | `50` | patients fetched per batch of searches (1 to 500) |
| `CONSENT_GAP_MAPPINGS` | `mappings` | the packaged tables | folder of rule tables replacing the packaged `mappings/` |
| `CONSENT_GAP_ALLOWED_ISSUERS` | `allowed_issuers` | none | the app: FHIR base URLs (`iss`) allowed to launch it, space- or comma-separated (TOML: a list) |
| `CONSENT_GAP_APP_CLIENT_ID` | `app_client_id` | `consent-gap` | the app: client id registered with the EHR (public client, PKCE) |
| `CONSENT_GAP_PUBLIC_URL` | `public_url` | `http://127.0.0.1:8082` | the app: its own base URL as the browser sees it |
| `CONSENT_GAP_REDIRECT_URI` | `redirect_uri` | `<public_url>/callback` | the app: redirect URI registered with the EHR |
| `CONSENT_GAP_SECRET_KEY` | `secret_key` | random per process | the app: key that seals the server-side sessions; set it when running several workers |
| `CONSENT_GAP_DEV_INSECURE_COOKIES` | `dev_insecure_cookies` | `false` | the app: `true` drops `Secure` and uses `SameSite=Lax`, for plain http on localhost only |
| `CONSENT_GAP_FRAME_ANCESTORS` | `frame_ancestors` | the issuers' origins | the app: origins allowed to frame the panel (CSP `frame-ancestors`) |
| `CONSENT_GAP_SESSION_STORE` | `session_store` | `database` when `CONSENT_GAP_DATABASE_URL` is set, else `memory` | the app: `memory` (one process), `database` (the table `web_sessions` in `CONSENT_GAP_DATABASE_URL`, shared by gunicorn workers and hosts), `sqlite:PATH` or another SQLAlchemy URL |
| `CONSENT_GAP_SESSION_TTL` | `session_ttl` | `3600` | the app: seconds a session lives without use (60 to 86400) |
| `CONSENT_GAP_APP_SCOPES` | `app_scopes` | the panel's `patient/` scopes | the app: scopes requested at launch |
| `CONSENT_GAP_CDS_CLIENTS` | `cds_clients` (a table) | none (the CDS service refuses every call) | the app's CDS Hooks service: trusted CDS clients, space-separated `ISSUER=JWKS_URL` pairs (TOML: a table `[cds_clients]` of issuer = JWKS URL) |
| `CONSENT_GAP_NOTIFY_SECRET` | `notify_secret` | none (`/fhir-notify` refuses every call) | the secret the FHIR server's Subscriptions send in the `X-Consent-Gap-Secret` header (16+ printable characters) |
| `CONSENT_GAP_NOTIFY_URL` | `notify_url` | `<public_url>/fhir-notify` | where the FHIR server sends notifications (`consent-gap subscribe` writes it into the Subscriptions) |
| `CONSENT_GAP_NOTIFY_INTERVAL` | `notify_interval` | `3` | seconds between two drains of the notification queue by the scheduler (1 to 3600) |
| `CONSENT_GAP_DASK_SCHEDULER` | `dask_scheduler` | none | address of an existing Dask scheduler (e.g. `tcp://10.0.0.5:8786`) on which `scan --bulk` decides; needs the `dask` extra |
| `CONSENT_GAP_BULK_MAX_WAIT` | `bulk_max_wait` | `120` | `scan --bulk`: the longest wait in seconds between two polls of the export's status, whatever its `Retry-After` asks (HAPI always asks 120 s; the sandbox tests use 1) |

Adding a setting (e.g. for the web app) is two lines: a field on :class:`Settings` and a
:class:`Var` in :data:`VARIABLES` with its parser; the loader, the errors and ``describe()``
follow from them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "CONSENT_GAP_"
CONFIG_VARIABLE = "CONSENT_GAP_CONFIG"

SCAN_SCOPES = " ".join(
    f"system/{grant}"
    for grant in (
        "Patient.rs",  # .s too: the scan searches Patients by batch (`_id=a,b,c`)
        "Consent.rs",
        "Provenance.crs",
        "AuditEvent.rs",
        "DocumentReference.crus",
        "Communication.crs",
        "Device.crs",
        # Beyond DESIGN.md's list, as the panel (web/config.py): who may sign for the patient
        # (check 6) and a disclosed Observation's labels; unreadable, it is unresolved (review).
        "RelatedPerson.rs",
        "Observation.rs",
        # The scan reads the configured privacy officer and organization before it starts.
        "Practitioner.rs",
        "Organization.rs",
        # The privacy office's Task per flagged finding (CONTRACT 7). DESIGN.md grants no
        # search: a rerun relies on the conditional create (scan/scanner.py).
        "Task.cru",
    )
)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable to fix."""


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "consent-gap"


@dataclass(frozen=True)
class Settings:
    """All configuration, immutable once loaded. See the module docstring for the variables."""

    fhir_base: str | None = None
    auth: str = "none"
    client_id: str = "consent-gap-scan"
    private_key: Path | None = None
    jwks_file: Path | None = None
    token_url: str | None = None
    scopes: str = SCAN_SCOPES
    jurisdiction: str | None = None
    privacy_officer: str | None = None
    organization: str | None = None
    state_dir: Path = field(default_factory=_default_state_dir)
    database: str | None = None  # CONSENT_GAP_DATABASE_URL (`database_url` is the resolved URL)
    checkpoint_url: str | None = None
    schedule: str = "0 2 * * *"
    timezone: str = "UTC"
    batch_size: int = 50
    mappings: Path | None = None
    # The app in the chart (web/): see web/config.py for how these are used.
    allowed_issuers: tuple[str, ...] = ()
    app_client_id: str = "consent-gap"
    public_url: str = "http://127.0.0.1:8082"
    redirect_uri: str | None = None
    secret_key: str | None = None
    dev_insecure_cookies: bool = False
    frame_ancestors: tuple[str, ...] = ()
    session_store: str | None = None
    session_ttl: int = 3600
    app_scopes: str | None = None
    # CDS Hooks clients (EHRs) trusted to call the patient-view service: (issuer, JWKS URL).
    cds_clients: tuple[tuple[str, str], ...] = ()
    # FHIR Subscriptions (rest-hook): the secret header HAPI sends to /fhir-notify, the URL it
    # sends to (default <public_url>/fhir-notify), and how often the scheduler drains the queue.
    notify_secret: str | None = None
    notify_url: str | None = None
    notify_interval: int = 3
    # Bulk scans: the address of an existing Dask scheduler that decides (scan --bulk).
    dask_scheduler: str | None = None
    # Bulk scans: the longest wait between two polls of an export, whatever Retry-After says.
    bulk_max_wait: int = 120

    @property
    def database_url(self) -> str:
        """The database of the checkpoint and the job store: CONSENT_GAP_DATABASE_URL (or its
        earlier name CONSENT_GAP_CHECKPOINT_URL), else a SQLite file in the state folder."""
        if self.database or self.checkpoint_url:
            return self.database or self.checkpoint_url or ""
        return f"sqlite:///{self.state_dir / 'consent-gap.db'}"

    @property
    def session_url(self) -> str:
        """Where the app keeps its sessions: ``memory`` or a SQLAlchemy URL. Unset, they
        follow CONSENT_GAP_DATABASE_URL when that is set (several workers, several hosts),
        else stay in the process's memory (development)."""
        store = self.session_store or ("database" if self.database else "memory")
        if store == "database":
            return self.database_url
        if store.startswith("sqlite:") and not store.startswith("sqlite://"):
            return "sqlite:///" + str(Path(store.removeprefix("sqlite:")).expanduser())
        return store

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with command-line values applied (``None`` means: keep the setting). Text
        values go through the setting's parser; an error names the option (``--fhir-base``)."""
        parsers = {var.name: var.parse for var in VARIABLES}
        changes = {}
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, str) and key in parsers:
                try:
                    value = parsers[key](value)
                except ValueError as error:
                    raise SettingsError(f"--{key.replace('_', '-')}: {error}") from None
            changes[key] = value
        merged = replace(self, **changes)
        _check(merged)
        return merged


# ---- parsers: each takes the raw value (str from the environment, any TOML type from the file)

def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError("must be a string")
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _url(raw: Any) -> str:
    value = _text(raw).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return value


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = _text(raw).lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _path(raw: Any) -> Path:
    return Path(_text(raw)).expanduser()


_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _reference(*types: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = _text(raw)
        if not _REFERENCE.match(value) or value.split("/", 1)[0] not in types:
            raise ValueError(f"must be a reference like {types[0]}/id (one of {', '.join(types)})")
        return value

    return parse


def _jurisdiction(raw: Any) -> str:
    value = _text(raw).upper()
    if not re.fullmatch(r"[A-Z]{2}-[A-Z0-9]{1,3}", value):
        raise ValueError("must be an ISO 3166-2 code like US-CA")
    return value


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        try:
            value = int(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            raise ValueError("must be a whole number") from None
        if isinstance(raw, bool) or not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _cron(raw: Any) -> str:
    value = " ".join(_text(raw).split())
    if len(value.split(" ")) != 5:
        raise ValueError("must be a cron expression of 5 fields: minute hour day month weekday")
    return value


def _timezone(raw: Any) -> str:
    value = _text(raw)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as UTC or America/Los_Angeles") from None
    return value


def _scopes(raw: Any) -> str:
    if isinstance(raw, list):
        raw = " ".join(str(item) for item in raw)
    return " ".join(_text(raw).split())


def _url_list(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else re.split(r"[\s,]+", _text(raw))
    return tuple(_url(item) for item in items if str(item).strip())


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = _text(raw).lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


_CDS_PAIR = re.compile(r"^(\S+?)=(https?://\S+)$")


def _cds_clients(raw: Any) -> tuple[tuple[str, str], ...]:
    """Issuer -> JWKS URL pairs. The environment gives `ISSUER=JWKS_URL ...` (split at the first
    `=` that starts a URL, so an issuer may hold none but a JWKS URL may carry a query); TOML a
    table. Only these keys verify a CDS client's JWT: a `jku` in the token is never fetched."""
    if isinstance(raw, dict):
        items = [(str(k), v) for k, v in raw.items()]
    else:
        items = []
        for word in _text(raw).split():
            match = _CDS_PAIR.match(word)
            if not match:
                raise ValueError(f"{word!r} is not ISSUER=JWKS_URL")
            items.append((match[1], match[2]))
    pairs: dict[str, str] = {}
    for issuer, jwks_url in items:
        issuer = issuer.strip()
        if not issuer or any(c.isspace() for c in issuer):
            raise ValueError("an issuer must be a non-empty word")
        try:
            url = _url(jwks_url)
        except ValueError:
            raise ValueError(f"the JWKS URL of {issuer!r} must be an http(s) URL") from None
        if issuer in pairs:
            raise ValueError(f"issuer {issuer!r} is listed twice")
        pairs[issuer] = url
    return tuple(pairs.items())


def _secret(raw: Any) -> str:
    """A shared secret sent in an HTTP header: at least 16 printable characters, no spaces."""
    value = _text(raw)
    if len(value) < 16 or not all(33 <= ord(c) < 127 for c in value):
        raise ValueError("must be at least 16 printable ASCII characters without spaces")
    return value


def _database_url(raw: Any) -> str:
    from consent_gap.database import parse_url

    value = _text(raw)
    parse_url(value)
    return value


def _session_store(raw: Any) -> str:
    value = _text(raw)
    if value in ("memory", "database"):
        return value
    if value.startswith("sqlite:") and not value.startswith("sqlite://"):
        return value  # sqlite:PATH, the earlier form
    try:
        return _database_url(value)
    except ValueError:
        raise ValueError("must be memory, database, sqlite:PATH or a SQLAlchemy URL") from None


@dataclass(frozen=True)
class Var:
    """One setting: the Settings field it fills, how to parse it, what it is for."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    key: str | None = None  # the variable's and TOML key's name when it differs from `name`

    @property
    def toml_key(self) -> str:
        return self.key or self.name

    @property
    def env(self) -> str:
        return PREFIX + self.toml_key.upper()


VARIABLES: tuple[Var, ...] = (
    Var("fhir_base", _url, "FHIR R4 base URL the scan reads and writes"),
    Var("auth", _choice("none", "backend"), "none or backend (SMART Backend Services)"),
    Var("client_id", _text, "backend-services client id"),
    Var("private_key", _path, "PEM file of the backend-services private key"),
    Var("jwks_file", _path, "public JWKS file the app publishes"),
    Var("token_url", _url, "token endpoint (default: SMART discovery)"),
    Var("scopes", _scopes, "scopes the scan requests"),
    Var("jurisdiction", _jurisdiction, "ISO 3166-2 code such as US-CA"),
    Var("privacy_officer", _reference("Practitioner", "PractitionerRole"),
        "reference of the privacy officer"),
    Var("organization", _reference("Organization"), "reference of the practice"),
    Var("state_dir", _path, "folder of the default database"),
    Var("database", _database_url, "SQLAlchemy URL of the checkpoint, job store and sessions",
        key="database_url"),
    Var("checkpoint_url", _database_url, "earlier name of CONSENT_GAP_DATABASE_URL"),
    Var("schedule", _cron, "cron expression of the nightly scan"),
    Var("timezone", _timezone, "IANA time zone of the schedule"),
    Var("batch_size", _integer(1, 500), "patients per batch of searches"),
    Var("mappings", _path, "folder of rule tables replacing the packaged ones"),
    Var("allowed_issuers", _url_list, "FHIR base URLs allowed to launch the app"),
    Var("app_client_id", _text, "the app's client id (public, PKCE)"),
    Var("public_url", _url, "the app's own base URL"),
    Var("redirect_uri", _url, "the app's registered redirect URI"),
    Var("secret_key", _text, "key sealing the app's server-side sessions"),
    Var("dev_insecure_cookies", _boolean, "plain-http cookies for localhost development"),
    Var("frame_ancestors", _url_list, "origins allowed to frame the panel"),
    Var("session_store", _session_store, "memory, database, sqlite:PATH or a SQLAlchemy URL"),
    Var("session_ttl", _integer(60, 86400), "seconds a session lives without use"),
    Var("app_scopes", _scopes, "scopes the app requests at launch"),
    Var("cds_clients", _cds_clients, "CDS Hooks clients trusted by the app: ISSUER=JWKS_URL"),
    Var("notify_secret", _secret, "secret header of the FHIR Subscriptions' notifications"),
    Var("notify_url", _url, "where the FHIR server sends notifications (the app's /fhir-notify)"),
    Var("notify_interval", _integer(1, 3600), "seconds between two drains of the notifications"),
    Var("dask_scheduler", _text, "address of a Dask scheduler deciding bulk scans"),
    Var("bulk_max_wait", _integer(1, 3600), "longest wait in seconds between two export polls"),
)


def _read_file(path_text: str) -> dict[str, Any]:
    path = Path(path_text).expanduser()
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"{CONFIG_VARIABLE}: no such file: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"{CONFIG_VARIABLE}: cannot read {path}: {error}") from None
    if isinstance(data.get("consent_gap"), dict):
        data = data["consent_gap"]
    known = {var.toml_key for var in VARIABLES}
    unknown = sorted(key for key in data if key not in known)
    if unknown:
        raise SettingsError(f"{CONFIG_VARIABLE}: unknown key(s) in {path}: {', '.join(unknown)}")
    return data


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``environ`` (default: the process environment) and the file it
    names. Empty environment values count as unset, so ``VAR=`` does not erase a file value."""
    env = os.environ if environ is None else environ
    from_file = _read_file(env[CONFIG_VARIABLE]) if env.get(CONFIG_VARIABLE) else {}
    values: dict[str, Any] = {}
    for var in VARIABLES:
        raw_env = env.get(var.env)
        if raw_env is not None and raw_env.strip():
            source, raw = var.env, raw_env
        elif var.toml_key in from_file:
            source, raw = f"{var.toml_key} in {env[CONFIG_VARIABLE]}", from_file[var.toml_key]
        else:
            continue
        try:
            values[var.name] = var.parse(raw)
        except ValueError as error:
            raise SettingsError(f"{source}: {error}") from None
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    """Rules that involve more than one setting."""
    if settings.auth == "backend" and settings.private_key is None:
        raise SettingsError(f"{PREFIX}PRIVATE_KEY: required when {PREFIX}AUTH is backend")
    if settings.database and settings.checkpoint_url \
            and settings.database != settings.checkpoint_url:
        raise SettingsError(f"{PREFIX}DATABASE_URL and {PREFIX}CHECKPOINT_URL name different "
                            f"databases; set only {PREFIX}DATABASE_URL")


def require(settings: Settings, *names: str) -> None:
    """Raise a SettingsError naming the variable of the first of ``names`` that is unset."""
    for name in names:
        if getattr(settings, name) in (None, ""):
            raise SettingsError(f"{PREFIX}{name.upper()} is not set")


def describe(settings: Settings) -> dict[str, str]:
    """The settings for display (``--status``, logs): paths and URLs, no key material."""
    shown: dict[str, str] = {}
    for item in fields(settings):
        value = getattr(settings, item.name)
        if item.name == "checkpoint_url":
            value = _hide_password(settings.database_url)
        elif item.name == "database" and value:
            value = _hide_password(value)
        elif item.name == "session_store":
            value = _hide_password(settings.session_url)
        elif item.name in ("secret_key", "notify_secret") and value:
            value = "***"
        shown[item.name] = "" if value is None else str(value)
    return shown


def _hide_password(url: str) -> str:
    return re.sub(r"(//[^:/@]+:)[^@]+@", r"\1***@", url)
