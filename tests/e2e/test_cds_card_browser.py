"""The CDS Hooks card in the sandbox EHR, in real Chromium: the chart page (a browser-based CDS
client with the launcher's signing key) calls the app's patient-view service cross-origin when
the chart opens, shows the card above the app frame, and the card's `smart` link launches the
panel. What the card counts is what `evaluate` decides on the same patient's data read straight
from HAPI. A screenshot is kept in test-artifacts/cds-card.png."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from consent_gap.web.cds import card_for
from test_panel_browser import PANEL_TIMEOUT_MS, candidates

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def unauthorized_patient(sandbox) -> tuple[str, object]:
    """A seeded patient with at least one unauthorized disclosure."""
    for patient_id, report in candidates(sandbox["fhir"]):
        if any(f.decision == "unauthorized" for f in report.findings):
            return patient_id, report
    pytest.fail("no seeded patient has an unauthorized disclosure; the sandbox data changed",
                pytrace=False)


def names_of(fhir: str, patient_id: str) -> list[str]:
    patient = requests.get(f"{fhir}/Patient/{patient_id}", timeout=30).json()
    return [part for name in patient.get("name") or []
            for part in [name.get("family"), *name.get("given", [])] if part]


def open_chart(page, sandbox, patient_id: str, **params: str):
    query = "&".join(f"{k}={v}" for k, v in {"patient": patient_id, **params}.items())
    page.goto(f"{sandbox['launcher']}/ehr?{query}")
    section = page.locator("#cds-cards")
    section.wait_for(timeout=PANEL_TIMEOUT_MS)
    page.locator("#cds-cards[data-done=true]").wait_for(timeout=PANEL_TIMEOUT_MS)
    return section


@pytest.mark.parametrize("prefetch", ["1", "0"], ids=["prefetched", "fallback-fetch"])
def test_the_card_shows_and_its_link_opens_the_panel(page, sandbox, app_server,
                                                     unauthorized_patient, prefetch):
    patient_id, report = unauthorized_patient
    page.set_viewport_size({"width": 1000, "height": 1200})
    section = open_chart(page, sandbox, patient_id, autolaunch="0", cds_prefetch=prefetch,
                         need_patient_banner="1")
    cards = section.locator(".cds-card")
    assert cards.count() == 1, section.inner_text()
    card = cards.first
    expected = card_for(report.findings, f"{app_server}/launch")
    unauthorized = sum(f.decision == "unauthorized" for f in report.findings)
    summary = card.locator(".summary").inner_text()
    assert summary == expected["summary"]
    assert summary.startswith(f"{unauthorized} disclosure")
    assert card.get_attribute("data-indicator") == "critical"
    assert card.locator(".source").inner_text() == "consent-gap"
    for name in names_of(sandbox["fhir"], patient_id):
        assert name not in card.inner_text()
    # the app is not open yet: the card's link opens it
    assert page.locator("#smart-app").get_attribute("src") == "about:blank"
    if prefetch == "1":
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "cds-card.png"), full_page=False)
        assert (ARTIFACTS / "cds-card.png").stat().st_size > 10_000
    card.get_by_role("button", name="Open consent-gap").click()
    frame = page.frame_locator("#smart-app")
    frame.locator("#counts-h, section.message").first.wait_for(timeout=PANEL_TIMEOUT_MS)
    assert not frame.locator("section.message").count(), frame.locator("body").inner_text()
    shown = frame.locator('.counts strong[data-decision="unauthorized"]').inner_text()
    assert shown == str(unauthorized)
    if prefetch == "1":
        page.screenshot(path=str(ARTIFACTS / "cds-card-panel.png"), full_page=True)


def test_the_smart_link_only_launches_the_registered_app(page, sandbox, app_server,
                                                         unauthorized_patient):
    patient_id, _ = unauthorized_patient
    response = requests.get(f"{sandbox['launcher']}/ehr/smart-link", timeout=30, params={
        "patient": patient_id, "app": "consent-gap", "url": "https://evil.test/launch"},
        allow_redirects=False)
    assert response.status_code == 400
    good = requests.get(f"{sandbox['launcher']}/ehr/smart-link", timeout=30, params={
        "patient": patient_id, "app": "consent-gap", "url": f"{app_server}/launch"},
        allow_redirects=False)
    assert good.status_code == 302
    assert good.headers["Location"].startswith(f"{app_server}/launch?iss=")


def test_the_ehr_signs_prefetches_and_scopes_its_hook_calls(sandbox, app_server,
                                                            unauthorized_patient):
    """The launcher's side of the call, checked with the app's own verifier: the JWT is the
    EHR's (iss = the launcher, key from its JWKS, aud = the service), every template is
    answered, and fhirAuthorization reads this patient's chart only, and only reads."""
    from consent_gap.web.cds_auth import CdsVerifier, JwksCache

    patient_id, _ = unauthorized_patient
    launcher = sandbox["launcher"]
    calls = requests.get(f"{launcher}/ehr/cds", timeout=60, params={
        "patient": patient_id, "app": "consent-gap"}).json()["calls"]
    assert [c["url"] for c in calls] == [f"{app_server}/cds-services/consent-gap-patient-view"]
    call = calls[0]
    verifier = CdsVerifier({launcher: f"{launcher}/sandbox/cds/jwks.json"},
                           JwksCache(requests.Session()))
    assert verifier.verify(f"Bearer {call['token']}", call["url"]).issuer == launcher
    templates = requests.get(f"{app_server}/cds-services", timeout=30).json()[
        "services"][0]["prefetch"]
    assert set(call["body"]["prefetch"]) == set(templates)
    auth = call["body"]["fhirAuthorization"]
    assert auth["patient"] == patient_id and call["body"]["fhirServer"] == sandbox["iss"]
    bearer = {"Authorization": f"Bearer {auth['access_token']}",
              "Accept": "application/fhir+json"}
    own = requests.get(f"{sandbox['iss']}/Patient/{patient_id}", headers=bearer, timeout=30)
    assert own.status_code == 200
    other = requests.get(f"{sandbox['iss']}/Consent", headers=bearer, timeout=30,
                         params={"patient": "p-000002" if patient_id != "p-000002"
                                 else "p-000003"})
    assert other.status_code == 403
    write = requests.post(f"{sandbox['iss']}/Communication", headers=bearer, timeout=30,
                          json={"resourceType": "Communication", "status": "completed",
                                "subject": {"reference": f"Patient/{patient_id}"}})
    assert write.status_code == 403
