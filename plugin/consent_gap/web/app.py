"""The Flask app factory: configuration, session store, security, blueprints, error pages."""

from __future__ import annotations

import logging

import requests
from flask import Flask
from werkzeug.exceptions import HTTPException

from . import security, services
from .config import WebConfig, from_settings
from .sessions import COOKIE_NAME, ServerSessionInterface, SessionStore, make_store

log = logging.getLogger(__name__)


def create_app(
    settings: object | None = None,
    *,
    config: WebConfig | None = None,
    store: SessionStore | None = None,
    http: requests.Session | None = None,
) -> Flask:
    """Build the app.

    ``settings``: a :class:`consent_gap.settings.Settings` (default: loaded from the
    environment). ``config`` overrides it with a ready :class:`WebConfig` (tests). ``store``
    replaces the session store named by the config; ``http`` the outbound HTTP session (its
    connection pool is shared by discovery, token and FHIR calls).
    """
    if config is None:
        if settings is None:
            from consent_gap.settings import load_settings

            settings = load_settings()
        config = from_settings(settings)

    if store is None and config.session_store != "memory" and not config.secret_key:
        # Several workers share the store; a random key per worker would seal rows the others
        # cannot open, and every other request would look like an expired session.
        raise ValueError("CONSENT_GAP_SECRET_KEY is required with a shared session store")
    # Load (and so validate) the rule tables now: a broken table stops the boot with a
    # MappingsError naming it, instead of failing every panel; the result stays cached.
    from consent_gap.mappings import load_rules

    load_rules(config.mappings)
    if config.jwks_file is not None:  # an unusable JWKS file stops the boot too
        from consent_gap.smart.keys import KeyFileError, read_jwks

        try:
            read_jwks(config.jwks_file)
        except KeyFileError as error:
            raise ValueError(f"CONSENT_GAP_JWKS_FILE: {error}") from None
    app = Flask(__name__)
    from .worklist import UploadRequest

    app.request_class = UploadRequest  # 64 KB, but for the scan of a signed authorization
    secret = config.resolved_secret()
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=not config.dev_insecure_cookies,
        # In an EHR's iframe the app is a third party: only SameSite=None cookies reach it.
        # Plain http on localhost cannot set those (browsers demand Secure), and there the
        # EHR page and the app are same-site anyway, so Lax works.
        SESSION_COOKIE_SAMESITE="Lax" if config.dev_insecure_cookies else "None",
        SESSION_COOKIE_PARTITIONED=not config.dev_insecure_cookies,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.json.sort_keys = False  # keep the contract's key order in /api/findings
    from .chart import Prefetcher

    services.install(app, config, http or _http_session(), Prefetcher())
    app.session_interface = ServerSessionInterface(
        store if store is not None else make_store(config.session_store), secret,
        config.session_ttl,
    )
    security.install(app, config)
    _register_blueprints(app)
    _register_errors(app)
    if config.dev_insecure_cookies:
        log.warning("development cookies: Secure is off; use only with plain http on localhost")
    return app


def _http_session() -> requests.Session:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    return session


def _register_blueprints(app: Flask) -> None:
    from .accounting import bp as accounting_bp
    from .actions import bp as actions_bp
    from .api import bp as api_bp
    from .cds import bp as cds_bp
    from .guide import bp as guide_bp
    from .launch import bp as auth_bp
    from .meta import bp as meta_bp
    from .notify import bp as notify_bp
    from .panel import bp as panel_bp
    from .worklist import bp as worklist_bp

    for blueprint in (meta_bp, auth_bp, panel_bp, api_bp, actions_bp, cds_bp, accounting_bp,
                      guide_bp, worklist_bp, notify_bp):
        app.register_blueprint(blueprint)


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        from flask import request

        from .pages import json_error, message

        if request.path.startswith(("/api/", "/cds-services", "/fhir-notify")):
            return json_error(error.code or 500, error.name, error.description or "")
        return message(error.code or 500, error.name, error.description or "", retry=False)
