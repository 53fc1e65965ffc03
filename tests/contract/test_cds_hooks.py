"""The CDS Hooks `patient-view` service (CONTRACT.md section 9) against a fake EHR: the CDS
client's JWKS and FHIR server are mocked with `responses`; the tokens are signed here."""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest
import responses
from consent_gap.evaluate import evaluate
from consent_gap.mappings import default_folder
from consent_gap.web import create_app
from consent_gap.web.cds import SERVICE_ID
from consent_gap.web.config import WebConfig
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from webfakes import ISS, FakeEhr, example_resources, searchset

CDS_ISSUER = "https://ehr.test"
JWKS_URL = "https://ehr.test/cds/jwks.json"
APP = "https://app.test"
SERVICE = f"{APP}/cds-services/{SERVICE_ID}"
KEY = ECKey.generate_key("P-384", private=True)
KID = "ehr-cds-1"
OTHER_KEY = ECKey.generate_key("P-384", private=True)
CASES = {  # example, patient, jurisdiction
    "none": ("01-authorized-lawyer.json", "p-jvance", None),
    "permitted-complete": ("06-duty-to-warn-ca.json", "p-dhpike", "US-CA"),
    "review": ("03-authorization-revoked.json", "p-mferris", None),
    "undocumented": ("07-duty-to-warn-tx.json", "p-lteague", "US-TX"),
    "unauthorized": ("02-authorization-expired.json", "p-pnholt", None),
    "several": ("14-one-consent-over-time-deny-class.json", "p-tquill", None),
}


def jwks_of(*pairs) -> dict:
    keys = []
    for key, kid in pairs:
        jwk = dict(key.as_dict(private=False))
        jwk.update(kid=kid, alg="ES384" if isinstance(key, ECKey) else "RS384", use="sig")
        keys.append(jwk)
    return {"keys": keys}


def token(*, key=KEY, kid=KID, alg="ES384", **claims) -> str:
    now = int(time.time())
    body = {"iss": CDS_ISSUER, "aud": SERVICE, "exp": now + 240, "iat": now,
            "jti": str(uuid.uuid4())}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    return jwt.encode(header, body, key, algorithms=[alg])


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(JWKS_URL, json=jwks_of((KEY, KID)))
        yield rsps


def make_app(jurisdiction=None, **overrides):
    values = dict(allowed_issuers=(ISS,), secret_key="k", public_url=APP,
                  jurisdiction=jurisdiction, cds_clients=((CDS_ISSUER, JWKS_URL),))
    values.update(overrides)
    return create_app(config=WebConfig(**values))


def full_prefetch(resources: list[dict], patient: str) -> dict:
    """Every template answered, as a CDS client would: each type under its key, whatever the
    disclosures name (disclosed records, instruments) as the AuditEvent search's includes."""
    by_key = {"relatedPersons": "RelatedPerson", "consents": "Consent",
              "consentProvenance": "Provenance", "documents": "DocumentReference",
              "communications": "Communication"}
    prefetch = {key: searchset([r for r in resources if r["resourceType"] == rtype])
                for key, rtype in by_key.items()}
    prefetch["patient"] = next(r for r in resources
                               if r["resourceType"] == "Patient" and r["id"] == patient)
    named = {"Patient", *by_key.values()}
    prefetch["disclosures"] = searchset([r for r in resources if r["resourceType"] not in named])
    prefetch["disclosureNotes"] = searchset([])
    prefetch["notices"] = searchset([])
    return prefetch


def hook_body(patient: str, prefetch: dict | None = None, *, server: str | None = ISS,
              access_token: str | None = "cds-at-1") -> dict:
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/pr-1", "patientId": patient}}
    if server:
        body["fhirServer"] = server
    if access_token:
        body["fhirAuthorization"] = {"access_token": access_token, "token_type": "Bearer",
                                     "expires_in": 300, "scope": "patient/*.rs",
                                     "subject": "consent-gap", "patient": patient}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def call(app, body, bearer: str | None = "default"):
    headers = {}
    if bearer == "default":
        bearer = token()
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return app.test_client().post(f"/cds-services/{SERVICE_ID}", json=body, headers=headers)


def fhir_calls(mocked) -> list:
    return [c for c in mocked.calls if c.request.url.startswith(ISS + "/")
            and "well-known" not in c.request.url]


# ---- discovery -------------------------------------------------------------------------------

def test_discovery_lists_the_one_patient_view_service_with_its_prefetch(mocked):
    response = make_app().test_client().get("/cds-services")
    assert response.status_code == 200
    services = response.get_json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [(SERVICE_ID, "patient-view")]
    service = services[0]
    assert service["title"] and service["description"]
    prefetch = service["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert prefetch["consents"] == "Consent?patient={{context.patientId}}"
    disclosures = prefetch["disclosures"]
    assert disclosures.startswith("AuditEvent?patient={{context.patientId}}&")
    assert "type=http://dicom.nema.org/resources/ontology/DCM|110106" in disclosures
    assert "subtype=http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle|disclose" \
        in disclosures
    assert "_include=AuditEvent:entity" in disclosures
    for key in ("consentProvenance", "relatedPersons", "documents", "disclosureNotes",
                "communications", "notices"):
        assert "{{context.patientId}}" in prefetch[key], key
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_discovery_takes_the_disclosure_codes_from_the_mappings(tmp_path: Path):
    folder = tmp_path / "mappings"
    shutil.copytree(str(default_folder()), folder)
    table = folder / "disclosures.toml"
    table.write_text(table.read_text().replace('code = "110106"', 'code = "999106"'))
    prefetch = make_app(mappings=folder).test_client().get(
        "/cds-services").get_json()["services"][0]["prefetch"]
    assert "DCM|999106" in prefetch["disclosures"]
    assert "110106" not in prefetch["disclosures"]


def test_cors_preflight_allows_a_browser_cds_client(mocked):
    response = make_app().test_client().options(
        f"/cds-services/{SERVICE_ID}",
        headers={"Origin": "https://other-ehr.test", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "Access-Control-Allow-Credentials" not in response.headers


# ---- the three outcomes ------------------------------------------------------------------------

def _card(mocked, case: str):
    example, patient, jurisdiction = CASES[case]
    resources = example_resources(example)
    response = call(make_app(jurisdiction), hook_body(patient, full_prefetch(resources, patient)))
    assert response.status_code == 200, response.get_json()
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    return response.get_json()["cards"], evaluate(resources, jurisdiction)


@pytest.mark.parametrize("case", ["none", "permitted-complete"])
def test_no_card_when_nothing_is_unauthorized_review_or_missing(mocked, case):
    cards, report = _card(mocked, case)
    assert report.findings  # there were disclosures, all of them fine
    assert cards == []


@pytest.mark.parametrize("case,summary", [
    ("review", "1 needs review"),
    ("undocumented", "documentation missing for 1"),
])
def test_warning_card_for_review_or_missing_documentation(mocked, case, summary):
    cards, _ = _card(mocked, case)
    assert cards == [{
        "summary": summary, "indicator": "warning", "source": {"label": "consent-gap"},
        "links": [{"label": "Open consent-gap", "url": f"{APP}/launch", "type": "smart"}],
    }]


@pytest.mark.parametrize("case,summary", [
    ("unauthorized", "1 disclosure lacks an authorization"),
    ("several", "2 disclosures lack an authorization"),
])
def test_critical_card_when_any_disclosure_is_unauthorized(mocked, case, summary):
    cards, report = _card(mocked, case)
    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == "critical"
    assert card["summary"] == summary
    assert len(card["summary"]) <= 140
    assert card["source"] == {"label": "consent-gap"}
    assert card["links"] == [{"label": "Open consent-gap", "url": f"{APP}/launch",
                              "type": "smart"}]
    assert sum(f.decision == "unauthorized" for f in report.findings) == int(summary[0])


# ---- prefetch complete or not --------------------------------------------------------------------

def test_complete_prefetch_is_decided_without_reading_the_fhir_server(mocked):
    example, patient, _ = CASES["unauthorized"]
    FakeEhr(mocked, example_resources(example), patient)
    response = call(make_app(), hook_body(patient, full_prefetch(example_resources(example),
                                                                  patient)))
    assert response.get_json()["cards"][0]["indicator"] == "critical"
    assert fhir_calls(mocked) == []


@pytest.mark.parametrize("spoil", ["missing-key", "null", "operation-outcome", "next-page",
                                   "other-patient", "no-prefetch"])
def test_incomplete_prefetch_falls_back_to_the_fhir_server(mocked, spoil):
    example, patient, _ = CASES["unauthorized"]
    resources = example_resources(example)
    fake = FakeEhr(mocked, resources, patient)
    prefetch = full_prefetch(resources, patient)
    if spoil == "missing-key":
        del prefetch["consents"]
    elif spoil == "null":
        prefetch["consentProvenance"] = None
    elif spoil == "operation-outcome":
        prefetch["documents"] = {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "forbidden"}]}
    elif spoil == "next-page":
        prefetch["consents"]["link"].append({"relation": "next", "url": f"{ISS}/Consent?p=2"})
    elif spoil == "other-patient":
        prefetch["patient"] = {**prefetch["patient"], "id": "someone-else"}
    elif spoil == "no-prefetch":
        prefetch = None
    response = call(make_app(), hook_body(patient, prefetch))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["cards"][0]["indicator"] == "critical"
    assert fhir_calls(mocked), "the chart was not fetched"
    assert set(fake.fhir_tokens) == {"Bearer cds-at-1"}  # the token the CDS client gave
    searched = {c.request.url.split("?")[0].rsplit("/", 1)[-1] for c in fhir_calls(mocked)}
    assert {"Consent", "AuditEvent", "Provenance"} <= searched


def test_fallback_gives_the_same_card_as_the_prefetch(mocked):
    example, patient, jurisdiction = CASES["several"]
    resources = example_resources(example)
    FakeEhr(mocked, resources, patient)
    app = make_app(jurisdiction)
    prefetched = call(app, hook_body(patient, full_prefetch(resources, patient))).get_json()
    fetched = call(app, hook_body(patient, None)).get_json()
    assert fetched == prefetched
    assert fetched["cards"][0]["summary"] == "2 disclosures lack an authorization"


def test_incomplete_prefetch_without_authorization_is_412(mocked):
    _, patient, _ = CASES["unauthorized"]
    response = call(make_app(), hook_body(patient, None, access_token=None))
    assert response.status_code == 412
    assert fhir_calls(mocked) == []


def test_a_fhir_server_off_the_allowlist_never_receives_the_token(mocked):
    _, patient, _ = CASES["unauthorized"]
    stranger = "https://stranger.test/fhir"
    mocked.get(f"{stranger}/Patient/{patient}", json={"resourceType": "Patient", "id": patient})
    response = call(make_app(), hook_body(patient, None, server=stranger))
    assert response.status_code == 412
    assert not [c for c in mocked.calls if c.request.url.startswith(stranger)]


def test_a_refused_fhir_authorization_is_412(mocked):
    _, patient, _ = CASES["unauthorized"]
    mocked.get(re.compile(re.escape(ISS) + r"/[A-Z].*"), status=401,
               json={"resourceType": "OperationOutcome", "issue": []})
    response = call(make_app(), hook_body(patient, None))
    assert response.status_code == 412


@pytest.mark.parametrize("body", [
    {"hook": "order-select", "hookInstance": "x", "context": {"patientId": "p-1"}},
    {"hook": "patient-view", "context": {"patientId": "p-1"}},
    {"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "../Patient"}},
    {"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "p-1"},
     "fhirServer": ISS, "fhirAuthorization": {"access_token": "t", "token_type": "Bearer",
                                              "patient": "p-2"}},
])
def test_a_malformed_hook_call_is_400(mocked, body):
    assert call(make_app(), body).status_code == 400


# ---- the CDS client's JWT ---------------------------------------------------------------------

@pytest.mark.parametrize("bearer", [
    pytest.param(None, id="no-token"),
    pytest.param("not-a-jwt", id="garbage"),
    pytest.param(token(key=OTHER_KEY), id="bad-signature"),
    pytest.param(token(exp=int(time.time()) - 120, iat=int(time.time()) - 400), id="expired"),
    pytest.param(token(iss="https://foreign-ehr.test"), id="foreign-issuer"),
    pytest.param(token(aud=f"{APP}/cds-services/another-service"), id="wrong-aud"),
    pytest.param(token(aud="https://app.test"), id="aud-is-the-app-not-the-service"),
    pytest.param(token(kid=None), id="no-kid"),
    pytest.param(token(kid="unknown-kid"), id="unknown-kid"),
    pytest.param(token(jti=None), id="no-jti"),
    pytest.param(token(exp=int(time.time()) + 3600), id="lifetime-over-five-minutes"),
    pytest.param(token(key=RSAKey.generate_key(2048, private=True), alg="RS256"),
                 id="alg-not-rs384-or-es384"),
])
def test_a_call_without_a_valid_cds_client_token_is_401(mocked, bearer):
    example, patient, _ = CASES["unauthorized"]
    resources = example_resources(example)
    response = call(make_app(), hook_body(patient, full_prefetch(resources, patient)),
                    bearer=bearer)
    assert response.status_code == 401
    assert "cards" not in response.get_json()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_hmac_token_keyed_with_the_public_jwks_is_401(mocked):
    from joserfc.jwk import OctKey

    fake = OctKey.import_key(json.dumps(jwks_of((KEY, KID))["keys"][0]).encode())
    now = int(time.time())
    forged = jwt.encode({"alg": "HS256", "kid": KID},
                        {"iss": CDS_ISSUER, "aud": SERVICE, "exp": now + 60, "iat": now,
                         "jti": "x"}, fake)
    _, patient, _ = CASES["unauthorized"]
    assert call(make_app(), hook_body(patient, None), bearer=forged).status_code == 401


def test_a_replayed_token_is_401(mocked):
    example, patient, _ = CASES["none"]
    app = make_app()
    body = hook_body(patient, full_prefetch(example_resources(example), patient))
    once = token()
    assert call(app, body, bearer=once).status_code == 200
    assert call(app, body, bearer=once).status_code == 401


def test_a_rotated_key_is_found_by_fetching_the_jwks_again(mocked):
    example, patient, _ = CASES["none"]
    app = make_app()
    body = hook_body(patient, full_prefetch(example_resources(example), patient))
    assert call(app, body).status_code == 200
    new_key = ECKey.generate_key("P-384", private=True)
    mocked.replace(responses.GET, JWKS_URL, json=jwks_of((KEY, KID), (new_key, "ehr-cds-2")))
    # Within the refetch interval the cached set is kept: the new kid is refused for now...
    assert call(app, body, bearer=token(key=new_key, kid="ehr-cds-2")).status_code == 401
    cache = app.extensions["consent_gap.cds_verifier"]._jwks
    cache._sets = {url: (at - 60, keys) for url, (at, keys) in cache._sets.items()}
    # ... and found once the interval has passed.
    assert call(app, body, bearer=token(key=new_key, kid="ehr-cds-2")).status_code == 200


def test_a_jku_in_the_token_is_never_fetched(mocked):
    example, patient, _ = CASES["none"]
    evil = "https://evil.test/jwks.json"
    mocked.get(evil, json=jwks_of((OTHER_KEY, KID)))
    now = int(time.time())
    forged = jwt.encode({"alg": "ES384", "kid": KID, "jku": evil},
                        {"iss": CDS_ISSUER, "aud": SERVICE, "exp": now + 60, "iat": now,
                         "jti": "j"}, OTHER_KEY, algorithms=["ES384"])
    body = hook_body(patient, full_prefetch(example_resources(example), patient))
    assert call(make_app(), body, bearer=forged).status_code == 401
    assert not [c for c in mocked.calls if c.request.url.startswith("https://evil.test")]


def test_without_any_configured_cds_client_every_call_is_401(mocked):
    example, patient, _ = CASES["none"]
    body = hook_body(patient, full_prefetch(example_resources(example), patient))
    assert call(make_app(cds_clients=()), body).status_code == 401


# ---- privacy -----------------------------------------------------------------------------------

def _names(resources: list[dict]) -> set[str]:
    found = set()
    for resource in resources:
        names = resource.get("name")
        names = names if isinstance(names, list) else [{"text": names}] if names else []
        for name in names:
            found |= {p for p in [name.get("text"), name.get("family"), *name.get("given", [])]
                      if isinstance(p, str) and len(p) > 2}
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_names_in_the_card_or_the_logs(mocked, caplog, case):
    example, patient, jurisdiction = CASES[case]
    resources = example_resources(example)
    names = _names(resources)
    assert names, "the example names nobody; the test would prove nothing"
    FakeEhr(mocked, resources, patient)
    caplog.set_level(logging.DEBUG)
    app = make_app(jurisdiction)
    texts = [json.dumps(call(app, hook_body(patient, full_prefetch(resources, patient)))
                        .get_json()),
             json.dumps(call(app, hook_body(patient, None)).get_json())]
    logged = caplog.text
    assert f"Patient/{patient}" in logged  # the log says which chart, by id
    for name in names:
        assert all(name not in text for text in texts), name
        assert name not in logged, name
    assert "cds-at-1" not in logged


def _without_disclosed_record(patient="p-caldana"):
    resources = example_resources("19-deny-sdv-on-mixed-labels.json")
    prefetch = full_prefetch(resources, patient)
    # A CDS client that answered every template but left the disclosed record out (as one
    # that ignores `_include` would, when the record is not the patient's own document).
    prefetch["documents"] = searchset([])
    return resources, prefetch


def test_a_complete_prefetch_lacking_a_disclosed_record_fetches_just_that(mocked):
    resources, prefetch = _without_disclosed_record()
    FakeEhr(mocked, resources, "p-caldana")
    full = call(make_app(), hook_body("p-caldana", full_prefetch(resources, "p-caldana")))
    completed = call(make_app(), hook_body("p-caldana", prefetch))
    assert completed.get_json() == full.get_json()
    assert full.get_json()["cards"][0]["indicator"] == "critical"
    urls = [c.request.url for c in fhir_calls(mocked)]
    assert len(urls) == 1 and "/DocumentReference?" in urls[0]
    assert "_id=dr-caldana-intake" in urls[0] and "patient=Patient%2Fp-caldana" in urls[0]


def test_without_authorization_a_complete_prefetch_is_decided_as_it_is(mocked):
    resources, prefetch = _without_disclosed_record()
    response = call(make_app(), hook_body("p-caldana", prefetch, access_token=None))
    assert response.status_code == 200
    reduced = [r for r in resources if r["id"] != "dr-caldana-intake"]
    expected = evaluate(reduced).findings
    assert expected and expected[0].decision == "review"  # the record is unresolved
    assert response.get_json()["cards"][0]["summary"] == "1 needs review"
    assert fhir_calls(mocked) == []


def test_a_prefetch_larger_than_the_forms_limit_is_accepted(mocked):
    example, patient, _ = CASES["unauthorized"]
    resources = example_resources(example)
    prefetch = full_prefetch(resources, patient)
    prefetch["documents"]["entry"].append({"resource": {
        "resourceType": "DocumentReference", "id": "big", "status": "current",
        "subject": {"reference": f"Patient/{patient}"},
        "content": [{"attachment": {"data": "QUFB" * 100_000}}]}})  # ~400 KB
    response = call(make_app(), hook_body(patient, prefetch))
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["indicator"] == "critical"
