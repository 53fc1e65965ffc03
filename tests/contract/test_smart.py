"""SMART client pieces against mocked servers: discovery, keys, Backend Services, EHR launch."""

from __future__ import annotations

import base64
import os
import stat
import time
import uuid
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests
from consent_gap.fhir import FhirClient, FhirHttpError
from consent_gap.smart import (
    BackendServicesAuth,
    DiscoveryError,
    IssuerNotAllowed,
    LaunchRefused,
    TokenError,
    TokenSet,
    discover,
    exchange_code,
    public_jwks,
    refresh,
    require_allowed_issuer,
    start_authorization,
)
from consent_gap.smart import discovery as discovery_mod
from consent_gap.smart.ehr_launch import build_authorize_url, s256_challenge, states_match
from consent_gap.smart.idtoken import IdTokenRejected, verify_id_token
from consent_gap.smart.keys import (
    KeyFileError,
    ensure_signing_key,
    generate_signing_key,
    load_signing_key,
    signing_key_from_pem,
)
from fhirfakes import BASE, bundle
from idtokens import claims_for, hmac_signed, jwks, signed, stranger_key, unsigned
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

ISS = "https://ehr.example.org/fhir"
TOKEN_URL = "https://ehr.example.org/auth/token"
AUTHORIZE_URL = "https://ehr.example.org/auth/authorize"
JWKS_URL = "https://ehr.example.org/auth/jwks"
SMART_DOC = {
    "jwks_uri": JWKS_URL,
    "authorization_endpoint": AUTHORIZE_URL,
    "token_endpoint": TOKEN_URL,
    "grant_types_supported": ["authorization_code", "client_credentials"],
    "capabilities": ["launch-ehr", "client-confidential-asymmetric", "permission-v2"],
    "code_challenge_methods_supported": ["S256"],
    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
}


@pytest.fixture(autouse=True)
def _fresh_discovery_cache():
    discovery_mod.clear_cache()
    yield
    discovery_mod.clear_cache()


# -- discovery --------------------------------------------------------------------------------
def test_discovery_reads_and_caches_the_configuration(mocked):
    mocked.get(f"{ISS}/.well-known/smart-configuration", json=SMART_DOC)
    session = requests.Session()
    config = discover(ISS + "/", session)
    assert config.token_endpoint == TOKEN_URL
    assert config.authorization_endpoint == AUTHORIZE_URL
    assert config.supports("launch-ehr") and config.supports_s256
    assert config.issuer == ISS
    assert discover(ISS, session) is config
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(("answer", "message"), [
    ({"status": 404, "json": {"error": "nope"}}, "HTTP 404"),
    ({"body": "<html>login</html>", "content_type": "text/html"}, "not JSON"),
    ({"json": ["a", "list"]}, "not a JSON object"),
    ({"json": {**SMART_DOC, "token_endpoint": None}}, "no token_endpoint"),
    ({"json": {k: v for k, v in SMART_DOC.items() if k != "authorization_endpoint"}},
     "no authorization_endpoint"),
    ({"json": {**SMART_DOC, "token_endpoint": "http://evil.example/token"}}, "must use https"),
    ({"json": {**SMART_DOC, "capabilities": "launch-ehr"}}, "not a list of strings"),
    ({"status": 302, "headers": {"Location": "https://evil.example/x"}}, "HTTP 302"),
])
def test_discovery_errors_are_one_line_reasons(mocked, answer, message):
    mocked.get(f"{ISS}/.well-known/smart-configuration", **answer)
    with pytest.raises(DiscoveryError, match=message):
        discover(ISS, requests.Session())
    assert len(mocked.calls) == 1  # no redirect followed


def test_discovery_connection_failure(mocked):
    mocked.get(f"{ISS}/.well-known/smart-configuration", body=requests.ConnectTimeout())
    with pytest.raises(DiscoveryError, match="cannot reach"):
        discover(ISS, requests.Session())


def test_discovery_refuses_plain_http_off_loopback_before_any_request(mocked):
    with pytest.raises(DiscoveryError, match="https"):
        discover("http://ehr.example.org/fhir", requests.Session())
    assert len(mocked.calls) == 0


def test_discovery_allows_plain_http_on_loopback(mocked):
    base = "http://127.0.0.1:8081/fhir"
    doc = {**SMART_DOC, "authorization_endpoint": "http://127.0.0.1:8081/auth/authorize",
           "token_endpoint": "http://localhost:8081/auth/token"}
    mocked.get(f"{base}/.well-known/smart-configuration", json=doc)
    assert discover(base, requests.Session()).token_endpoint == "http://localhost:8081/auth/token"


# -- keys -------------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_key_generated_once_written_private_and_published(tmp_path, alg):
    path = tmp_path / "keys" / "app.pem"
    key = ensure_signing_key(path, alg)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = ensure_signing_key(path, alg)
    assert again.kid == key.kid and again.alg == alg
    jwks = public_jwks(key)
    (jwk,) = jwks["keys"]
    assert jwk["kid"] == key.kid and jwk["alg"] == alg and jwk["use"] == "sig"
    assert "d" not in jwk  # public only
    cls = RSAKey if alg == "RS384" else ECKey
    assert cls.import_key(jwk).thumbprint() == key.kid  # kid is the RFC 7638 thumbprint


def test_key_errors_are_plain(tmp_path):
    with pytest.raises(KeyFileError, match="cannot read"):
        load_signing_key(tmp_path / "absent.pem")
    p256 = ECKey.generate_key("P-256").as_pem(private=True)
    with pytest.raises(KeyFileError, match="P-384"):
        signing_key_from_pem(p256)
    rsa = generate_signing_key("RS384").key.as_pem(private=True)
    with pytest.raises(KeyFileError, match="cannot sign ES384"):
        signing_key_from_pem(rsa, "ES384")
    with pytest.raises(KeyFileError, match="private key"):
        signing_key_from_pem(generate_signing_key("RS384").key.as_pem(private=False))


# -- backend services -----------------------------------------------------------------------
class Clock:
    def __init__(self, now: float = 1_900_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def token_answer(n: int, expires_in: int = 300) -> dict:
    return {"access_token": f"tok{n}", "token_type": "Bearer", "expires_in": expires_in,
            "scope": "system/Consent.rs system/AuditEvent.rs"}


@pytest.fixture(scope="module")
def rsa_key():
    return generate_signing_key("RS384")


def _auth(key, clock, **kw):
    return BackendServicesAuth(TOKEN_URL, "consent-gap-scan", scope="system/Consent.rs "
                               "system/AuditEvent.rs", key=key, clock=clock,
                               sleep=lambda s: None, **kw)


def _token_calls(mocked):
    return [c for c in mocked.calls if c.request.url == TOKEN_URL]


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_token_request_carries_a_valid_private_key_jwt(mocked, alg, rsa_key):
    key = rsa_key if alg == "RS384" else generate_signing_key("ES384")
    clock = Clock()
    mocked.post(TOKEN_URL, json=token_answer(1))
    auth = _auth(key, clock, jku="https://app.example.org/.well-known/jwks.json")
    assert auth.token().value == "tok1"

    form = dict(parse_qsl(_token_calls(mocked)[0].request.body))
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == \
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["scope"] == "system/Consent.rs system/AuditEvent.rs"
    public = (RSAKey if alg == "RS384" else ECKey).import_key(key.public_jwk())
    token = jwt.decode(form["client_assertion"], public, algorithms=[alg])
    assert token.header == {"alg": alg, "kid": key.kid, "typ": "JWT",
                            "jku": "https://app.example.org/.well-known/jwks.json"}
    c = token.claims
    assert c["iss"] == c["sub"] == "consent-gap-scan"
    assert c["aud"] == TOKEN_URL
    assert c["iat"] == int(clock.now) and 0 < c["exp"] - c["iat"] <= 300
    assert uuid.UUID(c["jti"]).version == 4


def test_each_assertion_has_a_fresh_jti(mocked, rsa_key):
    clock = Clock()
    mocked.post(TOKEN_URL, json=token_answer(1))
    auth = _auth(rsa_key, clock)
    auth.token()
    auth.invalidate()
    auth.token()
    jtis = {jwt.decode(dict(parse_qsl(c.request.body))["client_assertion"],
                       RSAKey.import_key(rsa_key.public_jwk()), algorithms=["RS384"]
                       ).claims["jti"] for c in _token_calls(mocked)}
    assert len(jtis) == 2


def test_token_is_cached_then_renewed_before_expiry(mocked, rsa_key):
    clock = Clock()
    mocked.post(TOKEN_URL, json=token_answer(1))
    mocked.post(TOKEN_URL, json=token_answer(2))
    mocked.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client = FhirClient(BASE, auth=_auth(rsa_key, clock), sleep=lambda s: None)

    client.read("Patient", "p1")
    clock.now += 200  # 100 s left: still fresh (margin 60 s)
    client.read("Patient", "p1")
    clock.now += 45  # 55 s left: renewed before it expires
    client.read("Patient", "p1")

    assert len(_token_calls(mocked)) == 2
    fhir = [c.request.headers["Authorization"] for c in mocked.calls if "Patient" in c.request.url]
    assert fhir == ["Bearer tok1", "Bearer tok1", "Bearer tok2"]


def test_short_lived_token_is_renewed_at_half_life(mocked, rsa_key):
    clock = Clock()
    mocked.post(TOKEN_URL, json=token_answer(1, expires_in=60))
    auth = _auth(rsa_key, clock)
    auth.token()
    clock.now += 29
    auth.token()
    assert len(_token_calls(mocked)) == 1
    clock.now += 2
    auth.token()
    assert len(_token_calls(mocked)) == 2


def test_expired_token_is_renewed_mid_scan_and_the_page_retried(mocked, rsa_key):
    """Page 2 of a search meets a 401 (the server revoked the token early): one renewal, the
    same page is re-sent with the new token, and the scan goes on."""
    clock = Clock()
    mocked.post(TOKEN_URL, json=token_answer(1))
    mocked.post(TOKEN_URL, json=token_answer(2))
    page2 = f"{BASE}?_getpages=xyz&_getpagesoffset=1"
    mocked.get(f"{BASE}/Consent", json=bundle([{"resourceType": "Consent", "id": "c1"}], page2))
    mocked.get(BASE, status=401, json={"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "login", "diagnostics": "token expired"}]})
    mocked.get(BASE, json=bundle([{"resourceType": "Consent", "id": "c2"}]))
    auth = _auth(rsa_key, clock)
    client = FhirClient(BASE, auth=auth, sleep=lambda s: None)

    ids = [r["id"] for r in client.search("Consent", {"patient": "p1"})]

    assert ids == ["c1", "c2"]
    assert auth.token_requests == 2
    fhir = [(c.request.url.split("?")[0], c.request.headers["Authorization"])
            for c in mocked.calls if c.request.url != TOKEN_URL]
    assert fhir == [(f"{BASE}/Consent", "Bearer tok1"), (BASE, "Bearer tok1"),
                    (BASE, "Bearer tok2")]


def test_a_second_401_is_returned_not_looped(mocked, rsa_key):
    mocked.post(TOKEN_URL, json=token_answer(1))
    mocked.get(f"{BASE}/Patient/p1", status=401)
    auth = _auth(rsa_key, Clock())
    client = FhirClient(BASE, auth=auth, sleep=lambda s: None)
    with pytest.raises(FhirHttpError) as err:
        client.read("Patient", "p1")
    assert err.value.status == 401
    assert auth.token_requests == 2
    assert len([c for c in mocked.calls if "Patient" in c.request.url]) == 2


def test_token_endpoint_refusal_is_readable_and_not_retried(mocked, rsa_key):
    mocked.post(TOKEN_URL, status=400, json={
        "error": "invalid_client", "error_description": "client_assertion exp too far"})
    with pytest.raises(TokenError) as err:
        _auth(rsa_key, Clock()).token()
    assert err.value.error == "invalid_client" and err.value.status == 400
    assert str(err.value) == ("token endpoint answered HTTP 400: invalid_client "
                              "(client_assertion exp too far)")
    assert len(mocked.calls) == 1


def test_token_endpoint_503_is_retried_with_a_new_assertion(mocked, rsa_key):
    mocked.post(TOKEN_URL, status=503)
    mocked.post(TOKEN_URL, json=token_answer(7))
    assert _auth(rsa_key, Clock()).token().value == "tok7"
    bodies = [dict(parse_qsl(c.request.body))["client_assertion"] for c in mocked.calls]
    assert len(bodies) == 2 and bodies[0] != bodies[1]


def test_backend_auth_loads_the_key_file_and_checks_the_alg(tmp_path, rsa_key):
    path = tmp_path / "scan.pem"
    ensure_signing_key(path, "RS384")
    auth = BackendServicesAuth(TOKEN_URL, "consent-gap-scan", path, "system/Consent.rs")
    assert auth.key.alg == "RS384"
    assert "tok" not in repr(auth)
    with pytest.raises(KeyFileError):
        BackendServicesAuth(TOKEN_URL, "consent-gap-scan", path, "", alg="ES384")


# -- EHR launch ---------------------------------------------------------------------------------
ALLOW = ["https://ehr.example.org/fhir/", "http://127.0.0.1:8081/fhir"]


@pytest.mark.parametrize("iss", [
    "https://EHR.example.org/fhir", "https://ehr.example.org:443/fhir/",
    "http://127.0.0.1:8081/fhir"])
def test_allowlist_accepts_the_same_issuer_in_other_spellings(iss):
    assert require_allowed_issuer(iss, ALLOW)


@pytest.mark.parametrize("iss", [
    "https://ehr.example.org.evil.example/fhir", "https://ehr.example.org/fhir/other",
    "https://ehr.example.org/fhi", "http://ehr.example.org/fhir",
    "https://ehr.example.org:8443/fhir", "https://ehr.example.org/fhir?x=1",
    "https://user@ehr.example.org/fhir", "javascript:alert(1)", "", None])
def test_allowlist_refuses_before_any_request(mocked, iss):
    def launch(iss):  # the order the web app follows: allowlist, then discovery
        require_allowed_issuer(iss, ALLOW)
        return discover(iss, requests.Session())

    with pytest.raises(IssuerNotAllowed):
        launch(iss)
    assert len(mocked.calls) == 0


def _config():
    return discovery_mod.SmartConfiguration.from_document(ISS, SMART_DOC)


def test_authorize_url_carries_everything_the_ehr_needs():
    pending = start_authorization(_config(), iss=ISS, client_id="consent-gap",
                                  redirect_uri="http://127.0.0.1:8082/callback",
                                  scope="launch openid fhirUser patient/Consent.rs",
                                  launch="xyz123", now=100.0)
    url = urlsplit(pending.authorize_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == AUTHORIZE_URL
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert q == {
        "response_type": "code", "client_id": "consent-gap",
        "redirect_uri": "http://127.0.0.1:8082/callback",
        "scope": "launch openid fhirUser patient/Consent.rs", "state": pending.state,
        "aud": ISS, "launch": "xyz123", "code_challenge": s256_challenge(pending.code_verifier),
        "code_challenge_method": "S256"}
    assert len(pending.state) >= 43 and len(pending.code_verifier) >= 43
    assert pending.token_endpoint == TOKEN_URL
    assert pending.state not in repr(pending) and pending.code_verifier not in repr(pending)
    other = start_authorization(_config(), iss=ISS, client_id="c", redirect_uri="r", scope="s")
    assert other.state != pending.state and other.code_verifier != pending.code_verifier
    assert states_match(pending.state, pending.state)
    assert not states_match(pending.state, other.state) and not states_match(None, None)


def test_s256_challenge_matches_rfc7636_example():
    assert s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_server_without_s256_is_refused():
    config = discovery_mod.SmartConfiguration.from_document(
        ISS, {**SMART_DOC, "code_challenge_methods_supported": ["plain"]})
    with pytest.raises(LaunchRefused, match="S256"):
        build_authorize_url(config, client_id="c", redirect_uri="r", scope="s", state="x",
                            code_challenge="y", aud=ISS)


def test_code_exchange_public_client(mocked):
    pending = start_authorization(_config(), iss=ISS, client_id="consent-gap",
                                  redirect_uri="http://127.0.0.1:8082/callback", scope="launch")
    mocked.get(JWKS_URL, json=jwks())
    mocked.post(TOKEN_URL, json={
        "access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
        "scope": "launch openid fhirUser patient/Consent.rs", "refresh_token": "rt-1",
        "patient": "p-123", "encounter": "enc-9", "need_patient_banner": True,
        "id_token": signed(claims_for(ISS, "consent-gap", fhirUser="Practitioner/dr-1",
                                      iat=990, exp=1300)),
        "fhirContext": [{"reference": "DocumentReference/d1"}]})
    tokens = exchange_code(requests.Session(), pending, code="the-code",
                           client_id="consent-gap", clock=lambda: 1000.0)

    form = dict(parse_qsl(mocked.calls[0].request.body))
    assert form == {"grant_type": "authorization_code", "code": "the-code",
                    "redirect_uri": "http://127.0.0.1:8082/callback",
                    "code_verifier": pending.code_verifier, "client_id": "consent-gap"}
    assert "Authorization" not in mocked.calls[0].request.headers
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_at) == \
        ("at-1", "rt-1", 4600.0)
    assert (tokens.patient, tokens.encounter, tokens.need_patient_banner) == \
        ("p-123", "enc-9", True)
    assert tokens.fhir_user == "Practitioner/dr-1"
    assert tokens.fhir_context == ({"reference": "DocumentReference/d1"},)
    assert "patient/Consent.rs" in tokens.scopes
    assert "at-1" not in repr(tokens) and "rt-1" not in repr(tokens)
    assert tokens.needs_refresh(4541.0) and not tokens.needs_refresh(4539.0)


def test_a_token_answer_without_scope_granted_what_was_asked(mocked):
    """RFC 6749 5.1: `scope` may be left out when it is exactly the one requested; the
    panel's actions follow the granted scope, so an omitted one must not read as nothing."""
    asked = "launch openid patient/*.rs patient/DocumentReference.c"
    pending = start_authorization(_config(), iss=ISS, client_id="consent-gap",
                                  redirect_uri="r", scope=asked)
    mocked.post(TOKEN_URL, json={"access_token": "at-1", "token_type": "Bearer",
                                 "expires_in": 3600, "patient": "p-1"})
    tokens = exchange_code(requests.Session(), pending, code="c", client_id="consent-gap")
    assert tokens.scope == asked
    mocked.post(TOKEN_URL, json={"access_token": "at-2", "token_type": "Bearer",
                                 "expires_in": 3600, "scope": "launch patient/*.rs"})
    narrower = exchange_code(requests.Session(), pending, code="c", client_id="consent-gap")
    assert narrower.scope == "launch patient/*.rs"  # a named grant is taken as named


def test_aud_is_the_launch_iss_exactly_as_sent():
    """An exact-matching server refuses a respelt aud; the FHIR base stays the normalized one."""
    launched = "https://EHR.example.org:443/fhir/"
    pending = start_authorization(_config(), iss=ISS, aud=launched, client_id="c",
                                  redirect_uri="r", scope="launch")
    query = {k: v[0] for k, v in parse_qs(urlsplit(pending.authorize_url).query).items()}
    assert query["aud"] == launched and pending.iss == ISS
    assert pending.id_token_issuer == launched and pending.jwks_uri == JWKS_URL


def test_the_id_token_issuer_is_the_one_discovery_names():
    config = discovery_mod.SmartConfiguration.from_document(
        ISS, {**SMART_DOC, "issuer": "https://login.example.org"})
    pending = start_authorization(config, iss=ISS, client_id="c", redirect_uri="r", scope="s")
    assert pending.id_token_issuer == "https://login.example.org"


NOW = 1_000_000.0


def _claims(**overrides):
    return claims_for(ISS, "consent-gap", **{"iat": int(NOW) - 5, "exp": int(NOW) + 300,
                                             **overrides})


def _verify(token):
    from joserfc.jwk import KeySet

    return verify_id_token(token, KeySet.import_key_set(jwks()), issuer=ISS,
                           client_id="consent-gap", now=NOW)


def test_a_good_id_token_gives_its_claims():
    assert _verify(signed(_claims()))["fhirUser"] == f"{ISS}/Practitioner/dr-1"
    assert _verify(signed(_claims(aud=["consent-gap"])))["sub"] == "dr-1"
    assert _verify(signed(_claims(aud=["consent-gap", "x"], azp="consent-gap")))["sub"]


@pytest.mark.parametrize("token, reason", [
    (lambda: signed(_claims(), key=stranger_key()), "signature"),
    (lambda: unsigned(_claims()), "algorithm"),
    (lambda: hmac_signed(_claims()), "algorithm"),
    (lambda: signed(_claims()).rsplit(".", 1)[0] + ".AAAA", "signature"),
    (lambda: signed(_claims(exp=int(NOW) - 120)), "expired"),
    (lambda: signed(_claims(exp=None)), "expired"),
    (lambda: signed(_claims(iat=int(NOW) + 600)), "issue time"),
    (lambda: signed(_claims(iat=int(NOW) - 7200)), "issue time"),
    (lambda: signed(_claims(iss="https://evil.example.org/fhir")), "not issued by this EHR"),
    (lambda: signed(_claims(iss=ISS + "/")), "not issued by this EHR"),
    (lambda: signed(_claims(aud="another-app")), "not issued for consent-gap"),
    (lambda: signed(_claims(aud=["consent-gap", "x"])), "azp"),
    (lambda: signed(_claims(azp="another-app")), "azp"),
    (lambda: signed(_claims(sub=None)), "subject"),
    (lambda: "not-a-jwt", "not a signed JWT"),
], ids=["forged", "alg-none", "hs256", "tampered", "expired", "no-exp", "iat-future",
        "iat-old", "wrong-issuer", "issuer-respelt", "wrong-audience", "many-aud-no-azp",
        "foreign-azp", "no-sub", "garbled"])
def test_a_bad_id_token_is_rejected(token, reason):
    with pytest.raises(IdTokenRejected, match=reason):
        _verify(token())


def test_code_exchange_refuses_a_forged_id_token(mocked):
    pending = start_authorization(_config(), iss=ISS, client_id="consent-gap",
                                  redirect_uri="r", scope="launch")
    mocked.get(JWKS_URL, json=jwks())
    mocked.post(TOKEN_URL, json={"access_token": "a", "token_type": "Bearer",
                                 "id_token": signed(claims_for(ISS, "consent-gap"),
                                                    key=stranger_key())})
    with pytest.raises(IdTokenRejected, match="signature"):
        exchange_code(requests.Session(), pending, code="c", client_id="consent-gap")


def test_jwks_is_fetched_again_for_a_new_kid_and_symmetric_keys_are_ignored(mocked):
    from consent_gap.smart.idtoken import verified_claims

    secret = {"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}
    mocked.get(JWKS_URL, json={"keys": [secret]})
    mocked.get(JWKS_URL, json=jwks())
    session = requests.Session()
    first = discovery_mod.fetch_jwks(JWKS_URL, session)
    assert first == {"keys": []}
    claims = verified_claims(session, signed(claims_for(ISS, "c")), jwks_uri=JWKS_URL,
                             issuer=ISS, client_id="c")
    assert claims["sub"] == "dr-1" and len(mocked.calls) == 2


def test_an_id_token_without_a_jwks_uri_to_check_it_is_rejected(mocked):
    config = discovery_mod.SmartConfiguration.from_document(
        ISS, {k: v for k, v in SMART_DOC.items() if k != "jwks_uri"})
    pending = start_authorization(config, iss=ISS, client_id="c", redirect_uri="r", scope="s")
    mocked.post(TOKEN_URL, json={"access_token": "a", "token_type": "Bearer",
                                 "id_token": signed(claims_for(ISS, "c"))})
    with pytest.raises(IdTokenRejected, match="jwks_uri"):
        exchange_code(requests.Session(), pending, code="c", client_id="c")


def test_without_an_id_token_there_is_no_user(mocked):
    pending = start_authorization(_config(), iss=ISS, client_id="c", redirect_uri="r",
                                  scope="s")
    mocked.post(TOKEN_URL, json={"access_token": "a", "token_type": "Bearer",
                                 "fhirUser": "Practitioner/claimed"})
    tokens = exchange_code(requests.Session(), pending, code="c", client_id="c")
    assert tokens.fhir_user is None and tokens.id_token is None


def test_code_exchange_confidential_client_uses_basic_auth(mocked):
    pending = start_authorization(_config(), iss=ISS, client_id="app", redirect_uri="r",
                                  scope="launch")
    mocked.post(TOKEN_URL, json={"access_token": "a", "token_type": "bearer"})
    exchange_code(requests.Session(), pending, code="c", client_id="app", client_secret="s3")
    req = mocked.calls[0].request
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"app:s3").decode()
    assert "client_id" not in dict(parse_qsl(req.body))


def test_code_exchange_refused(mocked):
    pending = start_authorization(_config(), iss=ISS, client_id="app", redirect_uri="r",
                                  scope="launch")
    mocked.post(TOKEN_URL, status=400, json={"error": "invalid_grant",
                                             "error_description": "Code challenge failed."})
    with pytest.raises(TokenError) as err:
        exchange_code(requests.Session(), pending, code="c", client_id="app")
    assert err.value.error == "invalid_grant"
    assert len(mocked.calls) == 1


def test_refresh_keeps_the_launch_context(mocked):
    old = TokenSet(access_token="at-1", expires_at=100.0, scope="launch patient/Consent.rs",
                   refresh_token="rt-1", patient="p-123", encounter="enc-9",
                   need_patient_banner=True, fhir_user="Practitioner/dr-1")
    mocked.post(TOKEN_URL, json={"access_token": "at-2", "token_type": "Bearer",
                                 "expires_in": 300,
                                 "id_token": unsigned({"fhirUser": "Practitioner/mallory"})})
    new = refresh(requests.Session(), TOKEN_URL, old, client_id="consent-gap",
                  clock=lambda: 90.0)
    form = dict(parse_qsl(mocked.calls[0].request.body))
    assert form == {"grant_type": "refresh_token", "refresh_token": "rt-1",
                    "client_id": "consent-gap"}
    assert (new.access_token, new.expires_at, new.refresh_token) == ("at-2", 390.0, "rt-1")
    assert (new.patient, new.encounter, new.need_patient_banner, new.fhir_user, new.scope) == \
        ("p-123", "enc-9", True, "Practitioner/dr-1", "launch patient/Consent.rs")


def test_refresh_without_a_refresh_token_asks_nothing(mocked):
    old = TokenSet(access_token="a", expires_at=time.time())
    with pytest.raises(LaunchRefused, match="refresh token"):
        refresh(requests.Session(), TOKEN_URL, old, client_id="c")
    assert len(mocked.calls) == 0


def test_responses_would_refuse_an_unexpected_call(mocked):
    """Guard for the zero-call assertions above: an unregistered URL raises, so a request
    that slipped through could not pass silently."""
    with pytest.raises(requests.ConnectionError):
        requests.get("https://unregistered.example/")
    assert len(mocked.calls) == 1
