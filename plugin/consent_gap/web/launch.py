"""SMART App Launch 2.x: ``/launch`` (EHR launch with ``iss`` + ``launch``, or standalone with
``iss`` alone), ``/callback``, and the pages for the ways a launch can end badly.

Order of checks at /launch, and why: the issuer must be on the allowlist before anything is
fetched from it (an open launch endpoint would otherwise make the app fetch any URL, SSRF);
then discovery; then a fresh ``state`` (single use, bound to this browser's session) and a
PKCE S256 verifier, kept server-side.
"""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, request, session, url_for

from . import oauth, services
from .context import Launch, new_id, remember_pending, save_launch, take_pending, take_target
from .pages import message

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


@bp.get("/launch")
def launch():
    config = services.config()
    iss = (request.args.get("iss") or "").strip()
    launch_token = request.args.get("launch")
    if not iss:
        return message(400, "No EHR named",
                       "The launch did not say which EHR it came from (the iss parameter).")
    try:
        base = oauth.allowed_issuer(config, iss)
    except oauth.IssuerNotAllowed:
        # Checked before anything is fetched: an issuer off the list causes no request.
        log.warning("launch refused: issuer not on the allowlist")
        return message(403, "This EHR is not allowed",
                       "consent-gap is not configured to accept launches from this EHR.",
                       "Ask your IT team to add it to CONSENT_GAP_ALLOWED_ISSUERS.",
                       detail=iss[:200], retry=False)
    http = services.http()
    try:
        # aud is the iss exactly as launched: an exact-matching server refuses a respelling.
        pending = oauth.begin(config, http, base, launch_token or None, aud=iss)
    except oauth.SignInFailed as error:
        log.warning("launch failed before authorization: %s", error)
        return message(502, "The EHR could not be reached", f"Sign-in could not start: {error}.")
    remember_pending(pending)
    log.info("launch started (%s)", "ehr" if launch_token else "standalone")
    return redirect(pending.authorize_url, code=302)


@bp.get("/callback")
def callback():
    config = services.config()
    target = take_target(request.args.get("state"))
    pending = take_pending(request.args.get("state"))
    error = request.args.get("error")
    if pending is None:
        log.warning("callback refused: unknown, reused or expired state")
        return message(400, "This sign-in link is not valid",
                       "The sign-in response did not match a sign-in started in this browser, "
                       "was already used, or is too old.")
    if error == "access_denied":
        return message(403, "Access was not granted",
                       "You (or the EHR) declined to let consent-gap read this chart, so there "
                       "is nothing to show.", kind="info")
    if error:
        description = (request.args.get("error_description") or "")[:300]
        log.warning("callback: EHR returned error %s", error[:40])
        return message(502, "The EHR reported an error",
                       "Sign-in did not complete.", detail=f"{error[:60]}: {description}")
    code = request.args.get("code")
    if not code:
        return message(400, "Sign-in incomplete", "The EHR sent no authorization code.")
    http = services.http()
    try:
        tokens = oauth.exchange_code(config, http, pending, code)
    except oauth.IdTokenRejected as rejected:
        # A forged, expired or foreign id_token: nothing of this sign-in is kept.
        log.warning("launch refused: %s", rejected)
        return message(403, "Sign-in could not be verified",
                       "The EHR's statement of who signed in did not pass consent-gap's "
                       "checks, so the chart was not opened.", detail=f"{rejected}.")
    except oauth.SignInFailed as failure:
        log.warning("token exchange failed: %s", failure)
        return message(502, "Sign-in failed", f"{failure}.")
    if target == "worklist":
        from .worklist import signed_in

        return signed_in(Launch.from_tokens(new_id(), pending.iss, pending.token_endpoint,
                                            tokens))
    if not tokens.patient:
        return message(400, "No client selected",
                       "The EHR did not say which client's chart to open.")
    launch_ctx = Launch.from_tokens(new_id(), pending.iss, pending.token_endpoint, tokens)
    session.rotate()  # a fresh cookie after sign-in: no session fixation
    session.pop("csrf", None)  # and a fresh CSRF token with it
    save_launch(launch_ctx)
    services.prefetcher().start(launch_ctx)
    log.info("launch completed: launch %s", launch_ctx.lid)
    return redirect(url_for("panel.show", lid=launch_ctx.lid), code=303)
