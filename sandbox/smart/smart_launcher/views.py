"""The launcher's pages and OAuth endpoints: discovery, /authorize with its consent page and
patient picker, /token, the published key sets, and the small EHR that launches apps."""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import urlencode

import requests
from authlib.oauth2 import OAuth2Error
from flask import (
    Blueprint,
    Response,
    abort,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from .cds import CdsClient, ChartContext
from .config import SUPPORTED_ALGS, ClientSpec, LauncherConfig
from .keys import public_jwk
from .oauth import Smart, StoredRequest
from .scopes import parse_resource_scope, split_scope
from .store import PENDING_LIFETIME, Launch, Pending
from .upstream import PatientSummary, Upstream

log = logging.getLogger("smart_launcher.views")
_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-asymmetric",
    "context-banner",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "sso-openid-connect",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]
SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
    "patient/*.cruds",
    "user/*.cruds",
    "system/*.cruds",
    "patient/*.rs",
    "user/*.rs",
    "system/*.rs",
    "patient/*.read",
    "user/*.read",
    "system/*.read",
]


def smart_configuration(config: LauncherConfig) -> dict:
    """The document served at {fhir base}/.well-known/smart-configuration."""
    origin = config.origin
    return {
        "issuer": origin,
        "jwks_uri": f"{origin}/.well-known/jwks.json",
        "authorization_endpoint": config.authorize_url,
        "token_endpoint": config.token_url,
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": CAPABILITIES,
    }


def _cors(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.lower() in ("1", "true", "yes", "on")


def _auto_approve(flag: str | None, launch: Launch | None, spec: ClientSpec) -> bool:
    """Query flag `sandbox_auto_approve` first, then the EHR launch's choice, then the client's."""
    explicit = _flag(flag)
    if explicit is not None:
        return explicit
    if launch is not None and launch.auto_approve is not None:
        return launch.auto_approve
    return spec.auto_approve


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("error.html", message=message), status


def create_blueprint(smart: Smart, upstream: Upstream, cds: CdsClient | None = None
                     ) -> Blueprint:
    bp = Blueprint("launcher", __name__)
    config = smart.config
    store = smart.store
    ensured_practitioners: set[str] = set()

    # discovery and keys --------------------------------------------------------------------
    @bp.get("/fhir/.well-known/smart-configuration")
    def well_known() -> Response:
        return _cors(jsonify(smart_configuration(config)))

    @bp.get("/.well-known/openid-configuration")
    def openid_configuration() -> Response:
        origin = config.origin
        return _cors(
            jsonify(
                {
                    "issuer": origin,
                    "authorization_endpoint": config.authorize_url,
                    "token_endpoint": config.token_url,
                    "jwks_uri": f"{origin}/.well-known/jwks.json",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid", "fhirUser", "profile"],
                    "claims_supported": ["sub", "fhirUser", "name"],
                }
            )
        )

    @bp.get("/.well-known/jwks.json")
    def launcher_jwks() -> Response:
        return _cors(jsonify({"keys": [public_jwk(smart.id_token_key, "RS256")]}))

    @bp.get("/sandbox/jwks/<client_id>.json")
    def client_jwks(client_id: str) -> Response:
        """Public keys of clients registered with `jwks_uri` pointing here (JWKS by URL)."""
        jwks = config.published_jwks.get(client_id)
        if jwks is None:
            abort(404)
        response = _cors(jsonify(jwks))
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/sandbox/cds/jwks.json")
    def cds_jwks() -> Response:
        """The EHR's public key as a CDS Hooks client (CONSENT_GAP_CDS_CLIENTS points here)."""
        if cds is None:
            abort(404)
        response = _cors(jsonify(cds.jwks()))
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/")
    def index() -> str:
        return render_template("index.html", config=config, clients=config.clients.values())

    # authorization -------------------------------------------------------------------------
    @bp.route("/oauth/authorize", methods=["GET", "POST"])
    def authorize() -> Response | tuple[str, int]:
        values = request.values
        launch = store.get_launch(values.get("launch"))
        user = smart.user_for(launch)
        try:
            grant = smart.server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            return smart.server.handle_error_response(None, error)
        client = smart.clients[grant.request.client.get_client_id()]
        granted = split_scope(grant.request.scope)
        needs_patient = "launch/patient" in granted and user.patient is None
        picked = values.get("sandbox_patient")
        if needs_patient and picked:
            if not _ID_RE.match(picked) or _patient(upstream, picked) is None:
                return _error_page(400, "sandbox_patient names no patient on the FHIR server.")
            user.patient, needs_patient = picked, False
        if (
            _auto_approve(values.get("sandbox_auto_approve"), launch, client.spec)
            and not needs_patient
        ):
            log.info("auto-approved client=%s", client.client_id)
            return smart.server.create_authorization_response(grant=grant, grant_user=user)
        params = {key: values[key] for key in values if key != "sandbox_auto_approve"}
        pending = Pending(
            params, request.base_url, user, needs_patient, time.time() + PENDING_LIFETIME
        )
        return redirect(config.origin + url_for(".consent", txn=store.put_pending(pending)))

    @bp.get("/oauth/authorize/consent")
    def consent() -> str | tuple[str, int]:
        txn = request.args.get("txn", "")
        pending = store.get_pending(txn)
        if pending is None:
            return _error_page(400, "This authorization request expired or was already answered.")
        spec = config.clients[pending.params["client_id"]]
        name = request.args.get("name") or None
        try:
            patients = upstream.list_patients(name) if pending.needs_patient else []
            patient = _patient(upstream, pending.user.patient) if pending.user.patient else None
        except requests.RequestException:
            return _error_page(502, "The FHIR server could not be reached.")
        scopes = [(s, _describe_scope(s)) for s in split_scope(pending.params.get("scope"))]
        return render_template(
            "authorize.html",
            txn=txn,
            client=spec,
            scopes=scopes,
            patient=patient,
            patients=patients,
            name=name or "",
            needs_patient=pending.needs_patient,
            practitioner=pending.user.practitioner,
        )

    @bp.post("/oauth/authorize/decision")
    def decision() -> Response | tuple[str, int]:
        pending = store.take_pending(request.form.get("txn", ""))
        if pending is None:
            return _error_page(400, "This authorization request expired or was already answered.")
        approve = request.form.get("decision") == "approve"
        user = pending.user
        if approve and pending.needs_patient:
            chosen = request.form.get("patient", "")
            if not _ID_RE.match(chosen) or _patient(upstream, chosen) is None:
                return _error_page(400, "Choose a patient to approve a standalone launch.")
            user.patient = chosen
        stored = StoredRequest(pending.params, pending.uri)
        try:
            grant = smart.server.get_consent_grant(request=stored, end_user=user)
        except OAuth2Error as error:
            return smart.server.handle_error_response(stored, error)
        log.info(
            "consent %s client=%s",
            "approved" if approve else "denied",
            pending.params.get("client_id"),
        )
        return smart.server.create_authorization_response(
            request=stored, grant=grant, grant_user=user if approve else None
        )

    @bp.post("/oauth/token")
    def token() -> Response:
        return smart.server.create_token_response()

    # the EHR -------------------------------------------------------------------------------
    @bp.get("/ehr")
    def ehr() -> str | tuple[str, int]:
        apps = [spec for spec in config.clients.values() if spec.launch_url]
        patient_id = request.args.get("patient")
        if not patient_id:
            name = request.args.get("name") or None
            try:
                patients = upstream.list_patients(name)
            except requests.RequestException:
                return _error_page(502, "The FHIR server could not be reached.")
            offices = [spec for spec in config.clients.values() if spec.office_launch_url]
            return render_template("ehr_list.html", patients=patients, name=name or "", apps=apps,
                                   offices=offices)
        if not _ID_RE.match(patient_id):
            return _error_page(400, "Not a FHIR id.")
        app_id = request.args.get("app") or (apps[0].client_id if apps else "")
        spec = config.clients.get(app_id)
        if spec is None or not spec.launch_url:
            return _error_page(400, "No registered app with a launch URL has that client_id.")
        practitioner = request.args.get("practitioner") or config.practitioner
        if not _ID_RE.match(practitioner):
            return _error_page(400, "Not a Practitioner id.")
        try:
            patient = _patient(upstream, patient_id)
            if patient is None:
                return _error_page(404, "No such patient on the FHIR server.")
            encounter = request.args.get("encounter") or upstream.latest_encounter(patient_id)
        except requests.RequestException:
            return _error_page(502, "The FHIR server could not be reached.")
        if encounter and not _ID_RE.match(encounter):
            return _error_page(400, "Not an Encounter id.")
        if practitioner not in ensured_practitioners and upstream.ensure_practitioner(
            practitioner, config.practitioner_name
        ):
            ensured_practitioners.add(practitioner)
        src = new_launch_url(spec, patient_id, practitioner, encounter)
        autolaunch = _flag(request.args.get("autolaunch")) is not False
        card_link = url_for(".smart_link", patient=patient_id, app=spec.client_id,
                            practitioner=practitioner, encounter=encounter or None,
                            need_patient_banner=request.args.get("need_patient_banner"),
                            auto_approve=request.args.get("auto_approve"))
        cds_url = url_for(".ehr_cds", patient=patient_id, app=spec.client_id,
                          practitioner=practitioner, encounter=encounter or None,
                          prefetch=request.args.get("cds_prefetch"))
        return render_template(
            "ehr_chart.html",
            patient=patient,
            apps=apps,
            app=spec,
            src=src if autolaunch else "about:blank",
            open_src=src,
            encounter=encounter,
            practitioner=practitioner,
            cds_url=cds_url if cds is not None and spec.cds_services else None,
            card_link=card_link,
        )

    @bp.get("/ehr/office")
    def ehr_office() -> Response | tuple[str, int]:
        """The EHR's "Privacy office" entry: an EHR launch from a non-patient context (no
        patient, no encounter) of the app's `office_launch_url`, in the whole window."""
        spec = config.clients.get(request.args.get("app", ""))
        if spec is None or not spec.office_launch_url:
            return _error_page(400, "No registered app with a privacy-office launch URL "
                                    "has that client_id.")
        practitioner = request.args.get("practitioner") or config.practitioner
        if not _ID_RE.match(practitioner):
            return _error_page(400, "Not a Practitioner id.")
        if practitioner not in ensured_practitioners and upstream.ensure_practitioner(
            practitioner, config.practitioner_name
        ):
            ensured_practitioners.add(practitioner)
        return redirect(new_launch_url(spec, None, practitioner, None,
                                       url=spec.office_launch_url))

    def new_launch_url(spec: ClientSpec, patient_id: str | None, practitioner: str,
                       encounter: str | None, url: str | None = None) -> str:
        """A fresh `launch` id bound to this chart (or no chart) and user, in the app's
        launch URL (`url`: another of the app's launch URLs)."""
        launch_id = store.new_launch(
            Launch(
                patient=patient_id,
                practitioner=practitioner,
                encounter=encounter,
                client_id=spec.client_id,
                need_patient_banner=bool(_flag(request.args.get("need_patient_banner"))),
                auto_approve=_flag(request.args.get("auto_approve")),
            )
        )
        target = url or spec.launch_url or ""
        separator = "&" if "?" in target else "?"
        log.info("launch created client=%s", spec.client_id)
        return (
            f"{target}{separator}"
            + urlencode({"iss": config.fhir_base, "launch": launch_id})
        )

    def _chart_args() -> tuple[ClientSpec, str, str, str | None]:
        """The app, patient, user and encounter named by the query (CDS calls, card links);
        a 400 page when they are not a registered app and FHIR ids."""
        spec = config.clients.get(request.args.get("app", ""))
        patient_id = request.args.get("patient", "")
        practitioner = request.args.get("practitioner") or config.practitioner
        encounter = request.args.get("encounter") or None
        if spec is None or not spec.launch_url:
            abort(make_response(_error_page(
                400, "No registered app with a launch URL has that client_id.")))
        if not all(_ID_RE.match(v) for v in (patient_id, practitioner, encounter or "x")):
            abort(make_response(_error_page(400, "Not a FHIR id.")))
        return spec, patient_id, practitioner, encounter

    @bp.get("/ehr/cds")
    def ehr_cds() -> Response | tuple[str, int]:
        """The patient-view calls the chart page makes (signed, prefetched), as JSON."""
        if cds is None:
            abort(404)
        spec, patient_id, practitioner, encounter = _chart_args()
        try:
            calls = cds.calls(spec, ChartContext(patient_id, practitioner, encounter),
                              prefetch=_flag(request.args.get("prefetch")) is not False)
        except (requests.RequestException, ValueError) as exc:
            log.warning("cds discovery failed client=%s: %s", spec.client_id,
                        type(exc).__name__)
            return jsonify({"calls": [], "error": "The app's CDS services did not answer."})
        response = jsonify({"calls": calls})
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/ehr/smart-link")
    def smart_link() -> Response | tuple[str, int]:
        """A card's `smart` link: launch the app it names with a fresh launch of this chart.
        Only a registered app's own launch URL is followed (never an open redirect)."""
        spec, patient_id, practitioner, encounter = _chart_args()
        if request.args.get("url") != spec.launch_url:
            return _error_page(400, "The link is not this app's registered launch URL.")
        return redirect(new_launch_url(spec, patient_id, practitioner, encounter))

    return bp


def _patient(upstream: Upstream, patient_id: str) -> PatientSummary | None:
    return upstream.get_patient(patient_id)


_LETTER_WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_SPECIAL_WORDS = {
    "launch": "the patient and encounter open in the EHR",
    "launch/patient": "choose a patient",
    "launch/encounter": "choose an encounter",
    "openid": "who you are (OpenID Connect)",
    "fhirUser": "your FHIR user record",
    "profile": "your profile",
    "offline_access": "keep access after you sign out",
    "online_access": "keep access while you are signed in",
}


def _describe_scope(text: str) -> str:
    parsed = parse_resource_scope(text)
    if parsed is None:
        return _SPECIAL_WORDS.get(text, "not granted (unknown scope)")
    letters = ", ".join(word for letter, word in _LETTER_WORDS.items() if letter in parsed.letters)
    what = "all resources" if parsed.resource_type == "*" else parsed.resource_type
    whose = {"patient": "of this patient", "user": "you can see", "system": "on the whole server"}
    return f"{letters}: {what} {whose[parsed.context]}"
