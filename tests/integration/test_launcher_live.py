"""The SMART launcher as `sandbox/up` runs it, in front of the real HAPI FHIR server.

Uses the fixtures of tests/integration/conftest.py (skipped on a developer machine without the
sandbox, failing under CI). The scan's key is the one the launcher generated at first start in
sandbox/var/keys/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sandbox" / "smart"))

from smart_launcher.testing import (
    APP_REDIRECT,
    Sandbox,
    backend_token,
    bearer,
    ehr_launch,
    exchange_code,
    start_authorization,
)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "sandbox" / "var" / "keys"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
SCAN_SCOPE = "system/Patient.rs system/Consent.rs system/Communication.crs"


@pytest.fixture(scope="module")
def live(launcher_base, fhir_base):
    return Sandbox(launcher_base, fhir_base.removesuffix("/fhir"), KEYS, None)


@pytest.fixture(scope="module")
def charts(fhir, run_id):
    """Two patients of this run on HAPI, the first with two Consents (a search that pages)."""
    mine, other = f"{run_id}-pa", f"{run_id}-pb"
    for pid, family in ((mine, "Launchtest"), (other, "Othertest")):
        fhir.put({"resourceType": "Patient", "id": pid, "name": [{"family": family}]})
    for n in range(2):
        fhir.put(
            {
                "resourceType": "Consent",
                "id": f"{run_id}-c{n}",
                "status": "active",
                "scope": {"coding": [{"code": "patient-privacy"}]},
                "category": [{"coding": [{"code": "59284-0"}]}],
                "patient": {"reference": f"Patient/{mine}"},
            }
        )
    fhir.put(
        {
            "resourceType": "Consent",
            "id": f"{run_id}-cb",
            "status": "active",
            "scope": {"coding": [{"code": "patient-privacy"}]},
            "category": [{"coding": [{"code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{other}"},
        }
    )
    return mine, other


@pytest.fixture(scope="module")
def scan_token(live):
    if not (KEYS / "consent-gap-scan.pem").exists():
        pytest.fail("the launcher did not generate sandbox/var/keys/consent-gap-scan.pem")
    response = backend_token(
        live, "consent-gap-scan", "consent-gap-scan.pem", "RS384", scope=SCAN_SCOPE
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_discovery_on_the_live_launcher(live, proxy_base):
    doc = requests.get(f"{proxy_base}/.well-known/smart-configuration", timeout=10).json()
    assert doc["token_endpoint"] == live.token_url
    assert doc["code_challenge_methods_supported"] == ["S256"]


def test_proxy_refuses_a_call_without_a_token(proxy_base):
    response = requests.get(f"{proxy_base}/Patient", timeout=10)
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"


def test_scan_pages_through_hapi_behind_the_proxy(live, proxy_base, fhir_base, charts, scan_token):
    mine, _ = charts
    first = requests.get(
        f"{proxy_base}/Consent",
        params={"patient": mine, "_count": 1},
        headers={**bearer(scan_token), "Cache-Control": "no-cache"},
        timeout=30,
    )
    assert first.status_code == 200, first.text
    assert fhir_base not in first.text
    links = {link["relation"]: link["url"] for link in first.json()["link"]}
    assert links["next"].startswith(proxy_base)
    second = requests.get(links["next"], headers=bearer(scan_token), timeout=30)
    assert second.status_code == 200, second.text
    ids = {e["resource"]["id"] for e in first.json()["entry"] + second.json()["entry"]}
    assert len(ids) == 2
    assert all(e["fullUrl"].startswith(proxy_base) for e in second.json()["entry"])


def test_scan_conditional_create_goes_through_and_returns_the_existing_one(
    proxy_base, charts, run_id, scan_token
):
    mine, _ = charts
    communication = {
        "resourceType": "Communication",
        "status": "completed",
        "identifier": [{"system": "urn:consent-gap:test", "value": run_id}],
        "subject": {"reference": f"Patient/{mine}"},
    }
    headers = {**bearer(scan_token), **FHIR_JSON, "If-None-Exist": f"identifier={run_id}"}
    url = f"{proxy_base}/Communication"
    first = requests.post(url, json=communication, headers=headers, timeout=30)
    assert first.status_code == 201, first.text
    assert first.headers["Location"].startswith(f"{proxy_base}/Communication/")
    second = requests.post(url, json=communication, headers=headers, timeout=30)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


def test_scan_scope_does_not_reach_other_types(proxy_base, scan_token):
    response = requests.get(f"{proxy_base}/Observation", headers=bearer(scan_token), timeout=30)
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"


def test_ehr_launch_on_hapi_gives_a_patient_token_limited_to_the_chart(live, proxy_base, charts):
    mine, other = charts
    launch = ehr_launch(live, mine, "consent-gap")
    started = start_authorization(
        live,
        "consent-gap",
        "launch openid fhirUser patient/Patient.r patient/Consent.rs",
        launch=launch,
        redirect_uri=APP_REDIRECT,
    )
    assert "code" in started.params, started.location
    token = exchange_code(live, started)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["patient"] == mine
    assert requests.get(f"{proxy_base}/Patient/{mine}", headers=bearer(body), timeout=30).ok
    refused = requests.get(f"{proxy_base}/Patient/{other}", headers=bearer(body), timeout=30)
    assert refused.status_code == 403
    consents = requests.get(
        f"{proxy_base}/Consent", params={"patient": mine}, headers=bearer(body), timeout=30
    )
    assert consents.status_code == 200
    assert {e["resource"]["patient"]["reference"] for e in consents.json()["entry"]} == {
        f"Patient/{mine}"
    }
    other_consents = requests.get(
        f"{proxy_base}/Consent", params={"patient": other}, headers=bearer(body), timeout=30
    )
    assert other_consents.status_code == 403
