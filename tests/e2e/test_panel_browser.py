"""The panel in the sandbox EHR's iframe, in real Chromium: it shows the findings `evaluate`
decides on the same patient's data (read straight from HAPI here), a drafted documentation note
lands in HAPI, and a screenshot of the panel is kept in test-artifacts/panel.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from consent_gap.evaluate import evaluate
from consent_gap.fetch_plan import fetch_patient_chart
from consent_gap.fhir import FhirClient

PANEL_TIMEOUT_MS = 60_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def candidates(fhir: str):
    """Seeded patients with disclosures, most disclosures first, with `evaluate`'s report on
    their records read from HAPI itself (no proxy, no app code)."""
    bundle = requests.get(f"{fhir}/AuditEvent", timeout=30, params={
        "subtype": "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle|disclose",
        "_count": "300", "_elements": "entity"}).json()
    counts: dict[str, int] = {}
    for entry in bundle.get("entry") or []:
        for entity in entry["resource"].get("entity") or []:
            ref = (entity.get("what") or {}).get("reference") or ""
            if ref.startswith("Patient/"):
                counts[ref.split("/", 1)[1]] = counts.get(ref.split("/", 1)[1], 0) + 1
    for patient_id in sorted(counts, key=lambda p: (-counts[p], p))[:60]:
        with FhirClient(fhir) as client:
            resources = fetch_patient_chart(client, patient_id)
        yield patient_id, evaluate(resources)


@pytest.fixture(scope="module")
def patient(sandbox) -> tuple[str, object]:
    """A seeded patient with several disclosures, one of them missing its documentation."""
    for patient_id, report in candidates(sandbox["fhir"]):
        if any(f.documentation == "missing" for f in report.findings):
            return patient_id, report
    pytest.fail("no seeded patient has a disclosure missing its documentation; "
                "the sandbox data changed", pytrace=False)


@pytest.fixture(scope="module")
def patient_without_notice(sandbox) -> tuple[str, object]:
    """A seeded patient with a disclosure whose client notice is missing."""
    for patient_id, report in candidates(sandbox["fhir"]):
        if any(f.client_notice == "missing" for f in report.findings):
            return patient_id, report
    pytest.fail("no seeded patient has a disclosure missing its client notice; "
                "the sandbox data changed", pytrace=False)


def open_panel(page, sandbox, patient_id: str):
    page.goto(f"{sandbox['launcher']}/ehr?patient={patient_id}&need_patient_banner=1")
    frame = page.frame_locator("#smart-app")
    frame.locator("#counts-h, section.message").first.wait_for(timeout=PANEL_TIMEOUT_MS)
    if frame.locator("section.message").count():
        pytest.fail("the app showed: " + frame.locator("section.message").inner_text())
    return frame


def test_panel_shows_what_evaluate_decides(page, sandbox, app_server, patient):
    patient_id, report = patient
    page.set_viewport_size({"width": 1000, "height": 1400})
    frame = open_panel(page, sandbox, patient_id)
    items = frame.locator("li.finding")
    shown = [(items.nth(i).get_attribute("data-disclosure"),
              items.nth(i).get_attribute("data-decision")) for i in range(items.count())]
    expected = [(f.disclosure, str(f.decision)) for f in report.findings]
    assert shown == expected
    for decision in ("authorized", "permitted", "required", "unauthorized", "review"):
        n = sum(1 for _, d in expected if d == decision)
        assert frame.locator(f'.counts strong[data-decision="{decision}"]').inner_text() == str(n)
    assert frame.locator("svg[role=img] .mark").count() == len(expected)
    # the explanation a clinician reads is the engine's
    first = report.findings[0]
    assert first.explanation in frame.locator("li.finding .explanation").first.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "panel.png"), full_page=True)
    assert (ARTIFACTS / "panel.png").stat().st_size > 10_000


def test_api_in_the_same_session_returns_the_contract_json(page, sandbox, app_server, patient):
    patient_id, report = patient
    open_panel(page, sandbox, patient_id)
    app_frame = next(f for f in page.frames if f.url.startswith(app_server))
    body = app_frame.evaluate("fetch('/api/findings').then(r => r.json())")
    assert body == report.to_json()


def test_drafting_the_documentation_note_lands_in_hapi(page, sandbox, app_server, patient):
    patient_id, report = patient
    missing = next(f for f in report.findings if f.documentation == "missing")
    frame = open_panel(page, sandbox, patient_id)
    item = frame.locator(f'li.finding[data-disclosure="{missing.disclosure}"]')
    button = item.get_by_role("button", name="Draft the documentation note")
    button.focus()
    page.keyboard.press("Enter")  # keyboard reachable, not only clickable
    notice = frame.locator(".notice-ok").first
    notice.wait_for(timeout=PANEL_TIMEOUT_MS)
    text = notice.inner_text()
    found = re.search(r"\((DocumentReference/[A-Za-z0-9\-.]+)\)", text)
    assert found, text
    doc = requests.get(f"{sandbox['fhir']}/{found.group(1)}", timeout=30).json()
    assert doc["resourceType"] == "DocumentReference"
    assert doc["docStatus"] == "preliminary"
    assert {"reference": missing.disclosure} in doc["context"]["related"]
    assert doc["subject"]["reference"] == f"Patient/{patient_id}"
    # idempotent: pressing again finds the same note instead of writing another
    frame.locator(f'li.finding[data-disclosure="{missing.disclosure}"]').get_by_role(
        "button", name="Draft the documentation note").click()
    again = frame.locator(".notice-ok", has_text="already in the chart").first
    again.wait_for(timeout=PANEL_TIMEOUT_MS)
    assert found.group(1) in again.inner_text()
    identifier = doc["identifier"][0]
    same = requests.get(f"{sandbox['fhir']}/DocumentReference", timeout=30, params={
        "identifier": f"{identifier['system']}|{identifier['value']}"}).json()
    assert same.get("total") == 1


def test_issuer_off_the_allowlist_is_refused_in_the_browser(page, app_server):
    page.goto(f"{app_server}/launch?iss=http://127.0.0.1:9/fhir&launch=x")
    assert "This EHR is not allowed" in page.content()


def test_recording_a_withheld_client_notice_counts_as_the_notice(page, sandbox, app_server,
                                                                 patient_without_notice):
    patient_id, report = patient_without_notice
    missing = next(f for f in report.findings if f.client_notice == "missing")
    frame = open_panel(page, sandbox, patient_id)
    item = frame.locator(f'li.finding[data-disclosure="{missing.disclosure}"]')
    item.get_by_role("radio", name="Withheld").check()
    item.get_by_label("Reason (required when withheld)").fill(
        "Telling the client now would put the person warned at risk.")
    item.get_by_role("button", name="Record the client notice").click()
    notice = frame.locator(".notice-ok", has_text="client notice (withheld) ").first
    notice.wait_for(timeout=PANEL_TIMEOUT_MS)
    found = re.search(r"\((Communication/[A-Za-z0-9\-.]+)\)", notice.inner_text())
    assert found, notice.inner_text()
    record = requests.get(f"{sandbox['fhir']}/{found.group(1)}", timeout=30).json()
    assert record["status"] == "not-done" and record["statusReason"]["text"]
    assert {"reference": missing.disclosure} in record["about"]
    # CONTRACT 1.4 now finds the notice: the panel (re-read after the write) says withheld
    after = frame.locator(f'li.finding[data-disclosure="{missing.disclosure}"]')
    assert after.locator(".status-withheld").inner_text() == "withheld"


def test_standalone_launch_lets_the_user_pick_the_patient(page, sandbox, app_server, patient):
    patient_id, report = patient
    family = requests.get(f"{sandbox['fhir']}/Patient/{patient_id}",
                          timeout=30).json()["name"][0]["family"]
    page.goto(f"{app_server}/")
    page.get_by_role("link", name=re.compile("Sign in to")).click()
    # the launcher's consent page: find the patient by name, pick them, approve
    page.locator("input[name=name]").fill(family)
    page.get_by_role("button", name="Search").click()
    page.locator(f'input[name=patient][value="{patient_id}"]').check()
    page.locator("#approve").click()
    page.locator("#counts-h").wait_for(timeout=PANEL_TIMEOUT_MS)
    shown = page.locator("li.finding").evaluate_all(
        "items => items.map(i => [i.dataset.disclosure, i.dataset.decision])")
    assert shown == [[f.disclosure, str(f.decision)] for f in report.findings]


def test_denied_consent_gets_its_page(page, sandbox, app_server, patient):
    patient_id, _ = patient
    page.goto(f"{sandbox['launcher']}/ehr?patient={patient_id}&auto_approve=0")
    page.goto(page.locator("#smart-app").get_attribute("src"))  # the launch, top level
    page.locator("#deny").click()
    page.get_by_role("heading", name="Access was not granted").wait_for(
        timeout=PANEL_TIMEOUT_MS)
