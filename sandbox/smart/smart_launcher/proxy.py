"""The FHIR proxy: `/fhir/**` on the launcher -> the upstream HAPI server, behind bearer tokens.

Each call is authorized by access.decide (scopes, launch patient); resources that come back are
checked by access.check_resources; HAPI's absolute URLs (Bundle.link, fullUrl, Location,
Content-Location) are rewritten from the upstream base to the proxy's base so that paging stays
behind the proxy. Non-JSON bodies (Binary, ndjson) are streamed through.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import requests
from flask import Blueprint, Response, request

from .access import (
    Decision,
    Interaction,
    check_resources,
    classify,
    decide,
    drop_unreadable_includes,
    in_compartment,
)
from .store import TokenRecord

log = logging.getLogger("smart_launcher.proxy")
TIMEOUT = 120
FORWARD_REQUEST_HEADERS = (
    "Content-Type",
    "Prefer",
    "If-Match",
    "If-None-Match",
    "If-None-Exist",
    "If-Modified-Since",
    "Cache-Control",  # no-cache: HAPI then skips its 60 s search-result cache
    "X-Request-Id",
)
FORWARD_RESPONSE_HEADERS = (
    "Content-Type",
    "ETag",
    "Last-Modified",
    "Location",
    "Content-Location",
    "X-Progress",
    "Retry-After",
    "Expires",
    "X-Request-Id",
)
SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def outcome(
    status: int, code: str, diagnostics: str, headers: dict[str, str] | None = None
) -> Response:
    """A FHIR OperationOutcome error response."""
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return Response(
        json.dumps(body), status=status, headers=headers or {}, content_type="application/fhir+json"
    )


class UrlRewriter:
    """Swaps one FHIR base for another in bodies and headers (only whole-base matches)."""

    def __init__(self, source: str, target: str) -> None:
        self.source, self.target = source.rstrip("/"), target.rstrip("/")
        self._bytes = re.compile(re.escape(self.source.encode()) + rb"(?=[/?\"#]|$)")
        self._text = re.compile(re.escape(self.source) + r"(?=[/?\"#]|$)")

    def body(self, data: bytes) -> bytes:
        return self._bytes.sub(self.target.encode(), data)

    def text(self, value: str) -> str:
        return self._text.sub(self.target, value)


class FhirProxy:
    """Forwards authorized calls to the upstream base with a pooled requests.Session."""

    def __init__(self, upstream: str, public_base: str, http: requests.Session, smart: Any) -> None:
        self.upstream = upstream.rstrip("/")
        self.public_base = public_base.rstrip("/")
        self.http = http
        self.smart = smart
        self.outbound = UrlRewriter(self.upstream, self.public_base)
        self.inbound = UrlRewriter(self.public_base, self.upstream)

    def handle(self, path: str) -> Response:
        query = request.args.to_dict(flat=False)
        fmt = (query.get("_format") or [""])[0]
        if fmt and "json" not in fmt:
            return outcome(406, "not-supported", "The sandbox proxy serves FHIR JSON only.")
        inter = classify(request.method, path, query)
        if inter.kind == "capabilities":
            return self._forward(path, None, inject_security=True)
        record = self._bearer()
        if isinstance(record, Response):
            return record
        raw = request.get_data(cache=False) if request.method in ("POST", "PUT", "PATCH") else b""
        body: Any = None
        decide_query = query
        if inter.kind == "search" and request.method == "POST":
            decide_query = _merge_form(query, raw)
        elif raw and inter.kind in ("create", "update", "bundle"):
            try:
                body = json.loads(raw)
            except ValueError:
                return outcome(400, "structure", "The request body is not valid JSON.")
        decision = decide(record.scopes, record.patient, inter, decide_query, body)
        if not decision.allowed:
            log.info("refused %s %s: %s", request.method, inter.kind, decision.reason)
            return outcome(
                decision.status,
                "forbidden" if decision.status == 403 else "not-supported",
                decision.reason,
            )
        refused = self._check_existing(record, decision)
        if refused is not None:
            return refused
        return self._forward(
            path, raw, record=record, decision=decision, inter=inter, query=decide_query
        )

    def _bearer(self) -> TokenRecord | Response:
        header = request.headers.get("Authorization", "")
        realm = f'Bearer realm="{self.public_base}"'
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return outcome(
                401, "login", "A bearer access token is required.", {"WWW-Authenticate": realm}
            )
        record = self.smart.store.get_token(value.strip())
        if record is None:
            return outcome(
                401,
                "login",
                "The access token is unknown, expired or revoked.",
                {"WWW-Authenticate": f'{realm}, error="invalid_token"'},
            )
        return record

    def _check_existing(self, record: TokenRecord, decision: Decision) -> Response | None:
        """Before an update/delete under a patient/ scope, the resource there must be in the
        launch patient's compartment (or absent)."""
        for rtype, rid in decision.existing:
            try:
                response = self.http.get(
                    f"{self.upstream}/{rtype}/{rid}",
                    headers={"Accept": "application/fhir+json"},
                    timeout=TIMEOUT,
                )
            except requests.RequestException:
                return outcome(502, "transient", "The upstream FHIR server could not be reached.")
            if response.status_code == 200 and not in_compartment(
                response.json(), record.patient or ""
            ):
                return outcome(
                    403, "forbidden", f"{rtype}/{rid} is outside the launch patient's compartment."
                )
        return None

    def _forward(
        self,
        path: str,
        raw: bytes | None,
        *,
        record: TokenRecord | None = None,
        decision: Decision | None = None,
        inter: Interaction | None = None,
        query: dict[str, list[str]] | None = None,
        inject_security: bool = False,
    ) -> Response:
        url = f"{self.upstream}/{path}" if path else self.upstream
        if request.query_string:
            url = f"{url}?{request.query_string.decode('latin-1')}"
        headers = {
            name: request.headers[name]
            for name in FORWARD_REQUEST_HEADERS
            if name in request.headers
        }
        binary = inter is not None and inter.resource_type == "Binary"
        headers["Accept"] = (
            request.headers.get("Accept", "*/*") if binary else "application/fhir+json"
        )
        data = self.inbound.body(raw) if raw and "json" in headers.get("Content-Type", "") else raw
        try:
            upstream = self.http.request(
                request.method,
                url,
                headers=headers,
                data=data or None,
                stream=True,
                timeout=TIMEOUT,
            )
        except requests.RequestException:
            return outcome(502, "transient", "The upstream FHIR server could not be reached.")
        out_headers = {}
        for name in FORWARD_RESPONSE_HEADERS:
            if name in upstream.headers:
                value = upstream.headers[name]
                out_headers[name] = (
                    self.outbound.text(value) if name.endswith("Location") else value
                )
        ctype = upstream.headers.get("Content-Type", "")
        if "json" not in ctype:
            return Response(
                _stream(upstream),
                status=upstream.status_code,
                headers=out_headers,
                direct_passthrough=True,
            )
        payload = self.outbound.body(upstream.content)
        upstream.close()
        check = decision is not None and decision.check_response and upstream.status_code < 300
        if check or inject_security:
            try:
                parsed = json.loads(payload)
            except ValueError:
                return outcome(502, "exception", "The upstream FHIR server returned invalid JSON.")
            if check and record is not None:
                if drop_unreadable_includes(record.scopes, record.patient, parsed, query):
                    payload = json.dumps(parsed).encode()
                problem = check_resources(record.scopes, record.patient, parsed, query)
                if problem:
                    log.info("refused response of %s: %s", inter.kind if inter else "?", problem)
                    return outcome(403, "forbidden", problem)
            if inject_security and isinstance(parsed, dict):
                payload = json.dumps(self._with_smart_security(parsed)).encode()
        return Response(payload, status=upstream.status_code, headers=out_headers)

    def _with_smart_security(self, capability: dict) -> dict:
        """Advertise the OAuth endpoints in CapabilityStatement.rest.security, as SMART asks."""
        origin = self.smart.config.origin
        security = {
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "extension": [
                {
                    "url": SMART_OAUTH_URIS,
                    "extension": [
                        {"url": "authorize", "valueUri": f"{origin}/oauth/authorize"},
                        {"url": "token", "valueUri": f"{origin}/oauth/token"},
                    ],
                }
            ],
        }
        for rest in capability.get("rest") or []:
            if isinstance(rest, dict) and rest.get("mode") == "server":
                rest["security"] = security
        return capability


def _stream(upstream: requests.Response) -> Iterator[bytes]:
    try:
        yield from upstream.iter_content(64 * 1024)
    finally:
        upstream.close()


def _merge_form(query: dict[str, list[str]], raw: bytes) -> dict[str, list[str]]:
    merged = {k: list(v) for k, v in query.items()}
    for name, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        merged.setdefault(name, []).append(value)
    return merged


def create_blueprint(proxy: FhirProxy) -> Blueprint:
    bp = Blueprint("fhir_proxy", __name__)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    @bp.route("/fhir", methods=methods, strict_slashes=False)
    @bp.route("/fhir/<path:path>", methods=methods)
    def fhir(path: str = "") -> Response:
        return proxy.handle(path)

    return bp
