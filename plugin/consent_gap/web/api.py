"""``/api/findings``: the launched patient's findings as JSON (CONTRACT.md section 2's shape),
for EHRs that embed the results their own way. Authenticated by the same session cookie as
the panel; ``?launch=<id>`` picks a launch (default: the session's latest)."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from consent_gap.fhir import FhirError

from .chart import SessionExpired, load_report
from .context import LaunchMissing, drop_launch, get_launch
from .pages import json_error as _error

bp = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger(__name__)


@bp.get("/findings")
def findings():
    try:
        launch = get_launch(request.args.get("launch"))
    except LaunchMissing:
        return _error(401, "no-session", "No launched patient in this session; launch the app.")
    try:
        _, report = load_report(launch)
    except SessionExpired:
        drop_launch(launch.lid)
        return _error(401, "session-expired", "The EHR authorization ended; launch again.")
    except FhirError as error:
        log.warning("FHIR error for launch %s: %s", launch.lid, type(error).__name__)
        return _error(502, "fhir-error", "The EHR's record could not be read.")
    # Exactly the contract's document (ruleset, findings, problems), as `evaluate` prints it.
    return jsonify(report.to_json())
