"""``/fhir-notify``: where the FHIR server's rest-hook Subscriptions land
(``consent-gap subscribe`` creates them; the queue and its drain: scan/notifications.py).

A notification must carry the shared secret in ``X-Consent-Gap-Secret``
(``CONSENT_GAP_NOTIFY_SECRET``), compared in constant time; without a configured secret every
call is refused. An accepted notification only queues *which resource changed*, read from the
path HAPI uses for a payload delivery (``PUT /fhir-notify/AuditEvent/123``) or, for a POST to
``/fhir-notify`` itself, from the body's ``resourceType``/``id`` (a Bundle's entries too); an
empty or unreadable body queues an incremental re-check. Nothing else of the body is read or
kept: the scheduler's process finds the patient on the FHIR server, so a forged payload cannot
pick a patient or a result. The answer comes at once; no scan runs in a web worker.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, abort, current_app, request

from consent_gap.scan.notifications import ANY, NotifyQueue, accepted
from consent_gap.writeback.subscriptions import SECRET_HEADER

from .config import WebConfig

log = logging.getLogger(__name__)

bp = Blueprint("notify", __name__)

_QUEUE_KEY = "consent_gap.notify_queue"


def web_config() -> WebConfig:
    return current_app.extensions["consent_gap"]


def _queue() -> NotifyQueue:
    app = current_app
    store = app.extensions.get(_QUEUE_KEY)
    if store is None:
        store = app.extensions[_QUEUE_KEY] = NotifyQueue(web_config().database_url)
    return store


def _check_secret() -> None:
    expected = web_config().notify_secret
    given = request.headers.get(SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        log.warning("notification refused: missing or wrong secret")
        abort(401, description="missing or wrong notification secret")


def _named(body: Any) -> list[tuple[str, str]]:
    """(type, id) of the resources a POSTed body names: a resource, or a Bundle's entries."""
    if not isinstance(body, dict):
        return []
    items = [body]
    if body.get("resourceType") == "Bundle":
        items = [e.get("resource") for e in body.get("entry") or [] if isinstance(e, dict)]
    named = []
    for item in items:
        if isinstance(item, dict):
            pair = (str(item.get("resourceType", "")), str(item.get("id", "")))
            if accepted(*pair) and pair != (ANY, ANY):
                named.append(pair)
    return named


def _enqueue(resources: list[tuple[str, str]]) -> tuple[str, int]:
    """Queue and answer 204 with no body: HAPI's client reads a body as a FHIR resource and
    counts anything else as a failed delivery, which it retries."""
    store = _queue()
    queued = sum(store.put(rtype, rid) for rtype, rid in resources)
    log.info("notification: %s queued (%d new)",
             ", ".join(f"{t}/{i}" for t, i in resources), queued)
    return "", 204


@bp.route("/fhir-notify/<rtype>/<rid>", methods=["PUT", "POST", "DELETE"])
def resource_changed(rtype: str, rid: str) -> tuple[str, int]:
    """HAPI's rest-hook with a payload: the changed resource's type and id are in the path
    (its body is not read)."""
    _check_secret()
    if not accepted(rtype, rid) or rtype == ANY:
        abort(400, description="not a resource this endpoint watches")
    return _enqueue([(rtype, rid)])


@bp.route("/fhir-notify", methods=["POST"])
def notified() -> tuple[str, int]:
    """A POST naming the resource in its body, or naming nothing (id-only or empty
    notifications): the latter queue an incremental re-check."""
    _check_secret()
    try:
        body = request.get_json(silent=True, force=True)
    except Exception:  # too large for MAX_CONTENT_LENGTH: the resource is not needed anyway
        body = None
    return _enqueue(_named(body) or [(ANY, ANY)])
