"""Response headers and CSRF protection for every route.

The panel lives in an EHR's iframe, so the usual ``X-Frame-Options: DENY`` cannot apply;
``Content-Security-Policy: frame-ancestors`` names the EHR origins allowed to frame it instead
(from the issuer allowlist, or an explicit list). Scripts and styles load only from the app's
own origin: the network the app runs in is closed and a CDN would be a second supply chain.

CSRF: every state-changing request carries a per-session token (hidden form field or
``X-CSRF-Token`` header) compared in constant time, and, when the browser sends an ``Origin``,
that origin must be the app's own.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, Response, abort, request, session

from .config import WebConfig

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: Blueprints whose requests carry no cookie credentials at all: the CDS Hooks service is
#: called cross-origin by the EHR with a signed bearer JWT, which a forging site cannot make;
#: the FHIR server's notifications carry a shared secret in a header (web/notify.py).
CSRF_EXEMPT_BLUEPRINTS = frozenset({"cds", "notify"})


def content_security_policy(config: WebConfig) -> str:
    ancestors = " ".join(("'self'", *config.ancestor_origins))
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
            f"frame-ancestors {ancestors}",
        ]
    )


def csrf_token() -> str:
    """The session's CSRF token, created on first use (templates call this)."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _check_csrf(config: WebConfig) -> None:
    if request.method not in UNSAFE_METHODS or request.blueprint in CSRF_EXEMPT_BLUEPRINTS:
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.lower() != config.public_origin:
        abort(403, description="This request came from another site and was refused.")
    expected = session.get("csrf")
    given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not expected or not hmac.compare_digest(str(expected), str(given)):
        abort(403, description="The form was missing its security token; reload the panel.")


def install(app: Flask, config: WebConfig) -> None:
    """Register the CSRF check and the security headers on ``app``."""
    policy = content_security_policy(config)

    @app.before_request
    def _csrf() -> None:
        _check_csrf(config)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers["Content-Security-Policy"] = policy
        headers["X-Content-Type-Options"] = "nosniff"
        # The callback URL carries the authorization code: never leak it through Referer.
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.path.startswith("/static/"):
            # Pages and JSON hold PHI: no shared or browser cache may keep them.
            headers["Cache-Control"] = "no-store"
        if not config.dev_insecure_cookies:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    app.jinja_env.globals["csrf_token"] = csrf_token
