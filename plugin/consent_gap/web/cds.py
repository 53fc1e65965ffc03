"""The card in the chart: a CDS Hooks 2.0 `patient-view` service (CONTRACT.md section 9).

`GET /cds-services` lists the one service with its prefetch templates; `POST
/cds-services/consent-gap-patient-view` verifies the CDS client's JWT (web/cds_auth.py),
decides the chart with the same `evaluate` as everything else, and answers no card or one.

Where the chart comes from: the `prefetch` when every template is answered (each key present,
not null, not an OperationOutcome, a search not cut by a `next` page, the Patient the one in
context); otherwise the whole chart is fetched from `fhirServer` with `fhirAuthorization`, and
the prefetch is set aside, so a decision is never made from a mix of two reads. A complete
prefetch that names records it does not hold (a client that ignored `_include`) gets just those
read by id, when a token and an allowlisted server are given. A token is only
ever sent to a `fhirServer` on the app's issuer allowlist (CONSENT_GAP_ALLOWED_ISSUERS, the
EHRs allowed to launch the app); no allowlisted server or no authorization: 412, as CDS Hooks
says for data the service cannot obtain.

It writes nothing, and logs ids and counts only: no names, no token, no claim but the issuer.
CORS is open (`*`, no credentials): the calls are authenticated by the signed bearer token,
never by a cookie, and browser-based CDS clients run on origins the app cannot know.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from flask import Blueprint, Response, jsonify, request

from consent_gap import fetch_plan
from consent_gap.domain import Decision, Finding
from consent_gap.fhir import BearerAuth, FhirClient, FhirError, FhirHttpError
from consent_gap.smart.ehr_launch import IssuerNotAllowed, require_allowed_issuer

from . import services
from .cds_auth import CdsAuthError
from .config import WebConfig
from .pages import json_error

bp = Blueprint("cds", __name__, url_prefix="/cds-services")
log = logging.getLogger(__name__)

SERVICE_ID = "consent-gap-patient-view"
HOOK = "patient-view"
#: A prefetch carries a whole chart; the app's 64 KiB form limit does not fit it.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
SUMMARY_LIMIT = 140
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class BadHookRequest(ValueError):
    """The hook request is malformed (400); the message says what, never with its values."""


class ChartUnavailable(Exception):
    """The prefetch is incomplete and the chart cannot be fetched (412)."""


# ---- discovery -------------------------------------------------------------------------------

def prefetch_templates(rules: Any) -> dict[str, str]:
    """What the engine reads about one patient, as CDS Hooks templates: the one fetch plan's
    (fetch_plan.py), with the disclosure codes of the rules in use."""
    return fetch_plan.prefetch_templates(fetch_plan.ChartCodes.from_rules(rules))


def service_description(rules: Any) -> dict[str, Any]:
    return {
        "hook": HOOK,
        "id": SERVICE_ID,
        "title": "consent-gap: disclosures without authorization",
        "description": (
            "Checks the patient's recorded disclosures against their signed authorizations "
            "and the legal exceptions, and says how many lack an authorization, need review, "
            "or miss their documentation or client notice."),
        "prefetch": prefetch_templates(rules),
        "usageRequirements": (
            "Each call needs a JWT from a CDS client the practice registered (RS384 or "
            "ES384, aud = this service's URL). Without a complete prefetch, fhirServer must "
            "be an EHR allowed to launch consent-gap, with a fhirAuthorization that reads "
            "the patient's chart."),
    }


# ---- the request -----------------------------------------------------------------------------

@dataclass(frozen=True)
class HookCall:
    """The parts of a patient-view call the service uses."""

    patient_id: str
    fhir_server: str | None
    access_token: str | None
    prefetch: Mapping[str, Any]


def parse_call(body: Any) -> HookCall:
    """The hook call, checked; BadHookRequest when it is not a patient-view call."""
    if not isinstance(body, dict):
        raise BadHookRequest("the body is not a JSON object")
    if body.get("hook") != HOOK:
        raise BadHookRequest("hook must be patient-view")
    if not isinstance(body.get("hookInstance"), str) or not body["hookInstance"]:
        raise BadHookRequest("hookInstance is required")
    context = body.get("context")
    patient_id = context.get("patientId") if isinstance(context, dict) else None
    if not isinstance(patient_id, str) or not _FHIR_ID.match(patient_id):
        raise BadHookRequest("context.patientId must be a FHIR id")
    server = body.get("fhirServer")
    if server is not None and not isinstance(server, str):
        raise BadHookRequest("fhirServer must be a URL")
    token = _access_token(body.get("fhirAuthorization"), patient_id)
    if token and not server:
        raise BadHookRequest("fhirAuthorization needs a fhirServer")
    prefetch = body.get("prefetch")
    if prefetch is not None and not isinstance(prefetch, dict):
        raise BadHookRequest("prefetch must be an object")
    return HookCall(patient_id, server, token, prefetch or {})


def _access_token(auth: Any, patient_id: str) -> str | None:
    if auth is None:
        return None
    if not isinstance(auth, dict):
        raise BadHookRequest("fhirAuthorization must be an object")
    token = auth.get("access_token")
    if not isinstance(token, str) or not token:
        raise BadHookRequest("fhirAuthorization.access_token is required")
    if str(auth.get("token_type", "")).lower() != "bearer":
        raise BadHookRequest("fhirAuthorization.token_type must be Bearer")
    # A token bound to another patient than the chart in context is a confused client.
    if auth.get("patient") not in (None, patient_id):
        raise BadHookRequest("fhirAuthorization.patient is not the patient in context")
    return token


# ---- the chart -------------------------------------------------------------------------------

def _answered(value: Any) -> bool:
    if not isinstance(value, dict) or not value.get("resourceType"):
        return False
    if value["resourceType"] == "OperationOutcome":  # CDS Hooks 2.0: the client failed
        return False
    if value["resourceType"] == "Bundle":
        # A searchset with a next page holds only part of the answer.
        return not any(isinstance(link, dict) and link.get("relation") == "next"
                       for link in value.get("link") or [])
    return True


def _resources(value: dict[str, Any]) -> list[dict[str, Any]]:
    if value.get("resourceType") != "Bundle":
        return [value]
    out = []
    for entry in value.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome":
            out.append(resource)
    return out


def prefetched_chart(prefetch: Mapping[str, Any], templates: Mapping[str, str],
                     patient_id: str) -> list[dict[str, Any]] | None:
    """The chart's resources when the prefetch answers every template, else None."""
    if not all(_answered(prefetch.get(key)) for key in templates):
        return None
    patient = prefetch.get("patient")
    if patient.get("resourceType") != "Patient" or patient.get("id") != patient_id:
        return None  # not the chart in context: do not decide on it
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for key in templates:
        for resource in _resources(prefetch[key]):
            found.setdefault((str(resource.get("resourceType")), str(resource.get("id"))),
                             resource)
    return list(found.values())


def _client(call: HookCall, config: WebConfig, http: requests.Session) -> FhirClient:
    """A client on the CDS client's FHIR server with the token it gave; ChartUnavailable when
    there is no token or the server is not on the allowlist (the token is never sent)."""
    if not call.fhir_server or not call.access_token:
        raise ChartUnavailable("the prefetch is incomplete and there is no fhirAuthorization")
    try:
        base = require_allowed_issuer(call.fhir_server, config.allowed_issuers)
    except IssuerNotAllowed:
        raise ChartUnavailable("fhirServer is not on the allowlist") from None
    return FhirClient(base, auth=BearerAuth(call.access_token), session=http,
                      timeout=config.http_timeout, retries=2)


def fetched_chart(call: HookCall, config: WebConfig, http: requests.Session
                  ) -> list[dict[str, Any]]:
    """The whole chart read from the CDS client's FHIR server with the token it gave."""
    codes = fetch_plan.ChartCodes.from_rules(_rules(config))
    try:
        with _client(call, config, http) as client:
            return fetch_plan.fetch_patient_chart(client, call.patient_id, codes=codes)
    except FhirHttpError as error:
        if error.status in (401, 403):
            raise ChartUnavailable(f"fhirServer refused the token (HTTP {error.status})"
                                   ) from None
        raise


def completed_prefetch(resources: list[dict[str, Any]], call: HookCall, config: WebConfig,
                       http: requests.Session) -> list[dict[str, Any]]:
    """A complete prefetch plus what it names but lacks (a client that ignored the
    disclosures' `_include`), read from fhirServer when it may be; else the prefetch as it is
    (the engine then says what it could not resolve)."""
    if not fetch_plan.lacks_references(resources):
        return resources
    try:
        with _client(call, config, http) as client:
            return resources + fetch_plan.fetch_referenced(client, resources, call.patient_id)
    except ChartUnavailable:
        return resources
    except FhirError as error:
        log.info("cds follow-up for Patient/%s skipped: %s", call.patient_id,
                 type(error).__name__)
        return resources


# ---- the card --------------------------------------------------------------------------------

def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def card_for(findings: list[Finding], launch_url: str) -> dict[str, Any] | None:
    """No card when nothing needs doing; else the one card of CONTRACT.md section 9: counts
    only (no names, no recipients, no dates), `critical` when any disclosure is unauthorized."""
    unauthorized = sum(f.decision == Decision.UNAUTHORIZED for f in findings)
    review = sum(f.decision == Decision.REVIEW for f in findings)
    undocumented = sum(str(f.documentation) == "missing" for f in findings)
    no_notice = sum(str(f.client_notice) == "missing" for f in findings)
    parts = []
    if unauthorized:
        parts.append(_plural(unauthorized, "disclosure lacks an authorization",
                             "disclosures lack an authorization"))
    if review:
        parts.append(_plural(review, "needs review", "need review"))
    if undocumented:
        parts.append(f"documentation missing for {undocumented}")
    if no_notice:
        parts.append(f"client notice missing for {no_notice}")
    if not parts:
        return None
    summary = "; ".join(parts)
    if len(summary) > SUMMARY_LIMIT:  # only with absurd counts; keep the first, worst, parts
        summary = summary[:SUMMARY_LIMIT - 1].rsplit(";", 1)[0] + "…"
    return {
        "summary": summary,
        "indicator": "critical" if unauthorized else "warning",
        "source": {"label": "consent-gap"},
        "links": [{"label": "Open consent-gap", "url": launch_url, "type": "smart"}],
    }


# ---- the routes ------------------------------------------------------------------------------

def _rules(config: WebConfig) -> Any:
    from consent_gap.mappings import load_rules

    return load_rules(config.mappings)


def service_url(config: WebConfig) -> str:
    """This service's URL: what a CDS client's token must name as `aud`."""
    return f"{config.public_url.rstrip('/')}/cds-services/{SERVICE_ID}"


@bp.before_request
def _larger_body() -> None:
    request.max_content_length = MAX_REQUEST_BYTES


@bp.after_request
def _cors(response: Response) -> Response:
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = "*"
    headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    headers["Access-Control-Max-Age"] = "600"
    return response


@bp.get("")
def discovery():
    """The service list. Open: it holds no PHI, only what the service needs prefetched."""
    return jsonify({"services": [service_description(_rules(services.config()))]})


@bp.post(f"/{SERVICE_ID}")
def patient_view():
    config = services.config()
    started = time.perf_counter()
    try:
        caller = services.cds_verifier().verify(request.headers.get("Authorization"),
                                                service_url(config))
    except CdsAuthError as error:
        log.warning("cds call refused: %s", error)
        response, status = json_error(401, "unauthorized", "The CDS client's token was refused.")
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response, status
    try:
        call = parse_call(request.get_json(silent=True))
    except BadHookRequest as error:
        return json_error(400, "bad-request", str(error))
    rules = _rules(config)
    resources = prefetched_chart(call.prefetch, prefetch_templates(rules), call.patient_id)
    source = "prefetch"
    http = services.http()
    if resources is not None:
        resources = completed_prefetch(resources, call, config, http)
    else:
        source = "fetch"
        try:
            resources = fetched_chart(call, config, http)
        except ChartUnavailable as error:
            log.info("cds call from %s for Patient/%s: %s", caller.issuer, call.patient_id,
                     error)
            return json_error(412, "data-unavailable", str(error))
        except FhirError as error:
            log.warning("cds fetch for Patient/%s failed: %s", call.patient_id,
                        type(error).__name__)
            return json_error(502, "fhir-error", "The EHR's record could not be read.")
    from consent_gap.evaluate import evaluate

    report = evaluate(resources, config.jurisdiction, rules=rules, base=call.fhir_server)
    mine = [f for f in report.findings if f.patient == f"Patient/{call.patient_id}"]
    card = card_for(mine, f"{config.public_url.rstrip('/')}/launch")
    log.info("cds patient-view from %s for Patient/%s: %s, %d resources, %d findings, %s, "
             "%.0f ms", caller.issuer, call.patient_id, source, len(resources), len(mine),
             card["indicator"] if card else "no card", (time.perf_counter() - started) * 1000)
    return jsonify({"cards": [card] if card else []})
