"""Before a disclosure (CONTRACT 6): the panel's "New disclosure" page and its JSON API.

`/api/proposals/check`, `/api/proposals/record`, `/api/authorizations/draft` and
`/api/authorizations/<id>/sign` act for the launched patient of this session (the cookie, a
CSRF token in `X-CSRF-Token`, `?launch=<id>` to pick a launch). Every answer is decided again
from the server's current chart: nothing the browser sends is taken as a decision. Writes are
the transactions writeback.records and writeback.consents build (conditional creates; a
double submit writes once).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, url_for

from consent_gap.fetch_plan import fetch_referenced
from consent_gap.fhir import FhirClient, FhirError
from consent_gap.fhir.errors import FhirHttpError
from consent_gap.smart.scopes import permits

from . import services
from .chart import SessionExpired, client_for, fetch_chart, load_report, registered_device
from .config import WebConfig
from .context import Launch, LaunchMissing, drop_launch, get_launch
from .pages import json_error, with_launch

bp = Blueprint("guide", __name__)
log = logging.getLogger(__name__)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
RECIPIENT_TYPES = ("Practitioner", "Organization", "RelatedPerson")


class Refused(Exception):
    """An HTTP error answer: status, code and one line."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _config() -> WebConfig:
    return services.config()


def _rules() -> Any:
    from consent_gap.mappings import load_rules

    return load_rules(_config().mappings)


def _now() -> datetime:
    return datetime.now(UTC)


def _clinician(launch: Launch) -> str | None:
    """fhirUser as `Type/id` (it may be absolute)."""
    parts = (launch.fhir_user or "").rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


_error = json_error


def _api(view: Any) -> Any:
    """The launch of this session, errors as JSON (401 no session, 400 refusals, 502 EHR)."""
    def wrapper(*args: Any, **kwargs: Any):
        try:
            launch = get_launch(request.args.get("launch"))
        except LaunchMissing:
            return _error(401, "no-session", "No launched patient in this session; launch "
                          "the app.")
        try:
            return view(launch, *args, **kwargs)
        except Refused as refused:
            return _error(refused.status, refused.code, refused.message)
        except SessionExpired:
            drop_launch(launch.lid)
            return _error(401, "session-expired", "The EHR authorization ended; launch again.")
        except FhirError as error:
            log.warning("guide: FHIR error for launch %s: %s", launch.lid, type(error).__name__)
            return _error(502, "fhir-error", "The EHR did not answer as expected; nothing "
                          "was saved.")
    wrapper.__name__ = view.__name__
    return wrapper


def _written(launch: Launch) -> None:
    """After a write: a chart prefetched at launch is stale now; drop it so the panel and
    /api/findings read the chart afresh."""
    services.prefetcher().take(launch.lid)
    _opened().take(launch.lid)


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused(400, "invalid-request", "request: send a JSON object")
    return body


# ------------------------------------------------------------------------------ deciding

class OpenedCharts:
    """The chart the "New disclosure" page just read, kept for the check that follows it, so
    the answer costs no second round of reads. Per process, per launch; taken once; gone
    after TTL seconds or after any write. Only checks use it: the record, the draft and the
    signature always decide on the chart as it is now."""

    TTL = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._charts: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    def keep(self, lid: str, resources: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, (t, _) in self._charts.items() if now - t > self.TTL]:
                del self._charts[key]
            self._charts[lid] = (now, resources)

    def take(self, lid: str) -> list[dict[str, Any]] | None:
        with self._lock:
            found = self._charts.pop(lid, None)
        if found is None or time.monotonic() - found[0] > self.TTL:
            return None
        return found[1]


def _opened() -> OpenedCharts:
    return services.kept("guide_charts", OpenedCharts)


@dataclass
class Checked:
    """A proposal decided in the launched patient's current chart."""

    proposal: Any
    answer: Any
    resources: list[dict[str, Any]]


def _chart(client: FhirClient, launch: Launch, event: dict[str, Any],
           opened: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The chart (`opened`: as the page just read it) and what the proposal names that it
    lacks (one more round only then)."""
    resources = opened if opened is not None else fetch_chart(
        client, launch.patient or "", rules=_rules()).resources
    return resources + fetch_referenced(client, [*resources, event], launch.patient or "")


def decide_proposal(launch: Launch, data: Any, client: FhirClient, *,
                    fresh: bool = True) -> Checked:
    """The proposal read for the launched patient and decided by `proposal.check` on the
    chart; `fresh=False` lets a check use the chart the page just read. Refused (400) when
    the proposal is not valid."""
    from consent_gap.evaluate import evaluator
    from consent_gap.proposal import ProposalError, check, read_proposal
    from consent_gap.writeback.records import audit_event

    rules = _rules()
    if not launch.patient:
        raise Refused(400, "no-patient", "patient: the launch has no patient")
    try:
        proposal = read_proposal(data, rules, now=_now(), patient=launch.patient_ref)
        decide = evaluator(_config().jurisdiction, rules=rules, base=launch.iss)
        opened = None if fresh else _opened().take(launch.lid)
        resources = _chart(client, launch, audit_event(proposal, recorded=proposal.at), opened)
        if opened is not None:  # the next check of this page may use it too, while fresh
            _opened().keep(launch.lid, opened)
        answer = check(resources, proposal, decide, rules=rules, place=decide.place)
    except ProposalError as error:
        raise Refused(400, "invalid-proposal", str(error)) from None
    return Checked(proposal, answer, resources)


@bp.post("/api/proposals/check")
@_api
def check_proposal(launch: Launch):
    """6.2's answer for a proposal of the launched patient."""
    with client_for(launch) as client:
        checked = decide_proposal(launch, _body(), client)
    return jsonify(checked.answer.to_json())


# ------------------------------------------------------------------------------ record

def _proposal_id(body: dict[str, Any]) -> str:
    value = body.get("proposal_id")
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise Refused(400, "invalid-request", "proposal_id: must be a UUID (made when the check "
                      "ran)")
    return value.lower()


def _proposal_of(body: dict[str, Any]) -> Any:
    """The proposal, given as `proposal` or as the body itself (6.3 says 'the proposal with')."""
    inner = body.get("proposal")
    return inner if isinstance(inner, dict) else body


def _record_request(body: dict[str, Any], proposal: Any) -> Any:
    from consent_gap.writeback.records import RecordRequest

    documentation = body.get("documentation") or {}
    notice = body.get("client_notice") or {}
    ethic = body.get("ethic") or {}
    if not isinstance(documentation, dict) or not isinstance(notice, dict) \
            or not isinstance(ethic, dict):
        raise Refused(400, "invalid-request", "documentation, client_notice and ethic: must be "
                      "objects")
    return RecordRequest(
        proposal=proposal,
        proposal_id=_proposal_id(body),
        documentation={k: v for k, v in documentation.items() if isinstance(v, str)},
        notice=str(notice.get("status") or "later"),
        notice_reason=notice.get("reason") if isinstance(notice.get("reason"), str) else None,
        notice_text=notice.get("text") if isinstance(notice.get("text"), str) else None,
        acknowledge_unauthorized=body.get("acknowledge_unauthorized") is True,
        ethic={k: v for k, v in ethic.items() if isinstance(v, str)},
    )


@bp.post("/api/proposals/record")
@_api
def record_proposal(launch: Launch):
    """6.3: one transaction; a second POST of the same proposal_id writes nothing and answers
    the same references."""
    from consent_gap.writeback.records import (
        RecordError,
        plan_record,
        read_record_response,
        record_transaction,
    )

    body = _body()
    _proposal_id(body)  # refused before anything is read
    config = _config()
    with client_for(launch) as client:
        checked = decide_proposal(launch, _proposal_of(body), client)
        if checked.answer.finding is None:
            raise Refused(400, "nothing-to-record", "proposal: nothing is to be disclosed in "
                          "this scenario; document it in a note")
        device = registered_device(client)
        try:
            writes = plan_record(_record_request(body, checked.proposal), checked.answer.finding,
                                 checked.answer.step_codes, now=_now(),
                                 clinician=_clinician(launch),
                                 privacy_officer=config.privacy_officer,
                                 organization=config.organization,
                                 task=permits(launch.scope.split(), "Task", "c"),
                                 device=device)
        except RecordError as error:
            raise Refused(400, "invalid-record", str(error)) from None
        response = client.transaction(record_transaction(writes, device))
    _written(launch)
    result = read_record_response(response, writes, device)
    if result.failed:
        raise FhirError("record transaction answered with failed entries")
    log.info("guide: launch %s recorded %s (%s)", launch.lid,
             ",".join(kind for kind, _r, _p in result.writes),
             "created" if result.created else "already there")
    return jsonify({"written": result.created, "references": result.references(),
                    **checked.answer.to_json()}), (201 if result.created else 200)


# ------------------------------------------------------------------------------ authorizations

def _expires(body: dict[str, Any], at: datetime) -> datetime:
    from consent_gap.normalize import Unreadable, parse_instant
    from consent_gap.writeback.consents import default_expiry

    raw = body.get("expires")
    if raw is None or raw == "":
        return default_expiry(at)
    try:
        return parse_instant(raw, "expires")
    except Unreadable:
        raise Refused(400, "invalid-request", f"expires: {raw!r} is not a date") from None


def _version(answer: dict[str, Any] | None) -> str | None:
    """The version a transaction-response entry names (etag W/"n" or location _history/n)."""
    if not isinstance(answer, dict):
        return None
    etag = str(answer.get("etag") or "")
    found = re.fullmatch(r'(?:W/)?"([^"]+)"', etag)
    if found:
        return found.group(1)
    found = re.search(r"/_history/([^/]+)$", str(answer.get("location") or ""))
    return found.group(1) if found else None


@bp.post("/api/authorizations/draft")
@_api
def draft_authorization(launch: Launch):
    """6.5: the Consent `proposed` for a proposal that can have one; the form to sign."""
    from consent_gap.web.guide_view import data_description
    from consent_gap.writeback import _entry_result
    from consent_gap.writeback.consents import draft_consent, draft_transaction
    from consent_gap.writeback.records import RecordError

    body = _body()
    pid = _proposal_id(body) if body.get("proposal_id") is not None else None
    with client_for(launch) as client:
        checked = decide_proposal(launch, _proposal_of(body), client)
        # 6.5 names no proposal_id for the draft: without one, the same proposal (and the
        # same `at`, when it names one) drafts the same Consent, so a retry writes nothing.
        pid = pid or _derived_id(checked.proposal, _proposal_of(body))
        if not checked.answer.can_draft_authorization:
            raise Refused(400, "not-draftable", "proposal: no authorization can be drafted for "
                          "it (it is covered already, or the client's own deny forbids it)")
        performer = body.get("performer")
        if performer is not None and not isinstance(performer, str):
            raise Refused(400, "invalid-request", "performer: must be a reference")
        if performer and performer != launch.patient_ref:
            _check_representative(performer, checked.resources, launch)
        device = registered_device(client)
        try:
            draft = draft_consent(checked.proposal, pid, device=device,
                                  expires=_expires(body, checked.proposal.at), now=_now(),
                                  description=data_description(checked.proposal,
                                                               checked.resources),
                                  performer=performer or None,
                                  labels=checked.answer.disclosed_labels,
                                  organization=_config().organization,
                                  clinician=_clinician(launch))
        except RecordError as error:
            raise Refused(400, "invalid-request", str(error)) from None
        response = client.transaction(draft_transaction(draft, device))
    _written(launch)
    entries = [e.get("response") if isinstance(e, dict) else None
               for e in response.get("entry") or []]
    if device is not None:
        entries.insert(0, None)  # no Device entry went first: keep the positions below
    consent = _entry_result("Consent", entries[1] if len(entries) > 1 else None)
    provenance = _entry_result("Provenance", entries[2] if len(entries) > 2 else None)
    if consent.reference is None or "failed" in (consent.status, provenance.status):
        raise FhirError("draft transaction answered without the Consent")
    cid = consent.reference.split("/", 1)[1]
    log.info("guide: launch %s drafted %s (%s)", launch.lid, consent.reference, consent.status)
    return jsonify({
        "consent": consent.reference,
        "version": _version(entries[1]),
        "status": "proposed",
        "written": consent.status == "created",
        "form": url_for("guide.form", lid=launch.lid, cid=cid),
        "pdf": url_for("guide.form_pdf", lid=launch.lid, cid=cid),
    }), (201 if consent.status == "created" else 200)


def _derived_id(proposal: Any, given: dict[str, Any]) -> str:
    import json

    key = proposal.to_json()
    if given.get("at") is None:
        key.pop("at", None)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(key, sort_keys=True)))


def _check_representative(performer: str, resources: list[dict[str, Any]],
                          launch: Launch) -> None:
    """The named signer must be one of this patient's RelatedPersons."""
    ids = {f"RelatedPerson/{r.get('id')}" for r in resources
           if r.get("resourceType") == "RelatedPerson"
           and (r.get("patient") or {}).get("reference") == launch.patient_ref}
    if performer not in ids:
        raise Refused(400, "invalid-request", "performer: must be the patient or one of the "
                      "patient's RelatedPersons")


def _own_consent(client: FhirClient, launch: Launch, cid: str) -> dict[str, Any]:
    if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", cid):
        raise Refused(404, "not-found", "consent: no such authorization")
    try:
        consent = client.read("Consent", cid)
    except FhirHttpError as error:
        if error.status in (403, 404, 410):
            raise Refused(404, "not-found", "consent: no such authorization") from None
        raise
    if (consent.get("patient") or {}).get("reference") != launch.patient_ref:
        raise Refused(404, "not-found", "consent: no such authorization")
    return consent


@bp.post("/api/authorizations/<cid>/sign")
@_api
def sign_authorization(launch: Launch, cid: str):
    """6.5: the signature Provenance and the Consent active, in one transaction; signing
    again answers what the first signing did."""
    from consent_gap.writeback.consents import sign, signature_png
    from consent_gap.writeback.records import RecordError

    body = _body()
    signer = body.get("signer") or launch.patient_ref
    if isinstance(signer, dict):  # {"reference": "Patient/..."} as well as the bare reference
        signer = signer.get("reference") or launch.patient_ref
    drawn = body.get("signature")
    if isinstance(drawn, dict):  # {"data": base64, "contentType": "image/png"} as well
        drawn = drawn.get("data")
    with client_for(launch) as client:
        consent = _own_consent(client, launch, cid)
        if consent.get("status") == "active" and _signed_by_us(client, cid):
            return jsonify({"consent": f"Consent/{cid}", "status": "active",
                            "written": False}), 200
        try:
            png = signature_png(str(drawn or ""))
            version = body.get("version")
            signing = sign(consent, signer=str(signer), png=png, now=_now(),
                           clinician=_clinician(launch),
                           version=str(version) if version else None,
                           device=registered_device(client))
        except RecordError as error:
            raise Refused(400, "invalid-signature", str(error)) from None
        try:
            client.transaction(signing.transaction())
            _written(launch)
        except FhirHttpError as error:
            if error.status in (409, 412):
                raise Refused(409, "changed", "consent: it changed since it was drafted; "
                              "reload and check again") from None
            raise
    log.info("guide: launch %s signed Consent/%s", launch.lid, cid)
    return jsonify({"consent": f"Consent/{cid}", "status": "active", "written": True}), 201


def _signed_by_us(client: FhirClient, cid: str) -> bool:
    return any(r.get("resourceType") == "Provenance" and r.get("signature")
               for r in client.search("Provenance", {"target": f"Consent/{cid}"}))


# ------------------------------------------------------------------------------ the page

@bp.get("/panel/<lid>/guide")
@with_launch
def page(launch: Launch):
    from consent_gap.web.guide_view import build_guide_view

    chart, report = load_report(launch)
    resources = chart.resources
    _opened().keep(launch.lid, resources)
    view = build_guide_view(launch, resources, report, _rules(), _config())
    return render_template("guide.html", view=view, proposal_id=str(uuid.uuid4()))


@bp.post("/panel/<lid>/guide/answer")
@with_launch
def answer(launch: Launch):
    """The 6.2 answer plus what the page shows beside it (the covering Consent's limits,
    the state's rule); the same decision as /api/proposals/check."""
    from consent_gap.web.guide_view import answer_details

    try:
        with client_for(launch) as client:
            checked = decide_proposal(launch, _body(), client, fresh=False)
    except Refused as refused:
        return _error(refused.status, refused.code, refused.message)
    return jsonify({**checked.answer.to_json(),
                    "details": answer_details(checked.answer, checked.resources, _rules())})


@bp.get("/panel/<lid>/guide/recipients")
@with_launch
def recipients(launch: Launch):
    """Search as you type: the server's Practitioners, Organizations and the patient's
    RelatedPersons whose name matches."""
    from consent_gap.web.guide_view import recipient_results

    text = (request.args.get("q") or "").strip()
    if len(text) < 2:
        return jsonify({"results": []})
    wanted = [t for t in request.args.get("types", "").split(",") if t in RECIPIENT_TYPES] \
        or list(RECIPIENT_TYPES)
    found: list[dict[str, Any]] = []
    started = time.perf_counter()
    with client_for(launch) as client:
        for rtype in wanted:
            params = {"name": text[:64], "_count": "10"}
            if rtype == "RelatedPerson":
                params["patient"] = launch.patient_ref or ""
            try:
                found += list(client.search(rtype, params, page_size=10))[:10]
            except FhirHttpError as error:
                log.info("guide: recipient search of %s refused (%s)", rtype, error.status)
    log.info("guide: recipient search %d results in %.0f ms", len(found),
             (time.perf_counter() - started) * 1000)
    return jsonify({"results": recipient_results(found)})


@bp.get("/panel/<lid>/guide/authorizations/<cid>")
@with_launch
def form(launch: Launch, cid: str):
    return render_template("authorization.html", form=_form(launch, cid), pdf=False)


@bp.get("/panel/<lid>/guide/authorizations/<cid>.pdf")
@with_launch
def form_pdf(launch: Launch, cid: str):
    from weasyprint import HTML

    html = render_template("authorization.html", form=_form(launch, cid), pdf=True)
    document = HTML(string=html, url_fetcher=_no_fetch).write_pdf()
    return Response(document, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="authorization-{cid}.pdf"'})


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The form embeds nothing: WeasyPrint fetches no URL while rendering it."""
    raise ValueError("the authorization form loads no external resource")


def _form(launch: Launch, cid: str) -> Any:
    from consent_gap.web.guide_view import authorization_form

    with client_for(launch) as client:
        try:
            consent = _own_consent(client, launch, cid)
        except Refused:
            from werkzeug.exceptions import NotFound
            raise NotFound("No such authorization for this client.") from None
        names = _names(client, consent, launch)
    return authorization_form(consent, names, _config())


def _names(client: FhirClient, consent: dict[str, Any], launch: Launch) -> dict[str, Any]:
    """The resources the form names (patient, signer, recipient, practice), read by id;
    one that cannot be read is shown by its reference."""
    from consent_gap.web.guide_view import form_references

    out: dict[str, Any] = {}
    for ref in form_references(consent, _config()):
        rtype, _, rid = ref.partition("/")
        try:
            out[ref] = client.read(rtype, rid)
        except FhirError:
            out[ref] = None
    return out
