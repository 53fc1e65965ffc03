"""SMART launcher conformance: Backend Services (client_credentials + private_key_jwt).

In-process launcher in front of a fake FHIR server (see test_launcher_authorize.py).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest
import requests
from joserfc.jwk import ECKey, RSAKey

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sandbox" / "smart"))

from smart_launcher.testing import (
    backend_token,
    bearer,
    client_assertion,
    running_sandbox,
    sample_resources,
)

pytestmark = pytest.mark.integration

SCAN = ("consent-gap-scan", "consent-gap-scan.pem", "RS384")
ES384 = ("sandbox-backend-es384", "sandbox-backend-es384.pem", "ES384")
JKU = ("sandbox-backend-jku", "sandbox-backend-jku.pem", "RS384")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("keys"), sample_resources()) as running:
        yield running


def _post_assertion(sandbox, assertion: str, scope: str = "system/Consent.rs"):
    return requests.post(
        sandbox.token_url,
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        },
        timeout=10,
    )


@pytest.mark.parametrize("client", [SCAN, ES384, JKU], ids=["RS384", "ES384", "jwks-url"])
def test_backend_client_gets_a_short_lived_system_token(sandbox, client):
    response = backend_token(sandbox, *client, scope="system/Consent.rs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "system/Consent.rs"
    assert 0 < body["expires_in"] <= 300
    assert "refresh_token" not in body
    search = requests.get(f"{sandbox.fhir_base}/Consent", headers=bearer(body), timeout=10)
    assert search.status_code == 200


def test_scan_key_is_generated_as_rsa_and_registered_by_value(sandbox):
    key = sandbox.key("consent-gap-scan.pem")
    assert isinstance(key, RSAKey)
    assert (sandbox.keys_dir / "consent-gap-scan.pem").stat().st_mode & 0o077 == 0
    assert isinstance(sandbox.key("sandbox-backend-es384.pem"), ECKey)


def test_replayed_jti_is_refused(sandbox):
    client_id, key_file, alg = SCAN
    assertion = client_assertion(sandbox.key(key_file), client_id, sandbox.token_url, alg)
    assert _post_assertion(sandbox, assertion).status_code == 200
    replay = _post_assertion(sandbox, assertion)
    assert replay.status_code in (400, 401)
    assert replay.json()["error"] == "invalid_client"


def test_same_jti_in_a_new_assertion_is_refused(sandbox):
    jti = secrets.token_hex(8)
    assert backend_token(sandbox, *ES384, scope="system/Consent.rs", jti=jti).status_code == 200
    again = backend_token(sandbox, *ES384, scope="system/Consent.rs", jti=jti)
    assert again.json()["error"] == "invalid_client"


def test_wrong_aud_is_refused(sandbox):
    response = backend_token(
        sandbox, *SCAN, scope="system/Consent.rs", aud=f"{sandbox.origin}/token"
    )
    assert response.json()["error"] == "invalid_client"
    assert "aud" in response.json()["error_description"]


def test_expired_assertion_is_refused(sandbox):
    response = backend_token(sandbox, *ES384, scope="system/Consent.rs", exp_in=-120)
    assert response.json()["error"] == "invalid_client"
    assert "expired" in response.json()["error_description"]


def test_assertion_expiring_more_than_five_minutes_ahead_is_refused(sandbox):
    response = backend_token(sandbox, *SCAN, scope="system/Consent.rs", exp_in=3600)
    assert response.json()["error"] == "invalid_client"
    assert "5 minutes" in response.json()["error_description"]


def test_unknown_kid_is_refused(sandbox):
    response = backend_token(sandbox, *SCAN, scope="system/Consent.rs", kid="no-such-key")
    assert response.json()["error"] == "invalid_client"


def test_unregistered_key_is_refused_even_without_a_kid(sandbox):
    stranger = RSAKey.generate_key(2048, private=True)
    signed = client_assertion(stranger, "consent-gap-scan", sandbox.token_url, "RS384", kid=None)
    assert _post_assertion(sandbox, signed).json()["error"] == "invalid_client"
    registered_kid = sandbox.key("consent-gap-scan.pem").thumbprint()
    forged = client_assertion(
        stranger, "consent-gap-scan", sandbox.token_url, "RS384", kid=registered_kid
    )
    assert _post_assertion(sandbox, forged).json()["error"] == "invalid_client"


def test_rs256_is_not_accepted(sandbox):
    client_id, key_file, _ = SCAN
    signed = client_assertion(sandbox.key(key_file), client_id, sandbox.token_url, "RS256")
    answer = _post_assertion(sandbox, signed).json()
    assert answer["error"] == "invalid_client"
    assert "RS256" in answer["error_description"]


def test_jku_other_than_the_registered_url_is_refused(sandbox):
    response = backend_token(
        sandbox,
        *JKU,
        scope="system/Consent.rs",
        extra_header={"jku": "http://127.0.0.1:9/jwks.json"},
    )
    assert response.json()["error"] == "invalid_client"


def test_unknown_client_is_refused(sandbox):
    key = sandbox.key("consent-gap-scan.pem")
    signed = client_assertion(key, "nobody", sandbox.token_url, "RS384")
    assert _post_assertion(sandbox, signed).json()["error"] == "invalid_client"


def test_scope_outside_the_registration_is_refused(sandbox):
    response = backend_token(sandbox, *ES384, scope="system/Communication.c")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_granted_scope_is_the_allowed_part(sandbox):
    response = backend_token(sandbox, *ES384, scope="system/Consent.rs system/Communication.c")
    assert response.json()["scope"] == "system/Consent.rs"


def test_public_client_cannot_use_client_credentials(sandbox):
    response = requests.post(
        sandbox.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "consent-gap",
            "scope": "system/*.rs",
        },
        timeout=10,
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_client", "unauthorized_client")
