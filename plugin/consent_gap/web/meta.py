"""Routes that hold no PHI: the start page, the health check, the public JWKS."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, jsonify, render_template

from . import services

bp = Blueprint("meta", __name__)
log = logging.getLogger(__name__)


@bp.get("/")
def start():
    config = services.config()
    return render_template("start.html", issuers=config.allowed_issuers)


@bp.get("/healthz")
def healthz():
    """Liveness for the container's HEALTHCHECK and load balancers: the process answers and
    its session store opens. Deliberately calls nothing outside (an EHR outage is not ours)."""
    return {"status": "ok"}


@bp.get("/.well-known/jwks.json")
def jwks():
    """The public keys of the scan's backend client (CONSENT_GAP_JWKS_FILE), for EHRs that
    fetch a JWKS by URL. Read from the file, never derived from a private key: the web tier
    holds none. A rotation (`consent-gap keys rotate`) shows without a restart."""
    config = services.config()
    body = {"keys": published_keys(config.jwks_file)} if config.jwks_file else {"keys": []}
    response = jsonify(body)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def published_keys(path: Path) -> list[dict]:
    """The JWKS file's keys, read again when the file changes. create_app read it once at
    boot (an unusable file stops the boot); a file spoiled later keeps the last good keys."""
    try:
        stat = path.stat()
    except OSError:
        log.error("CONSENT_GAP_JWKS_FILE %s cannot be read; serving the last keys read", path)
        return _last_good.get(str(path), [])
    try:
        keys = _read(str(path), stat.st_mtime_ns, stat.st_size)
    except ValueError as error:
        log.error("CONSENT_GAP_JWKS_FILE: %s; serving the last keys read", error)
        return _last_good.get(str(path), [])
    _last_good[str(path)] = keys
    return keys


_last_good: dict[str, list[dict]] = {}


@lru_cache(maxsize=8)
def _read(path: str, _mtime_ns: int, _size: int) -> list[dict]:
    from consent_gap.smart import keys

    return keys.read_jwks(path)
