"""SMART launcher conformance: discovery, EHR and standalone launch, PKCE, codes, consent, refresh.

The launcher runs in this process (a thread, a free port) in front of a small fake FHIR server,
so these tests need neither HAPI nor the sandbox scripts; test_launcher_live.py covers the
launcher in front of the real HAPI.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sandbox" / "smart"))

from smart_launcher.testing import (
    APP_REDIRECT,
    OTHER_PATIENT,
    PATIENT,
    TEST_REDIRECT,
    bearer,
    ehr_launch,
    exchange_code,
    query_of,
    running_sandbox,
    sample_resources,
    start_authorization,
)

pytestmark = pytest.mark.integration

PANEL_SCOPE = "launch openid fhirUser online_access patient/Patient.r patient/Consent.rs"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("keys"), sample_resources()) as running:
        yield running


def _panel_code(sandbox, **extra):
    launch = ehr_launch(sandbox, PATIENT, "consent-gap")
    return start_authorization(
        sandbox, "consent-gap", PANEL_SCOPE, launch=launch, redirect_uri=APP_REDIRECT, **extra
    )


def test_discovery_document_lists_smart_2_features(sandbox):
    response = requests.get(f"{sandbox.fhir_base}/.well-known/smart-configuration", timeout=10)
    assert response.status_code == 200
    doc = response.json()
    assert doc["authorization_endpoint"] == sandbox.authorize_url
    assert doc["token_endpoint"] == sandbox.token_url
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert {"authorization_code", "client_credentials"} <= set(doc["grant_types_supported"])
    for capability in (
        "launch-ehr",
        "launch-standalone",
        "client-public",
        "client-confidential-asymmetric",
        "context-ehr-patient",
        "context-ehr-encounter",
        "context-standalone-patient",
        "context-banner",
        "permission-v2",
        "permission-patient",
        "sso-openid-connect",
    ):
        assert capability in doc["capabilities"]


def test_ehr_launch_token_carries_the_launch_context_and_an_id_token(sandbox):
    started = _panel_code(sandbox, nonce="nonce-1")
    assert started.response.status_code == 302
    assert started.location.startswith(APP_REDIRECT + "?")
    assert started.params["state"] == "state-1"
    token = exchange_code(sandbox, started)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer"
    assert body["patient"] == PATIENT
    assert body["encounter"] == "enc-a"
    assert body["need_patient_banner"] is False
    assert set(body["scope"].split()) == set(PANEL_SCOPE.split())
    assert "refresh_token" in body  # online_access
    jwks = requests.get(f"{sandbox.origin}/.well-known/jwks.json", timeout=10).json()
    id_token = jwt.decode(body["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert id_token.claims["iss"] == sandbox.origin
    assert id_token.claims["aud"] == ["consent-gap"]
    assert id_token.claims["nonce"] == "nonce-1"
    assert id_token.claims["fhirUser"] == f"{sandbox.fhir_base}/Practitioner/sandbox-practitioner"
    # the EHR made sure its user exists, so the app can read fhirUser
    assert ("Practitioner", "sandbox-practitioner") in sandbox.upstream_store()


def test_the_id_token_passes_the_apps_own_verification_through_discovery(sandbox):
    """What the app does at /callback: keys from discovery's jwks_uri, issuer from discovery
    (OpenID Connect Core 3.1.3.7), audience the client id, a fresh iat and a future exp."""
    from consent_gap.smart import discovery
    from consent_gap.smart.idtoken import verified_claims

    discovery.clear_cache()
    http = requests.Session()
    config = discovery.discover(sandbox.fhir_base, http)
    assert config.jwks_uri and config.openid_issuer == sandbox.origin
    body = exchange_code(sandbox, _panel_code(sandbox)).json()
    claims = verified_claims(http, body["id_token"], jwks_uri=config.jwks_uri,
                             issuer=config.openid_issuer, client_id="consent-gap")
    assert claims["fhirUser"] == f"{sandbox.fhir_base}/Practitioner/sandbox-practitioner"
    assert claims["sub"] and claims["exp"] > claims["iat"]


def test_ehr_page_shows_a_chart_header_and_the_app_in_an_iframe(sandbox):
    page = requests.get(f"{sandbox.origin}/ehr", params={"patient": PATIENT}, timeout=10)
    assert page.status_code == 200
    assert "Ann Alder" in page.text
    assert re.search(r'<iframe[^>]*src="http://127\.0\.0\.1:8082/launch\?iss=', page.text)
    listing = requests.get(f"{sandbox.origin}/ehr", timeout=10)
    assert "Bo Birch" in listing.text and f"patient={OTHER_PATIENT}" in listing.text


def test_ehr_page_escapes_what_it_shows(sandbox):
    page = requests.get(f"{sandbox.origin}/ehr", params={"name": "<script>x</script>"}, timeout=10)
    assert "<script>x</script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_authorize_without_pkce_is_refused(sandbox):
    started = _panel_code(sandbox, pkce=None)
    assert started.response.status_code == 302
    assert started.params["error"] == "invalid_request"
    assert "S256" in started.params["error_description"]
    assert "code" not in started.params
    assert started.params["state"] == "state-1"


def test_authorize_with_plain_pkce_is_refused(sandbox):
    started = _panel_code(sandbox, pkce="plain")
    assert started.params["error"] == "invalid_request"
    assert "code" not in started.params


def test_token_with_a_wrong_code_verifier_is_refused(sandbox):
    started = _panel_code(sandbox)
    token = exchange_code(sandbox, started, code_verifier="x" * 50)
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_grant"


def test_wrong_aud_is_refused(sandbox):
    started = _panel_code(sandbox, aud="http://127.0.0.1:8080/fhir")
    assert started.params["error"] == "invalid_request"
    assert "aud" in started.params["error_description"]
    assert "code" not in started.params


def test_unknown_launch_is_refused(sandbox):
    started = start_authorization(
        sandbox, "consent-gap", PANEL_SCOPE, launch="not-a-launch", redirect_uri=APP_REDIRECT
    )
    assert started.params["error"] == "invalid_request"


def test_launch_issued_for_another_app_is_refused(sandbox):
    launch = ehr_launch(sandbox, PATIENT, "consent-gap")
    started = start_authorization(sandbox, "sandbox-public", PANEL_SCOPE, launch=launch)
    assert started.params["error"] == "invalid_request"


def test_unregistered_redirect_uri_is_not_redirected_to(sandbox):
    launch = ehr_launch(sandbox, PATIENT, "consent-gap")
    started = start_authorization(
        sandbox, "consent-gap", PANEL_SCOPE, launch=launch, redirect_uri="http://evil.test/cb"
    )
    assert started.response.status_code == 400
    assert "Location" not in started.response.headers


def test_state_is_echoed_unchanged_checking_it_is_the_clients_job(sandbox):
    odd_state = "a b&c=d/é"
    started = _panel_code(sandbox, state=odd_state)
    assert started.params["state"] == odd_state
    assert exchange_code(sandbox, started).status_code == 200


def test_reused_code_is_refused_and_its_tokens_revoked(sandbox):
    started = _panel_code(sandbox)
    first = exchange_code(sandbox, started)
    assert first.status_code == 200
    read = f"{sandbox.fhir_base}/Patient/{PATIENT}"
    assert requests.get(read, headers=bearer(first.json()), timeout=10).status_code == 200
    second = exchange_code(sandbox, started)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert requests.get(read, headers=bearer(first.json()), timeout=10).status_code == 401


def test_consent_page_deny_sends_access_denied_to_the_redirect(sandbox):
    launch = ehr_launch(sandbox, PATIENT, "sandbox-public")
    started = start_authorization(
        sandbox, "sandbox-public", "launch patient/Consent.rs", launch=launch, state="st-9"
    )
    assert started.response.status_code == 302
    consent_url = started.location
    assert "/oauth/authorize/consent" in consent_url
    page = requests.get(consent_url, timeout=10)
    assert 'value="approve"' in page.text and 'value="deny"' in page.text
    assert "Ann Alder" in page.text
    txn = query_of(consent_url)["txn"]
    denied = requests.post(
        f"{sandbox.authorize_url}/decision",
        data={"txn": txn, "decision": "deny"},
        allow_redirects=False,
        timeout=10,
    )
    assert denied.status_code == 302
    answer = query_of(denied.headers["Location"])
    assert denied.headers["Location"].startswith(TEST_REDIRECT)
    assert answer["error"] == "access_denied"
    assert answer["state"] == "st-9"
    again = requests.post(
        f"{sandbox.authorize_url}/decision", data={"txn": txn, "decision": "approve"}, timeout=10
    )
    assert again.status_code == 400  # a decision is taken once


def test_consent_page_approve_issues_a_code(sandbox):
    launch = ehr_launch(sandbox, PATIENT, "sandbox-public")
    started = start_authorization(
        sandbox, "sandbox-public", "launch patient/Consent.rs", launch=launch
    )
    txn = query_of(started.location)["txn"]
    approved = requests.post(
        f"{sandbox.authorize_url}/decision",
        data={"txn": txn, "decision": "approve"},
        allow_redirects=False,
        timeout=10,
    )
    code = query_of(approved.headers["Location"])["code"]
    token = exchange_code(sandbox, started, code=code)
    assert token.status_code == 200
    assert token.json()["patient"] == PATIENT


def test_standalone_launch_picks_a_patient_on_the_consent_page(sandbox):
    started = start_authorization(
        sandbox, "sandbox-public", "launch/patient openid fhirUser patient/Consent.rs"
    )
    page = requests.get(started.location, timeout=10)
    assert "Choose a patient" in page.text
    assert f'value="{OTHER_PATIENT}"' in page.text
    approved = requests.post(
        f"{sandbox.authorize_url}/decision",
        data={
            "txn": query_of(started.location)["txn"],
            "decision": "approve",
            "patient": OTHER_PATIENT,
        },
        allow_redirects=False,
        timeout=10,
    )
    token = exchange_code(sandbox, started, code=query_of(approved.headers["Location"])["code"])
    assert token.status_code == 200
    assert token.json()["patient"] == OTHER_PATIENT
    assert token.json()["need_patient_banner"] is True


def test_the_patient_picker_finds_a_chart_by_its_id_first(sandbox):
    """However many patients share a name, typing the chart's id puts it first, once."""
    started = start_authorization(
        sandbox, "sandbox-public", "launch/patient openid fhirUser patient/Consent.rs"
    )
    page = requests.get(started.location, params={"name": OTHER_PATIENT}, timeout=10)
    assert page.status_code == 200
    offered = re.findall(r'name="patient" value="([^"]+)"', page.text)
    assert offered[:1] == [OTHER_PATIENT]
    assert offered.count(OTHER_PATIENT) == 1


def test_standalone_launch_can_run_unattended_with_the_sandbox_flags(sandbox):
    started = start_authorization(
        sandbox,
        "sandbox-public",
        "launch/patient patient/Consent.rs",
        sandbox_patient=PATIENT,
        sandbox_auto_approve="1",
    )
    assert "code" in started.params
    assert exchange_code(sandbox, started).json()["patient"] == PATIENT


def test_scope_launch_without_a_launch_parameter_is_refused(sandbox):
    started = start_authorization(sandbox, "sandbox-public", "launch patient/Consent.rs")
    assert started.params["error"] == "invalid_request"


def test_granted_scope_is_cut_down_to_the_registration(sandbox):
    started = start_authorization(
        sandbox,
        "consent-gap",
        "launch patient/Consent.rs patient/Immunization.rs",
        launch=ehr_launch(sandbox, PATIENT, "consent-gap"),
        redirect_uri=APP_REDIRECT,
    )
    body = exchange_code(sandbox, started).json()
    assert body["scope"].split() == ["launch", "patient/Consent.rs"]


def test_refresh_keeps_the_context_and_rotates_the_refresh_token(sandbox):
    started = _panel_code(sandbox)
    first = exchange_code(sandbox, started).json()
    refreshed = requests.post(
        sandbox.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "consent-gap",
        },
        timeout=10,
    )
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["patient"] == PATIENT
    assert body["access_token"] != first["access_token"]
    assert body["refresh_token"] != first["refresh_token"]
    read = requests.get(f"{sandbox.fhir_base}/Patient/{PATIENT}", headers=bearer(body), timeout=10)
    assert read.status_code == 200
    reused = requests.post(
        sandbox.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": "consent-gap",
        },
        timeout=10,
    )
    assert reused.status_code == 400


def test_no_refresh_token_without_offline_or_online_access(sandbox):
    started = start_authorization(
        sandbox,
        "consent-gap",
        "launch patient/Consent.rs",
        launch=ehr_launch(sandbox, PATIENT, "consent-gap"),
        redirect_uri=APP_REDIRECT,
    )
    assert "refresh_token" not in exchange_code(sandbox, started).json()


def test_confidential_client_authenticates_with_private_key_jwt(sandbox):
    from smart_launcher.testing import client_assertion

    started = start_authorization(
        sandbox,
        "sandbox-confidential",
        "launch patient/Consent.rs offline_access",
        launch=ehr_launch(sandbox, PATIENT, "sandbox-confidential"),
    )
    assert "code" in started.params, started.location
    without = exchange_code(sandbox, started)
    assert without.status_code in (400, 401)  # a confidential client must sign
    started = start_authorization(
        sandbox,
        "sandbox-confidential",
        "launch patient/Consent.rs offline_access",
        launch=ehr_launch(sandbox, PATIENT, "sandbox-confidential"),
    )
    assertion = client_assertion(
        sandbox.key("sandbox-confidential.pem"), "sandbox-confidential", sandbox.token_url, "ES384"
    )
    token = exchange_code(
        sandbox,
        started,
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=assertion,
    )
    assert token.status_code == 200, token.text
    assert token.json()["patient"] == PATIENT
    assert "refresh_token" in token.json()


def test_the_privacy_office_entry_launches_with_no_patient_and_user_scopes(sandbox):
    """The EHR's Privacy office entry: an EHR launch from a non-patient context of the app's
    office launch URL; the token carries no patient and the user/ scopes asked for."""
    listing = requests.get(f"{sandbox.origin}/ehr", timeout=10)
    assert "Privacy office" in listing.text
    office = requests.get(f"{sandbox.origin}/ehr/office", params={"app": "consent-gap"},
                          allow_redirects=False, timeout=10)
    assert office.status_code == 302
    target = office.headers["Location"]
    assert target.startswith("http://127.0.0.1:8082/worklist/launch?iss=")
    launch = query_of(target)["launch"]
    scope = "launch openid fhirUser user/Task.rus user/QuestionnaireResponse.crus"
    started = start_authorization(sandbox, "consent-gap", scope, launch=launch,
                                  redirect_uri=APP_REDIRECT)
    assert started.response.status_code == 302, started.response.text
    body = exchange_code(sandbox, started).json()
    assert "patient" not in body and "encounter" not in body
    # granted as registered: the reads of user/*.rs and the writes named one by one
    assert {"user/Task.rs", "user/Task.u", "user/QuestionnaireResponse.rs",
            "user/QuestionnaireResponse.cu"} <= set(body["scope"].split())
    refused = requests.get(f"{sandbox.origin}/ehr/office", params={"app": "sandbox-public"},
                           timeout=10)
    assert refused.status_code == 400


def test_a_standalone_launch_with_user_scopes_needs_no_patient(sandbox):
    """The worklist's standalone launch: no `launch`, no `launch/patient`, so no patient
    picker and no patient in the token."""
    scope = "openid fhirUser user/Task.rus user/Patient.rs"
    started = start_authorization(sandbox, "consent-gap", scope, redirect_uri=APP_REDIRECT)
    assert started.response.status_code == 302, started.response.text
    assert started.location.startswith(APP_REDIRECT + "?")
    body = exchange_code(sandbox, started).json()
    assert "patient" not in body
    assert {"user/Task.rs", "user/Task.u", "user/Patient.rs"} <= set(body["scope"].split())
