"""Page helpers every blueprint shares: the plain message page, the JSON error, the
expired-session page, resolving a launch for a view, and the one-time confirmations an
action leaves for the next panel page.

One place, so that every way a page can end badly looks and reads the same, and so that a
view never handles a missing launch, an ended session or an EHR error on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, jsonify, redirect, render_template, session, url_for

from consent_gap.fhir import FhirError

from .chart import SessionExpired
from .context import Launch, LaunchMissing, drop_launch, get_launch

log = logging.getLogger(__name__)

RETRY_HINT = "Close this panel and open consent-gap again from the client's chart."


def message(status: int, heading: str, *lines: str, detail: str | None = None,
            retry: bool = True, kind: str = "error") -> tuple[str, int]:
    """A plain page for something that cannot go on; ``retry`` tells the user what to do."""
    return (
        render_template("message.html", kind=kind, heading=heading, lines=lines,
                        detail=detail, retry_hint=RETRY_HINT if retry else None),
        status,
    )


def json_error(status: int, code: str, text: str) -> tuple[Response, int]:
    """The JSON body of an API or CDS Hooks error: a code and one line."""
    return jsonify({"error": code, "message": text}), status


def expired_page() -> tuple[str, int]:
    return message(401, "Your session has ended",
                   "For your client's privacy, consent-gap forgets a session after a period "
                   "without use, or when the EHR's authorization runs out.")


def with_launch(view: Callable[..., Any]) -> Callable[..., Any]:
    """Resolve ``lid`` to this session's launch, or answer with the expired-session page;
    an ended authorization or an EHR error gets its own page too."""

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


def back_to_panel(launch: Launch, anchor: str | None = None):
    """303 to the launch's panel (post/redirect/get), at a finding when given."""
    target = url_for("panel.show", lid=launch.lid)
    return redirect(target + (f"#{anchor}" if anchor else ""), code=303)


def add_notice(lid: str, kind: str, text: str, link: tuple[str, str] | None = None) -> None:
    """A confirmation (``ok``) or error for the next page of this launch; ``link``: (its
    words, its href), e.g. the note just saved, opened in the EHR (words on screen, the
    resource only in the href)."""
    notices = dict(session.get("notices") or {})
    note = {"kind": kind, "text": text}
    if link is not None:
        note["link"], note["href"] = link
    notices[lid] = [*notices.get(lid, []), note][-5:]
    session["notices"] = notices


def take_notices(lid: str) -> list[dict[str, str]]:
    """Confirmations left by an action for the next page of this launch (shown once)."""
    notices = dict(session.get("notices") or {})
    mine = notices.pop(lid, [])
    if mine:
        session["notices"] = notices
    return mine
