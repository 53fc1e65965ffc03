"""The accounting of disclosures in the sandbox EHR's iframe, in real Chromium: the panel links
to it, the page lists exactly the client's accountable disclosures of the last six years
(as `consent-gap accounting` reads them from HAPI), the PDF downloads and opens (its first page
turned into test-artifacts/accounting-page1.png by pdftoppm), the page works by keyboard, and
axe-core finds no serious or critical violation."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from consent_gap.accounting import account, now
from consent_gap.evaluate import evaluate
from consent_gap.fetch_plan import fetch_accounting_chart
from consent_gap.fhir import FhirClient
from consent_gap.mappings import load_rules
from support import axe

PAGE_TIMEOUT_MS = 60_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DISCLOSE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle|disclose"


@pytest.fixture(scope="module")
def client_with_disclosures(sandbox):
    """A seeded patient with at least two accountable disclosures, and the accounting the
    command gives for them today (federal rules, as the app here runs without a state)."""
    bundle = requests.get(f"{sandbox['fhir']}/AuditEvent", timeout=30, params={
        "subtype": DISCLOSE, "_count": "300", "_elements": "entity"}).json()
    counts: dict[str, int] = {}
    for entry in bundle.get("entry") or []:
        for entity in entry["resource"].get("entity") or []:
            ref = (entity.get("what") or {}).get("reference") or ""
            if ref.startswith("Patient/"):
                counts[ref] = counts.get(ref, 0) + 1
    rules = load_rules()
    for ref in sorted(counts, key=lambda p: (-counts[p], p))[:40]:
        with FhirClient(sandbox["fhir"]) as client:
            resources = fetch_accounting_chart(client, ref.split("/", 1)[1])
        accounting = account(resources, evaluate(resources, rules=rules), rules, ref, now())
        if len(accounting.entries) >= 2:
            return ref.split("/", 1)[1], accounting
    pytest.fail("no seeded patient has two accountable disclosures; the sandbox data changed",
                pytrace=False)


def test_accounting_page_pdf_and_accessibility(page, sandbox, app_server,
                                               client_with_disclosures):
    if not axe.available():
        pytest.fail(f"axe-core is missing at {axe.AXE_CORE_JS}; scripts/test installs it",
                    pytrace=False)
    patient_id, accounting = client_with_disclosures
    axe.install(page)
    page.set_viewport_size({"width": 1100, "height": 1400})
    page.goto(f"{sandbox['launcher']}/ehr?patient={patient_id}&need_patient_banner=1")
    frame = page.frame_locator("#smart-app")
    frame.locator("#counts-h, section.message").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    link = frame.get_by_role("link", name="Accounting of disclosures")
    link.focus()
    page.keyboard.press("Enter")  # reachable by keyboard
    frame.locator("#acct-title").wait_for(timeout=PAGE_TIMEOUT_MS)

    rows = frame.locator("table.acct-table tbody tr")
    shown = [rows.nth(i).get_attribute("data-disclosure") for i in range(rows.count())]
    assert shown == [e.disclosure for e in accounting.entries]
    header = frame.locator(".acct-facts").inner_text()
    assert "Period" in header and accounting.start.date().isoformat() in header
    assert "Date of the request" in header
    first = accounting.entries[0]
    if first.recipient.name:
        assert first.recipient.name in rows.nth(0).inner_text()

    app_frame = next(f for f in page.frames if "/accounting/" in f.url)
    problems = axe.violations(app_frame)
    assert problems == [], problems

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "accounting.png"), full_page=True)
    page.set_viewport_size({"width": 380, "height": 1400})  # the panel's narrow iframe
    assert axe.violations(app_frame) == []
    page.screenshot(path=str(ARTIFACTS / "accounting-narrow.png"), full_page=True)
    page.set_viewport_size({"width": 1100, "height": 1400})
    with page.expect_download(timeout=PAGE_TIMEOUT_MS) as download:
        frame.get_by_role("link", name="Download the PDF").click()
    pdf = ARTIFACTS / "accounting.pdf"
    download.value.save_as(str(pdf))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert re.fullmatch(r"accounting-of-disclosures-\d{4}-\d{2}-\d{2}\.pdf",
                        download.value.suggested_filename)
    if not shutil.which("pdftoppm"):
        pytest.fail("pdftoppm is missing (poppler-utils); scripts/test installs it",
                    pytrace=False)
    prefix = ARTIFACTS / "accounting-page"
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(prefix)], check=True, timeout=60)
    png = ARTIFACTS / "accounting-page.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, timeout=60,
                          capture_output=True, text=True).stdout
    assert "Accounting of disclosures" in text
    assert accounting.entries[0].date in text


def test_the_accounting_page_summarizes_on_request(page, sandbox, app_server,
                                                   client_with_disclosures):
    patient_id, accounting = client_with_disclosures
    page.goto(f"{sandbox['launcher']}/ehr?patient={patient_id}&need_patient_banner=1")
    frame = page.frame_locator("#smart-app")
    frame.get_by_role("link", name="Accounting of disclosures").click(timeout=PAGE_TIMEOUT_MS)
    frame.locator("#acct-title").wait_for(timeout=PAGE_TIMEOUT_MS)
    frame.get_by_label("Summarize repeated disclosures").check()
    frame.get_by_role("button", name="Show").click()
    frame.locator(".acct-intro:has-text('shown once')").wait_for(timeout=PAGE_TIMEOUT_MS)
    groups = {(e.recipient_key, e.purposes, e.basis, e.decision) for e in accounting.entries}
    assert frame.locator("table.acct-table tbody tr").count() == len(groups)
