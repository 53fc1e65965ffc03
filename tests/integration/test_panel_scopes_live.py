"""The panel launched by the live SMART launcher (in front of the real HAPI FHIR): the scope
the launcher grants, not the one the app was configured to ask for, decides which actions the
panel offers. A read-only grant shows the findings and no button; the same chart under the
panel's full scopes shows them (so the first result is not an empty page).

No browser: Flask's test client plays the browser, `requests` follows the launcher's redirect;
the code exchange, the id_token's verification and the FHIR reads are the app's own, for real.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from consent_gap.web import create_app
from consent_gap.web.config import PANEL_SCOPES, WebConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sandbox" / "smart"))

from smart_launcher.testing import APP_REDIRECT, Sandbox, ehr_launch

EXAMPLE = Path(__file__).parents[1] / "fixtures" / "examples" / "07-duty-to-warn-tx.json"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
READ_ONLY = ("launch openid fhirUser online_access patient/Patient.r patient/Consent.rs "
             "patient/Provenance.rs patient/AuditEvent.rs patient/DocumentReference.rs "
             "patient/Communication.rs patient/RelatedPerson.rs patient/Observation.rs")


def _suffixed(value, suffix: str):
    if isinstance(value, dict):
        return {key: (f"{item}-{suffix}" if key == "reference" and isinstance(item, str)
                      and "/" in item and not item.startswith(("http", "urn:", "#"))
                      else _suffixed(item, suffix))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_suffixed(item, suffix) for item in value]
    return value


@pytest.fixture(scope="module")
def patient(fhir_base) -> str:
    """Example 07 (a required duty-to-warn disclosure whose documentation is missing) on HAPI
    under ids of its own."""
    suffix = "ps" + uuid.uuid4().hex[:8]
    entries = []
    for entry in json.loads(EXAMPLE.read_text())["entry"]:
        resource = _suffixed(entry["resource"], suffix)
        resource["id"] = f"{resource['id']}-{suffix}"
        entries.append({"resource": resource,
                        "request": {"method": "PUT",
                                    "url": f"{resource['resourceType']}/{resource['id']}"}})
    response = requests.post(fhir_base, json={"resourceType": "Bundle", "type": "transaction",
                                              "entry": entries}, headers=FHIR_JSON, timeout=60)
    assert response.status_code == 200, response.text[:500]
    return next(e["resource"]["id"] for e in entries
                if e["resource"]["resourceType"] == "Patient")


def _panel(launcher_base: str, proxy_base: str, patient: str, scopes: str) -> str:
    """The panel's HTML after an EHR launch that asked for ``scopes``."""
    app = create_app(config=WebConfig(
        allowed_issuers=(proxy_base,), secret_key="k", client_id="consent-gap",
        public_url=APP_REDIRECT.removesuffix("/callback"), scopes=scopes,
        jurisdiction="US-TX", privacy_officer="Practitioner/po-1",
        dev_insecure_cookies=True))
    browser = app.test_client()
    launch = ehr_launch(Sandbox(launcher_base, "", Path("."), None), patient, "consent-gap")
    to_ehr = browser.get(f"/launch?iss={proxy_base}&launch={launch}")
    assert to_ehr.status_code == 302, to_ehr.get_data(as_text=True)[:300]
    answer = requests.get(to_ehr.headers["Location"], allow_redirects=False, timeout=30)
    back = answer.headers["Location"]
    assert back.startswith(APP_REDIRECT), back
    query = parse_qs(urlsplit(back).query)
    panel = browser.get(f"/callback?code={query['code'][0]}&state={query['state'][0]}")
    assert panel.status_code == 303, panel.get_data(as_text=True)[:500]
    page = browser.get(panel.headers["Location"])
    assert page.status_code == 200
    app.extensions["consent_gap.prefetch"].wait_idle()
    return page.get_data(as_text=True)


def test_a_read_only_grant_shows_the_findings_and_no_action(launcher_base, proxy_base,
                                                            patient):
    html = _panel(launcher_base, proxy_base, patient, READ_ONLY)
    # the finding is shown (example 07 in Texas: a permitted warning, documentation owed)
    assert re.search(r'<li class="finding [^"]*"[^>]*data-decision="permitted"', html)
    assert 'class="status-missing"' in html  # its documentation is missing
    assert "Draft the documentation note" not in html and "act-" not in html
    assert "does not let consent-gap write to the chart" in html


def test_the_panels_scopes_offer_the_draft_on_the_same_chart(launcher_base, proxy_base,
                                                             patient):
    html = _panel(launcher_base, proxy_base, patient, PANEL_SCOPES)
    assert "Draft the documentation note" in html
    assert "does not let consent-gap write" not in html
