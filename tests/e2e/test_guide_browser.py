"""Before a disclosure, in real Chromium (CONTRACT 6): "New disclosure" in the sandbox EHR's
iframe, on clients loaded for this run (sandbox.data.guide_clients, a suffix of their own).

A threat in California is required, is recorded with the five elements and the notice, and
`evaluate` on the chart read from HAPI then finds documentation present and notice sent; a
subpoena without an order cannot be recorded without the acknowledgement; a client's request
gets its authorization drafted and signed on the pad, and the check then says authorized; a
double submit writes once. Screenshots in test-artifacts/guide-*.png; axe-core finds no
serious or critical violation; the page works by keyboard."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
import requests
from consent_gap.evaluate import evaluate
from consent_gap.fetch_plan import fetch_patient_chart
from consent_gap.fhir import FhirClient
from support import axe

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from sandbox.data import guide_clients

TIMEOUT_MS = 60_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SUFFIX = f"-e2e{uuid.uuid4().hex[:6]}"
PROPOSAL_TAG = "https://consent-gap.dev/fhir/proposal"
CA = {"CONSENT_GAP_JURISDICTION": "US-CA", "CONSENT_GAP_ORGANIZATION": "Organization/org-clinic-ca"}


@pytest.fixture(scope="module")
def guide_app(sandbox, app_servers):
    """The app with California's rules and the practice; the default app again afterwards."""
    guide_clients.load(sandbox["fhir"], SUFFIX)
    url = app_servers.ensure(CA)
    yield url
    app_servers.ensure()


def pid(scenario: str) -> str:
    return guide_clients.patient_id(scenario, SUFFIX)


def open_guide(page, sandbox, scenario: str):
    """The EHR page for the scenario's client, then "New disclosure" by keyboard."""
    page.set_viewport_size({"width": 1000, "height": 1500})
    page.goto(f"{sandbox['launcher']}/ehr?patient={pid(scenario)}&need_patient_banner=1")
    frame = page.frame_locator("#smart-app")
    frame.locator("#counts-h, section.message").first.wait_for(timeout=TIMEOUT_MS)
    link = frame.get_by_role("link", name="New disclosure: may I share this?")
    link.focus()
    page.keyboard.press("Enter")
    frame.locator("#proposal").wait_for(timeout=TIMEOUT_MS)
    return frame


def app_frame(page, app_url: str):
    return next(f for f in page.frames if f.url.startswith(app_url) and "/guide" in f.url)


def choose_recipient(frame, page, text: str) -> None:
    """Search as you type, then pick the first match with the keyboard."""
    box = frame.locator("#recipient-search")
    box.fill("")
    box.focus()
    box.press_sequentially(text, delay=30)
    frame.locator("#recipient-results [role=option]").first.wait_for(timeout=TIMEOUT_MS)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    frame.locator("#recipient-chosen", has_text="Recipient:").wait_for(timeout=TIMEOUT_MS)


def check(frame) -> None:
    frame.locator("#check").click()
    frame.locator("#answer-steps li").first.wait_for(timeout=TIMEOUT_MS)


def steps(frame) -> list[str]:
    items = frame.locator("#answer-steps li")
    return [items.nth(i).get_attribute("data-step") for i in range(items.count())]


def audit_events(fhir: str, patient_id: str) -> list[dict]:
    bundle = requests.get(f"{fhir}/AuditEvent", timeout=30,
                          params={"patient": f"Patient/{patient_id}", "_count": "50"}).json()
    return [e["resource"] for e in bundle.get("entry") or []]


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"guide-{name}.png"), full_page=True)


def test_a_threat_in_california_is_recorded_with_five_elements(page, sandbox, guide_app):
    if not axe.available():
        pytest.fail(f"axe-core is missing at {axe.AXE_CORE_JS}; scripts/test installs it",
                    pytrace=False)
    axe.install(page)
    frame = open_guide(page, sandbox, "threat-to-person")
    frame.locator("#scenario").select_option("threat-to-person")
    choose_recipient(frame, page, "Sacramento 1 Precinct")
    frame.locator(f'input[name=data][value="DocumentReference/dr-{pid("threat-to-person")}-note"]'
                  ).check()
    check(frame)
    assert "required" in frame.locator("#answer-decision").inner_text()
    assert steps(frame) == ["warn-intended-victim", "notify-law-enforcement", "inform-client",
                            "document", "record-disclosure"]
    assert "Cal. Civ. Code 43.92" in frame.locator("#answer-steps").inner_text()
    assert "43.92" in frame.locator("#answer-rule").inner_text()
    assert not frame.locator("#acknowledge-box").is_visible()  # only for unauthorized
    assert frame.locator("#documentation-fields").is_visible()
    # pre-filled from what the form knows: who was informed and why
    assert "Precinct" in frame.locator("#doc-informed").input_value()
    problems = axe.violations(app_frame(page, guide_app))
    assert problems == [], problems
    frame.locator("#doc-nature").fill("Client said he would hurt his neighbour tonight; "
                                      "has a weapon.")
    frame.locator("#doc-client_response").fill("Angry, then agreed to a safety plan.")
    frame.locator("#doc-evidence").fill("Risk assessment; consulted the clinical supervisor.")
    frame.locator("#doc-harm_minimised").fill("Shared only the threat and the address.")
    frame.locator("input[name=notice][value=sent]").check()
    frame.locator("#record-button").click()
    result = frame.locator("#record-result", has_text="Recorded in the chart")
    result.wait_for(timeout=TIMEOUT_MS)
    shot(page, "threat-recorded")
    events = audit_events(sandbox["fhir"], pid("threat-to-person"))
    assert len(events) == 1
    with FhirClient(sandbox["fhir"]) as client:
        resources = fetch_patient_chart(client, pid("threat-to-person"))
    report = evaluate(resources, "US-CA")
    (finding,) = [f for f in report.findings
                  if f.disclosure == f"AuditEvent/{events[0]['id']}"]
    assert (finding.decision, finding.basis) == ("required", "duty-to-warn-or-protect")
    assert (finding.documentation, finding.client_notice) == ("present", "sent")


def test_a_subpoena_without_an_order_cannot_be_recorded_unacknowledged(page, sandbox,
                                                                       guide_app):
    axe.install(page)
    frame = open_guide(page, sandbox, "subpoena")
    frame.locator("#scenario").select_option("subpoena")
    assert "the requesting party" in frame.locator("#suggested").inner_text()
    frame.locator("#recipient-search").press_sequentially("Zzqxv", delay=20)
    frame.locator("#recipient-results", has_text="No match").wait_for(timeout=TIMEOUT_MS)
    problems = axe.violations(app_frame(page, guide_app))  # the open listbox, too
    assert problems == [], problems
    choose_recipient(frame, page, "Brightwater")
    frame.locator(f'input[name=instruments][value="DocumentReference/dr-{pid("subpoena")}'
                  '-subpoena"]').check()
    frame.locator(f'input[name=data][value="DocumentReference/dr-{pid("subpoena")}-note"]'
                  ).check()
    check(frame)
    assert "unauthorized" in frame.locator("#answer-decision").inner_text()
    assert steps(frame) == ["do-not-disclose", "consult-legal-counsel", "assert-privilege"]
    assert frame.locator("#acknowledge-box").is_visible()
    frame.locator("#record-button").click()
    error = frame.locator("#record-result.notice-error")
    error.wait_for(timeout=TIMEOUT_MS)
    assert "acknowledge" in error.inner_text()
    shot(page, "subpoena-refused")
    assert audit_events(sandbox["fhir"], pid("subpoena")) == []
    problems = axe.violations(app_frame(page, guide_app))
    assert problems == [], problems


def test_a_clients_request_is_drafted_signed_on_the_pad_then_authorized(page, sandbox,
                                                                        guide_app):
    axe.install(page)
    frame = open_guide(page, sandbox, "client-request")
    frame.locator("#scenario").select_option("client-request")
    choose_recipient(frame, page, "Castellan")
    frame.locator(f'input[name=data][value="DocumentReference/dr-{pid("client-request")}'
                  '-note"]').check()
    check(frame)
    assert "unauthorized" in frame.locator("#answer-decision").inner_text()
    assert steps(frame)[-1] == "obtain-authorization"
    frame.locator("#draft-button").click()
    frame.locator("#sign-box").wait_for(state="visible", timeout=TIMEOUT_MS)
    form_href = frame.locator("#form-link").get_attribute("href")
    pdf_href = frame.locator("#pdf-link").get_attribute("href")
    guide = app_frame(page, guide_app)
    pdf = guide.evaluate("url => fetch(url).then(r => r.arrayBuffer())"
                         ".then(b => new TextDecoder().decode(new Uint8Array(b).slice(0, 5)))",
                         pdf_href)
    assert pdf == "%PDF-"
    form_html = guide.evaluate("url => fetch(url).then(r => r.text())", form_href)
    assert "Sacramento Counseling Associates" in form_html and "revoke" in form_html
    pad = frame.locator("#pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 60)
    page.mouse.down()
    for step in range(1, 12):
        page.mouse.move(box["x"] + 30 + step * 25, box["y"] + 60 + (step % 3) * 15)
    page.mouse.up()
    shot(page, "authorization-pad")
    frame.locator("#sign-button").click()
    frame.locator("#sign-result", has_text="The check now says: authorized").wait_for(
        timeout=TIMEOUT_MS)
    assert "authorized" in frame.locator("#answer-decision").inner_text()
    shot(page, "authorization-signed")
    consents = requests.get(f"{sandbox['fhir']}/Consent", timeout=30, params={
        "patient": f"Patient/{pid('client-request')}"}).json()["entry"]
    (consent,) = [e["resource"] for e in consents]
    assert consent["status"] == "active"
    signatures = requests.get(f"{sandbox['fhir']}/Provenance", timeout=30, params={
        "target": f"Consent/{consent['id']}"}).json()["entry"]
    sig = next(e["resource"]["signature"][0] for e in signatures
               if e["resource"].get("signature"))
    assert sig["sigFormat"] == "image/png"


def test_a_double_submit_writes_once(page, sandbox, guide_app):
    frame = open_guide(page, sandbox, "treatment-coordination")
    frame.locator("#scenario").select_option("treatment-coordination")
    choose_recipient(frame, page, "Larkin")
    frame.locator(f'input[name=data][value="DocumentReference/dr-{pid("treatment-coordination")}'
                  '-note"]').check()
    check(frame)
    assert steps(frame) == ["record-disclosure"]
    assert not frame.locator("#documentation-fields").is_visible()  # nothing to document
    frame.locator("#record-button").dblclick()
    frame.locator("#record-result", has_text="Recorded in the chart").wait_for(
        timeout=TIMEOUT_MS)
    # and the same proposal sent again (a retry after a lost answer) writes nothing
    guide = app_frame(page, guide_app)
    again = guide.evaluate("""() => {
        const root = document.getElementById('guide');
        const chosen = document.querySelector('input[name=data]:checked').value;
        const recipient = document.getElementById('recipient-ref').value;
        const body = {proposal: {patient: root.dataset.patient,
                                 scenario: 'treatment-coordination',
                                 recipient: {reference: recipient},
                                 data: [{reference: chosen}]},
                      proposal_id: root.dataset.proposalId};
        const headers = {'Content-Type': 'application/json', 'X-CSRF-Token': root.dataset.csrf};
        return fetch(root.dataset.recordUrl,
                     {method: 'POST', headers: headers, body: JSON.stringify(body)})
          .then(r => r.json().then(b => [r.status, b.written]));
    }""")
    assert again == [200, False]
    assert len(audit_events(sandbox["fhir"], pid("treatment-coordination"))) == 1


def test_without_a_pointer_a_typed_and_adopted_name_signs_by_keyboard(page, sandbox, guide_app):
    """The pad's keyboard alternative: the signer types a name and adopts it as the
    signature (drawn into the image); without the adoption nothing is signed."""
    frame = open_guide(page, sandbox, "emergency")
    frame.locator("#scenario").select_option("client-request")
    choose_recipient(frame, page, "Whitcombe")
    frame.locator(f'input[name=data][value="DocumentReference/dr-{pid("emergency")}-note"]'
                  ).check()
    check(frame)
    assert "unauthorized" in frame.locator("#answer-decision").inner_text()
    frame.locator("#draft-button").focus()
    page.keyboard.press("Enter")
    frame.locator("#sign-box").wait_for(state="visible", timeout=TIMEOUT_MS)
    frame.locator("#typed-name").focus()
    page.keyboard.type("Tamsin Guidewell")
    frame.locator("#sign-button").focus()
    page.keyboard.press("Enter")
    refused = frame.locator("#sign-result.notice-error")
    refused.wait_for(timeout=TIMEOUT_MS)
    assert "confirm it as the signature" in refused.inner_text()
    frame.locator("#typed-adopt").focus()
    page.keyboard.press("Space")
    frame.locator("#sign-button").focus()
    page.keyboard.press("Enter")
    frame.locator("#sign-result", has_text="The check now says: authorized").wait_for(
        timeout=TIMEOUT_MS)
    shot(page, "typed-signature")
