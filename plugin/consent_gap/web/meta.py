"""Routes that hold no PHI: the start page, the health check, the public JWKS."""

from __future__ import annotations

import logging
from functools import cache
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
    """The public half of the backend-services key, for EHRs that fetch JWKS by URL."""
    config = services.config()
    body = _public_jwks(str(config.private_key)) if config.private_key else {"keys": []}
    response = jsonify(body)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@cache
def _public_jwks(path: str) -> dict:
    from consent_gap.smart import keys

    return keys.public_jwks(keys.load_signing_key(Path(path)))
