"""Test support: run the launcher in a thread against a small fake FHIR server, sign assertions,
drive the authorization code flow. Used by tests/integration/test_launcher_*.py.

The fake server answers like HAPI where the proxy cares: absolute `fullUrl`s, `Bundle.link`s that
page through `<base>?_getpages=...`, `Location` headers with the absolute base.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from flask import Flask, Response, jsonify, request
from joserfc import jwt
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .config import LauncherUrls
from .keys import Key, load_key

REPO = Path(__file__).resolve().parents[3]
CLIENTS_FILE = REPO / "sandbox" / "smart" / "clients.toml"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Test servers stay quiet; failures show in assertions."""


class ServerThread:
    """A WSGI app on 127.0.0.1 on a free port, served from a daemon thread."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler
        )
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- a fake FHIR server ------------------------------------------------------------------------


def fake_fhir_app(resources: list[dict[str, Any]], page_size: int = 2) -> Flask:
    """A tiny FHIR server holding `resources` (search by patient/subject/_id, paging, writes)."""
    app = Flask("fake_fhir")
    store: dict[tuple[str, str], dict[str, Any]] = {
        (r["resourceType"], r["id"]): r for r in resources
    }
    searches: dict[str, list[dict[str, Any]]] = {}
    counter = itertools.count(1000)
    app.config["store"] = store
    app.config["requests"] = []

    def base() -> str:
        return request.host_url.rstrip("/") + "/fhir"

    def page(
        matches: list[dict[str, Any]],
        search_id: str,
        offset: int,
        includes: list[dict[str, Any]] | None = None,
    ) -> Response:
        entries = matches[offset : offset + page_size]
        links = [
            {"relation": "self", "url": f"{base()}?_getpages={search_id}&_getpagesoffset={offset}"}
        ]
        if offset + page_size < len(matches):
            nxt = f"{base()}?_getpages={search_id}&_getpagesoffset={offset + page_size}"
            links.append({"relation": "next", "url": nxt})
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base()}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in entries
            ]
            + [
                {
                    "fullUrl": f"{base()}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "include"},
                }
                for r in includes or []
            ],
        }
        return fhir_json(bundle)

    @app.before_request
    def _record() -> None:
        app.config["requests"].append((request.method, request.full_path))

    @app.get("/fhir/metadata")
    def metadata() -> Response:
        return fhir_json(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "fhirVersion": "4.0.1",
                "rest": [{"mode": "server"}],
            }
        )

    @app.route("/fhir", methods=["GET", "POST"])
    def root() -> Response:
        if request.method == "POST":
            return transaction(request.get_json(force=True))
        search_id = request.args.get("_getpages", "")
        if search_id not in searches:
            return fhir_json(outcome("not-found", "unknown search"), 410)
        return page(searches[search_id], search_id, int(request.args.get("_getpagesoffset", 0)))

    @app.route("/fhir/<rtype>", methods=["GET", "POST"])
    def type_level(rtype: str) -> Response:
        if request.method == "POST":
            return create(rtype, request.get_json(force=True))
        matches = [r for (t, _), r in sorted(store.items()) if t == rtype and matches_query(r)]
        includes = revincluded(matches, request.args.getlist("_revinclude"))
        search_id = uuid.uuid4().hex
        searches[search_id] = matches
        return page(matches, search_id, 0, includes)

    def revincluded(matches: list[dict[str, Any]], specs: list[str]) -> list[dict[str, Any]]:
        from .access import _references

        wanted = {f"{r['resourceType']}/{r['id']}" for r in matches}
        types = {spec.split(":", 1)[0] for spec in specs}
        return [
            r for (t, _), r in sorted(store.items()) if t in types and wanted & set(_references(r))
        ]

    @app.route("/fhir/<rtype>/<rid>", methods=["GET", "PUT", "DELETE"])
    def instance(rtype: str, rid: str) -> Response:
        if request.method == "PUT":
            resource = dict(request.get_json(force=True), id=rid)
            created = (rtype, rid) not in store
            store[(rtype, rid)] = resource
            headers = {"Location": f"{base()}/{rtype}/{rid}/_history/1"}
            return fhir_json(resource, 201 if created else 200, headers)
        if (rtype, rid) not in store:
            return fhir_json(outcome("not-found", f"{rtype}/{rid} is not known"), 404)
        if rtype == "Binary" and "json" not in request.headers.get("Accept", ""):
            raw = base64.b64decode(store[(rtype, rid)].get("data", ""))
            return Response(raw, content_type=store[(rtype, rid)].get("contentType", "text/plain"))
        if request.method == "DELETE":
            del store[(rtype, rid)]
            return fhir_json(outcome("informational", "deleted", "information"), 200)
        return fhir_json(store[(rtype, rid)])

    def create(rtype: str, resource: dict[str, Any]) -> Response:
        rid = str(next(counter))
        resource = dict(resource, id=rid)
        store[(rtype, rid)] = resource
        headers = {"Location": f"{base()}/{rtype}/{rid}/_history/1"}
        return fhir_json(resource, 201, headers)

    def transaction(bundle: dict[str, Any]) -> Response:
        entries = []
        for entry in bundle.get("entry", []):
            method = entry["request"]["method"]
            url = entry["request"]["url"]
            if method == "POST":
                rid = str(next(counter))
                store[(url, rid)] = dict(entry["resource"], id=rid)
                entries.append({"response": {"status": "201 Created", "location": f"{url}/{rid}"}})
            else:
                entries.append({"response": {"status": "200 OK"}})
        kind = "transaction-response" if bundle.get("type") == "transaction" else "batch-response"
        return fhir_json({"resourceType": "Bundle", "type": kind, "entry": entries})

    return app


def matches_query(resource: dict[str, Any]) -> bool:
    from .access import patient_refs

    for name, values in request.args.lists():
        if name.startswith("_") and name != "_id":
            continue
        for value in values:
            wanted = value.rsplit("/", 1)[-1]
            if name == "_id" and resource.get("id") != wanted:
                return False
            if name in ("patient", "subject") and wanted not in patient_refs(resource):
                return False
    return True


def outcome(code: str, text: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }


def fhir_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Content-Type"] = "application/fhir+json;charset=utf-8"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


# --- running the launcher ----------------------------------------------------------------------


@dataclass
class Sandbox(LauncherUrls):
    """A running launcher and its fake upstream."""

    origin: str
    upstream_origin: str
    keys_dir: Path
    upstream_app: Flask

    @property
    def upstream_base(self) -> str:
        return f"{self.upstream_origin}/fhir"

    def key(self, name: str) -> Key:
        return load_key(self.keys_dir / name)

    def upstream_store(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.upstream_app.config["store"]


@contextmanager
def running_sandbox(
    keys_dir: Path, resources: list[dict[str, Any]], clients_file: Path = CLIENTS_FILE
) -> Iterator[Sandbox]:
    """Start the fake FHIR server and the launcher (on free ports) for the duration."""
    from .app import build_app

    upstream_app = fake_fhir_app(resources)
    with ServerThread(upstream_app) as upstream:
        upstream_origin = f"http://127.0.0.1:{upstream.port}"
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        app = build_app(
            clients_file, origin=origin, upstream=f"{upstream_origin}/fhir", keys_dir=keys_dir
        )
        with ServerThread(app, port):
            yield Sandbox(origin, upstream_origin, keys_dir, upstream_app)


# --- client side helpers -----------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def client_assertion(
    key: Key,
    client_id: str,
    token_url: str,
    alg: str,
    *,
    kid: str | None = "thumbprint",
    exp_in: int = 240,
    jti: str | None = None,
    aud: str | None = None,
    extra_header: dict[str, Any] | None = None,
) -> str:
    """A SMART client assertion (iss = sub = client_id, aud = token URL, short exp, fresh jti)."""
    now = int(time.time())
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid == "thumbprint":
        header["kid"] = key.thumbprint()
    elif kid:
        header["kid"] = kid
    header.update(extra_header or {})
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud or token_url,
        "exp": now + exp_in,
        "iat": now,
        "jti": jti or secrets.token_hex(16),
    }
    return jwt.encode(header, claims, key, algorithms=[alg])


def backend_token(
    sandbox: Sandbox, client_id: str, key_file: str, alg: str, scope: str, **assertion: Any
) -> requests.Response:
    """POST a client_credentials request with a private_key_jwt assertion."""
    token = client_assertion(sandbox.key(key_file), client_id, sandbox.token_url, alg, **assertion)
    return requests.post(
        sandbox.token_url,
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": token,
        },
        timeout=10,
    )


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorize_url(sandbox: Sandbox, **params: str) -> str:
    return f"{sandbox.authorize_url}?{urlencode(params)}"


# --- sample charts and the authorization code flow ---------------------------------------------

PATIENT = "pat-a"
OTHER_PATIENT = "pat-b"
APP_REDIRECT = "http://127.0.0.1:8082/callback"
TEST_REDIRECT = "http://127.0.0.1:8099/callback"


def sample_resources() -> list[dict[str, Any]]:
    """Two patients; three Consents of the first (so a search pages), one of the second; a
    Provenance about the second; an Encounter; a Device that names no patient; a Binary."""

    def ref(pid: str) -> dict[str, str]:
        return {"reference": f"Patient/{pid}"}

    return [
        {"resourceType": "Patient", "id": PATIENT, "name": [{"family": "Alder", "given": ["Ann"]}]},
        {
            "resourceType": "Patient",
            "id": OTHER_PATIENT,
            "name": [{"family": "Birch", "given": ["Bo"]}],
        },
        {"resourceType": "Consent", "id": "c-a1", "status": "active", "patient": ref(PATIENT)},
        {"resourceType": "Consent", "id": "c-a2", "status": "active", "patient": ref(PATIENT)},
        {"resourceType": "Consent", "id": "c-a3", "status": "inactive", "patient": ref(PATIENT)},
        {
            "resourceType": "Consent",
            "id": "c-b1",
            "status": "active",
            "patient": ref(OTHER_PATIENT),
        },
        {"resourceType": "Provenance", "id": "prov-b", "target": [ref(OTHER_PATIENT)]},
        {"resourceType": "Provenance", "id": "prov-a", "target": [{"reference": "Consent/c-a1"}]},
        {"resourceType": "Encounter", "id": "enc-a", "status": "finished", "subject": ref(PATIENT)},
        {"resourceType": "Observation", "id": "obs-a", "status": "final", "subject": ref(PATIENT)},
        {"resourceType": "Device", "id": "dev-app", "status": "active"},
        {
            "resourceType": "Binary",
            "id": "bin-1",
            "contentType": "text/plain",
            "data": base64.b64encode(b"line\n" * 40_000).decode(),
        },
    ]


def ehr_launch(sandbox: Sandbox, patient: str, app: str, **flags: str) -> str:
    """Open the EHR page for `patient` with `app`; return the `launch` id of the iframe's URL."""
    import html
    import re

    page = requests.get(
        f"{sandbox.origin}/ehr", params={"patient": patient, "app": app, **flags}, timeout=10
    )
    page.raise_for_status()
    src = re.search(r'<iframe[^>]*src="([^"]+)"', page.text)
    if src is None:
        raise AssertionError("the EHR page has no app iframe")
    params = query_of(html.unescape(src.group(1)))
    if params.get("iss") != sandbox.fhir_base:
        raise AssertionError(f"iss is {params.get('iss')!r}")
    return params["launch"]


@dataclass
class CodeRequest:
    """One authorization request (with its PKCE verifier) and the launcher's first answer."""

    response: requests.Response
    verifier: str
    client_id: str
    redirect_uri: str

    @property
    def location(self) -> str:
        return self.response.headers.get("Location", "")

    @property
    def params(self) -> dict[str, str]:
        return query_of(self.location)


def start_authorization(
    sandbox: Sandbox,
    client_id: str,
    scope: str,
    *,
    launch: str | None = None,
    redirect_uri: str = TEST_REDIRECT,
    state: str = "state-1",
    pkce: str | None = "S256",
    **extra: str,
) -> CodeRequest:
    """GET /oauth/authorize (redirects are not followed)."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "aud": sandbox.fhir_base,
    }
    if launch:
        params["launch"] = launch
    if pkce == "S256":
        params.update(code_challenge=challenge, code_challenge_method="S256")
    elif pkce == "plain":
        params.update(code_challenge=verifier, code_challenge_method="plain")
    params.update(extra)
    response = requests.get(sandbox.authorize_url, params=params, allow_redirects=False, timeout=10)
    return CodeRequest(response, verifier, client_id, redirect_uri)


def exchange_code(
    sandbox: Sandbox, started: CodeRequest, code: str | None = None, **extra: str
) -> requests.Response:
    """POST the code (with the PKCE verifier) to the token endpoint as a public client."""
    data = {
        "grant_type": "authorization_code",
        "code": code or started.params["code"],
        "redirect_uri": started.redirect_uri,
        "client_id": started.client_id,
        "code_verifier": started.verifier,
    }
    data.update(extra)
    return requests.post(sandbox.token_url, data=data, timeout=10)


def patient_token(sandbox: Sandbox, scope: str, patient: str = PATIENT) -> dict[str, Any]:
    """A token of `sandbox-public` from an EHR launch on `patient`, consent auto-approved."""
    launch = ehr_launch(sandbox, patient, "sandbox-public", auto_approve="1")
    started = start_authorization(sandbox, "sandbox-public", scope, launch=launch)
    response = exchange_code(sandbox, started)
    response.raise_for_status()
    return response.json()


def bearer(token: dict[str, Any] | str) -> dict[str, str]:
    value = token if isinstance(token, str) else token["access_token"]
    return {"Authorization": f"Bearer {value}"}
