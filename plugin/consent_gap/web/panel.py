"""The panel: one page per launch, made for a narrow iframe in the chart."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, render_template, request, session

from consent_gap.fhir import FhirError

from .chart import SessionExpired, load_report
from .context import Launch, LaunchMissing, drop_launch, get_launch
from .launch import message
from .view import build_view

bp = Blueprint("panel", __name__)
log = logging.getLogger(__name__)


def with_launch(view: Callable[..., Any]) -> Callable[..., Any]:
    """Resolve ``lid`` to this session's launch, or answer with the expired-session page."""

    @wraps(view)
    def wrapper(lid: str | None = None, **kwargs: Any):
        try:
            launch = get_launch(lid)
        except LaunchMissing:
            return expired_page()
        try:
            return view(launch, **kwargs)
        except SessionExpired:
            drop_launch(launch.lid)
            return expired_page()
        except FhirError as error:
            log.warning("FHIR error for launch %s: %s", launch.lid, type(error).__name__)
            return message(502, "The EHR's record could not be read",
                           "consent-gap could not read this chart from the EHR.",
                           detail=type(error).__name__)

    return wrapper


def expired_page():
    return message(401, "Your session has ended",
                   "For your client's privacy, consent-gap forgets a session after a period "
                   "without use, or when the EHR's authorization runs out.")


def take_notices(lid: str) -> list[dict[str, str]]:
    """Confirmations left by an action for the next page of this launch (shown once)."""
    notices = dict(session.get("notices") or {})
    mine = notices.pop(lid, [])
    if mine:
        session["notices"] = notices
    return mine


def add_notice(lid: str, kind: str, text: str) -> None:
    notices = dict(session.get("notices") or {})
    notices[lid] = [*notices.get(lid, []), {"kind": kind, "text": text}][-5:]
    session["notices"] = notices


@bp.get("/panel/<lid>")
@with_launch
def show(launch: Launch):
    if request.method == "HEAD":
        # The launch exists; reading the chart and deciding it is for a GET (a HEAD must not
        # cost the EHR a chart's worth of reads, nor take the notices meant for the page).
        return "", 200, {"Content-Type": "text/html; charset=utf-8"}
    config = current_app.extensions["consent_gap"]
    _chart, report = load_report(launch)
    view = build_view(launch, report, config)
    return render_template("panel.html", view=view, notices=take_notices(launch.lid))
