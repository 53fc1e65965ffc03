"""A fake SMART EHR for the web app's contract tests: discovery, token endpoint and a small
FHIR server over one example bundle, all on `responses` (nothing listens)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import responses
from idtokens import claims_for, jwks, signed

ISS = "https://ehr.test/fhir"
AUTHORIZE = "https://ehr.test/auth/authorize"
TOKEN = "https://ehr.test/auth/token"
JWKS = "https://ehr.test/auth/jwks"
CLIENT_ID = "consent-gap"
#: What the fake grants by default: reads, and the creates every panel action needs.
WRITE_SCOPES = ("patient/DocumentReference.c patient/Communication.c patient/Provenance.c "
                "patient/Device.c")
GRANTED = f"launch openid fhirUser patient/*.rs {WRITE_SCOPES}"
EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"

SMART_CONFIGURATION = {
    "issuer": ISS,
    "authorization_endpoint": AUTHORIZE,
    "token_endpoint": TOKEN,
    "jwks_uri": JWKS,
    "grant_types_supported": ["authorization_code", "client_credentials"],
    "code_challenge_methods_supported": ["S256"],
    "capabilities": ["launch-ehr", "launch-standalone", "context-ehr-patient", "permission-v2"],
}


def example_resources(name: str) -> list[dict]:
    bundle = json.loads((EXAMPLES / name).read_text())
    return [entry["resource"] for entry in bundle["entry"]]


def searchset(resources: list[dict]) -> dict:
    return {
        "resourceType": "Bundle", "type": "searchset", "total": len(resources),
        "link": [{"relation": "self", "url": ISS}],
        "entry": [{"fullUrl": f"{ISS}/{r['resourceType']}/{r['id']}", "resource": r}
                  for r in resources],
    }


class FakeEhr:
    """Registers the EHR's endpoints on a RequestsMock and records what the app sent."""

    def __init__(self, mocked: responses.RequestsMock, resources: list[dict],
                 patient: str, *, expires_in: int = 3600, refresh_token: str | None = "rt-1",
                 need_patient_banner: bool = True, scope: str = GRANTED,
                 id_token: str | None = "good") -> None:
        self.mocked = mocked
        self.resources = resources
        self.patient = patient
        self.expires_in = expires_in
        self.refresh_token = refresh_token
        self.need_patient_banner = need_patient_banner
        self.scope = scope
        self.id_token = id_token  # "good": a fresh, properly signed one; None: none at all
        self.token_forms: list[dict] = []
        self.transactions: list[dict] = []
        self.tokens_issued = 0
        self.fhir_tokens: list[str] = []
        mocked.get(f"{ISS}/.well-known/smart-configuration", json=SMART_CONFIGURATION)
        mocked.get(JWKS, json=jwks())
        mocked.add_callback(responses.POST, TOKEN, callback=self._token)
        mocked.add_callback(responses.GET, re.compile(re.escape(ISS) + r"/[A-Z].*"),
                            callback=self._read_or_search)
        mocked.add_callback(responses.POST, ISS, callback=self._transaction)

    def _token(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        self.token_forms.append(form)
        self.tokens_issued += 1
        body = {
            "access_token": f"at-{self.tokens_issued}", "token_type": "Bearer",
            "expires_in": self.expires_in, "scope": self.scope,
            "patient": self.patient, "need_patient_banner": self.need_patient_banner,
        }
        if self.id_token:
            body["id_token"] = (signed(claims_for(ISS, CLIENT_ID)) if self.id_token == "good"
                                else self.id_token)
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _read_or_search(self, request):
        self.fhir_tokens.append(request.headers.get("Authorization", ""))
        parts = urlsplit(request.url)
        path = parts.path[len(urlsplit(ISS).path):].strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        of_type = [r for r in self.resources if r["resourceType"] == path[0]]
        if len(path) == 2:
            found = [r for r in of_type if r["id"] == path[1]]
            if not found:
                return 404, {}, json.dumps({"resourceType": "OperationOutcome", "issue": []})
            return 200, {"Content-Type": "application/fhir+json"}, json.dumps(found[0])
        if "_id" in query:
            wanted = set(query["_id"].split(","))
            of_type = [r for r in of_type if r["id"] in wanted]
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(searchset(of_type))

    def _transaction(self, request):
        bundle = json.loads(request.body)
        self.transactions.append(bundle)
        entries = []
        for number, entry in enumerate(bundle["entry"]):
            rtype = entry["resource"]["resourceType"]
            entries.append({"response": {"status": "201 Created",
                                         "location": f"{rtype}/new-{number}/_history/1"}})
        body = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(body)

    def fhir_calls(self) -> list[str]:
        return [c.request.url for c in self.mocked.calls
                if c.request.url.startswith(ISS + "/") and "well-known" not in c.request.url]
