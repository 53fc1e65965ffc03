"""The guide's record of an unauthorized disclosure, through the live SMART launcher in front
of the real HAPI FHIR, then the nightly scan on that client (CONTRACT 5, 6.3, 7).

The record writes the AuditEvent with the alert, the finding note and the privacy office's
Task in one transaction; the scan that follows finds that disclosure unauthorized too and
writes nothing: its identifiers are keyed by the AuditEvent's business identifier, which the
record wrote, not by the server's id, which the record could not know.

No browser: Flask's test client plays the browser (as in test_panel_scopes_live), so the
code exchange, the scopes the launcher grants and every FHIR write are the app's own.
"""

from __future__ import annotations

import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from consent_gap.fhir.client import FhirClient
from consent_gap.scan import run_scan
from consent_gap.settings import Settings
from consent_gap.web import create_app
from consent_gap.web.config import PANEL_SCOPES, WebConfig
from consent_gap.writeback import FINDING_SYSTEM
from support.fhir import register_app_device

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sandbox" / "smart"))

from smart_launcher.testing import APP_REDIRECT, Sandbox, ehr_launch

from sandbox.data import guide_clients

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
ORIGIN = APP_REDIRECT.removesuffix("/callback")


def _guide(launcher_base: str, proxy_base: str, patient: str, officer: str):
    """(test client, CSRF token) of the guide after an EHR launch with the panel's scopes."""
    app = create_app(config=WebConfig(
        allowed_issuers=(proxy_base,), secret_key="k", client_id="consent-gap",
        public_url=ORIGIN, scopes=PANEL_SCOPES, privacy_officer=officer,
        dev_insecure_cookies=True))
    browser = app.test_client()
    launch = ehr_launch(Sandbox(launcher_base, "", Path("."), None), patient, "consent-gap")
    to_ehr = browser.get(f"/launch?iss={proxy_base}&launch={launch}")
    assert to_ehr.status_code == 302, to_ehr.get_data(as_text=True)[:300]
    answer = requests.get(to_ehr.headers["Location"], allow_redirects=False, timeout=30)
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    panel = browser.get(f"/callback?code={query['code'][0]}&state={query['state'][0]}")
    assert panel.status_code == 303, panel.get_data(as_text=True)[:500]
    app.extensions["consent_gap.prefetch"].wait_idle()
    html = browser.get(f"{panel.headers['Location']}/guide").get_data(as_text=True)
    token = re.search(r'data-csrf="([^"]+)"', html)
    assert token, html[:500]
    return browser, token.group(1)


def _post(browser, url: str, body: dict, token: str):
    return browser.post(url, json=body, headers={"X-CSRF-Token": token, "Origin": ORIGIN})


def test_a_recorded_unauthorized_disclosure_is_not_alerted_again_by_the_scan(
        fhir_base, launcher_base, proxy_base, tmp_path):
    suffix = f"-rec{uuid.uuid4().hex[:6]}"
    register_app_device(fhir_base)  # as the scan does in a deployment (strict-EHR writes)
    guide_clients.load(fhir_base, suffix)
    patient = guide_clients.patient_id("subpoena", suffix)
    officer, org = f"po{suffix}", f"org-lawfirm{suffix}"
    for resource in ({"resourceType": "Practitioner", "id": officer},
                     {"resourceType": "Organization", "id": org, "name": "Lawfirm " + suffix}):
        put = requests.put(f"{fhir_base}/{resource['resourceType']}/{resource['id']}",
                           json=resource, headers=FHIR_JSON, timeout=30)
        assert put.status_code in (200, 201), put.text[:300]
    settings = Settings(fhir_base=fhir_base, privacy_officer=f"Practitioner/{officer}",
                        state_dir=tmp_path / "scan")
    run_scan(settings, patients=[patient])  # whatever the loaded chart already calls for

    browser, token = _guide(launcher_base, proxy_base, patient, f"Practitioner/{officer}")
    proposal = {"patient": f"Patient/{patient}", "scenario": "subpoena",
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "recipient": {"reference": f"Organization/{org}"},
                "instruments": [f"DocumentReference/dr-{patient}-subpoena"],
                "data": [{"reference": f"DocumentReference/dr-{patient}-note"}]}
    answer = _post(browser, "/api/proposals/check", proposal, token).get_json()
    assert answer["finding"]["decision"] == "unauthorized", answer
    body = {"proposal": proposal, "proposal_id": str(uuid.uuid4()),
            "acknowledge_unauthorized": True}
    done = _post(browser, "/api/proposals/record", body, token)
    assert done.status_code == 201, done.get_data(as_text=True)[:500]
    references = done.get_json()["references"]
    assert {"audit-event", "alert", "finding-note", "task"} <= set(references), references
    task = FhirClient(fhir_base).read(*references["task"].split("/"))
    assert task["focus"]["reference"] == references["audit-event"]
    assert task["for"]["reference"] == f"Patient/{patient}"
    assert any(i["system"] == FINDING_SYSTEM for i in task["identifier"])

    again = run_scan(settings, patients=[patient])
    assert again.status == "ok", again.errors
    assert again.decisions.get("unauthorized", 0) >= 1  # the recorded disclosure, decided
    assert again.written == {}
    # and a second POST of the same proposal matches everything
    twice = _post(browser, "/api/proposals/record", body, token)
    assert twice.status_code == 200 and twice.get_json()["references"] == references
