"""The EHR as a CDS Hooks 2.0 client: what the chart page needs to call `patient-view`.

When a chart opens, the page asks the launcher for the calls to make (`/ehr/cds`); the
launcher discovers the app's services, answers their prefetch templates from its own FHIR
server (HAPI, as the EHR reads its database), mints a short patient-scoped access token for
the fallback (`fhirAuthorization`, usable at the launcher's FHIR proxy), and signs one JWT per
call with the EHR's CDS key (its JWKS published at /sandbox/cds/jwks.json). The browser then
POSTs each call itself, cross-origin, as browser-based CDS clients do: that is what the
services' CORS is for.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from joserfc import jwt

from .config import ClientSpec, LauncherConfig
from .keys import Key, public_jwk
from .scopes import ScopeSet
from .store import SandboxUser, Store, TokenRecord, new_id

log = logging.getLogger("smart_launcher.cds")
TIMEOUT = 10
JWT_LIFETIME = 240
TOKEN_LIFETIME = 300
HOOK = "patient-view"
#: What the CDS service may read at the proxy: the patient's chart, read only.
CDS_SCOPE = " ".join(f"patient/{t}.rs" for t in (
    "Patient", "Consent", "Provenance", "AuditEvent", "DocumentReference", "Communication",
    "RelatedPerson", "Observation", "Practitioner", "Organization"))
_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
_MAX_PAGES = 20


@dataclass(frozen=True)
class ChartContext:
    patient: str
    practitioner: str
    encounter: str | None = None


class CdsClient:
    """Prepares signed patient-view calls to an app's CDS services."""

    def __init__(self, config: LauncherConfig, store: Store, key: Key, alg: str,
                 http: requests.Session) -> None:
        self.config = config
        self.store = store
        self.key = key
        self.alg = alg
        self.http = http

    @property
    def issuer(self) -> str:
        return self.config.origin

    @property
    def jwks_url(self) -> str:
        return f"{self.config.origin}/sandbox/cds/jwks.json"

    def jwks(self) -> dict:
        return {"keys": [public_jwk(self.key, self.alg)]}

    def calls(self, spec: ClientSpec, chart: ChartContext, *, prefetch: bool = True
              ) -> list[dict[str, Any]]:
        """One prepared call per patient-view service of the app: url, token and body."""
        if not spec.cds_services:
            return []
        response = self.http.get(spec.cds_services, timeout=TIMEOUT,
                                 headers={"Accept": "application/json"})
        response.raise_for_status()
        services = [s for s in response.json().get("services", []) if s.get("hook") == HOOK]
        out = []
        for service in services:
            url = f"{spec.cds_services.rstrip('/')}/{service['id']}"
            body = self._body(spec, chart)
            if prefetch:
                body["prefetch"] = self._prefetch(service.get("prefetch") or {}, chart)
            out.append({"url": url, "token": self._jwt(url), "body": body})
        return out

    def _body(self, spec: ClientSpec, chart: ChartContext) -> dict[str, Any]:
        context: dict[str, Any] = {"userId": f"Practitioner/{chart.practitioner}",
                                   "patientId": chart.patient}
        if chart.encounter:
            context["encounterId"] = chart.encounter
        return {
            "hook": HOOK,
            "hookInstance": str(uuid.uuid4()),
            "fhirServer": self.config.fhir_base,
            "fhirAuthorization": self._access_token(spec, chart),
            "context": context,
        }

    def _access_token(self, spec: ClientSpec, chart: ChartContext) -> dict[str, Any]:
        """A short read-only token on the patient's chart, for the service's fallback fetch."""
        user = SandboxUser(practitioner=chart.practitioner,
                           fhir_user=f"{self.config.fhir_base}/Practitioner/{chart.practitioner}",
                           patient=chart.patient, need_patient_banner=False)
        record = TokenRecord(access_token=new_id(32), client_id=spec.client_id, scope=CDS_SCOPE,
                             user=user, expires_at=time.time() + TOKEN_LIFETIME,
                             scopes=ScopeSet.parse(CDS_SCOPE))
        self.store.save_token(record)
        log.info("cds access token issued client=%s", spec.client_id)
        return {"access_token": record.access_token, "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME, "scope": CDS_SCOPE, "subject": spec.client_id,
                "patient": chart.patient}

    def _jwt(self, audience: str) -> str:
        now = int(time.time())
        header = {"alg": self.alg, "typ": "JWT", "kid": self.key.thumbprint(),
                  "jku": self.jwks_url}
        claims = {"iss": self.issuer, "sub": "sandbox-ehr", "aud": audience, "iat": now,
                  "exp": now + JWT_LIFETIME, "jti": str(uuid.uuid4())}
        return jwt.encode(header, claims, self.key, algorithms=[self.alg])

    def _prefetch(self, templates: dict[str, str], chart: ChartContext) -> dict[str, Any]:
        """Each template the EHR can answer: its tokens replaced, read from HAPI, all pages
        in one Bundle. A template with a token it cannot fill, or a failed read, is left out
        (the key is absent), and the service fetches for itself."""
        values = {"context.patientId": chart.patient,
                  "context.userId": f"Practitioner/{chart.practitioner}",
                  "userPractitionerId": chart.practitioner,
                  "context.encounterId": chart.encounter}
        out: dict[str, Any] = {}
        for key, template in templates.items():
            names = _TOKEN.findall(template)
            if any(not values.get(name) for name in names):
                continue
            query = _TOKEN.sub(lambda m: str(values[m.group(1)]), template)
            try:
                out[key] = self._read(query)
            except (requests.RequestException, ValueError) as exc:
                log.warning("prefetch %s failed: %s", key, type(exc).__name__)
        return out

    def _read(self, query: str) -> dict[str, Any]:
        url = f"{self.config.upstream}/{query}"
        body = self._get(url)
        if body.get("resourceType") != "Bundle":
            return body
        entries = list(body.get("entry") or [])
        pages = 1
        following = _next(body)
        while following and pages < _MAX_PAGES:
            page = self._get(following)
            entries += page.get("entry") or []
            following, pages = _next(page), pages + 1
        if following:
            raise ValueError("too many pages")
        return {"resourceType": "Bundle", "type": "searchset",
                "total": len(entries), "entry": entries}

    def _get(self, url: str) -> dict[str, Any]:
        response = self.http.get(url, timeout=TIMEOUT, headers={"Accept": "application/fhir+json"})
        response.raise_for_status()
        return response.json()


def _next(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if link.get("relation") == "next":
            return link.get("url")
    return None
