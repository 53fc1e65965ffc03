"""Flask application factory: wires the configuration, the state, authlib and the proxy."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import requests
from flask import Flask, Response, g, request
from requests.adapters import HTTPAdapter

from .cds import CdsClient
from .config import LauncherConfig, load_config
from .keys import ensure_key
from .oauth import Smart
from .proxy import FhirProxy
from .proxy import create_blueprint as proxy_blueprint
from .store import Store
from .upstream import Upstream
from .views import create_blueprint as views_blueprint

log = logging.getLogger("smart_launcher")
ID_TOKEN_KEY = "launcher-id-token.pem"


def http_session(pool: int = 32) -> requests.Session:
    """One pooled session for every upstream call (keep-alive to HAPI)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def create_app(config: LauncherConfig) -> Flask:
    """The launcher as a Flask app. The sandbox runs on plain HTTP on 127.0.0.1, which authlib
    refuses unless AUTHLIB_INSECURE_TRANSPORT is set: set here, for this process only."""
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    http = http_session()
    store = Store()
    smart = Smart(config, store, ensure_key(config.keys_dir / ID_TOKEN_KEY, "RS256"), http)
    proxy = FhirProxy(config.upstream, config.fhir_base, http, smart)
    app.extensions["smart_launcher"] = smart
    cds = CdsClient(config, store, ensure_key(config.keys_dir / config.cds_client_key,
                                              config.cds_client_alg),
                    config.cds_client_alg, http)
    app.register_blueprint(views_blueprint(smart, Upstream(config.upstream, http), cds))
    app.register_blueprint(proxy_blueprint(proxy))

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _access_log(response: Response) -> Response:
        # Path only: query strings may carry names (patient search) or codes; never headers.
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        log.info("%s %s %s %.0fms", request.method, request.path, response.status_code, elapsed)
        return response

    return app


def build_app(clients_file: Path, *, origin: str, upstream: str, keys_dir: Path,
              app_origin: str | None = None) -> Flask:
    """create_app from a clients file (generating any missing keys)."""
    config = load_config(clients_file, origin=origin, upstream=upstream, keys_dir=keys_dir,
                         app_origin=app_origin)
    return create_app(config)
