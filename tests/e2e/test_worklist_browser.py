"""The privacy office's worklist in real Chromium (CONTRACT 7, 7.1): the officer opens it from
the sandbox EHR's "Privacy office" entry (an EHR launch with no patient), sees the scan's Tasks
across clients, completes breach risk assessments (breach: the notice draft lands in HAPI and
the deadlines show; low probability: the Task completes), records "not a disclosure", and two
sessions acting on one Task get a conflict, not a lost update. The pages work by keyboard and
axe-core finds no serious or critical violation.

The data: the example charts under ids of their own, whose alerts were written "long ago" (an
install from before Tasks, so the scan dates each Task at its alert), each run earlier than the
last, so that this run's Tasks have the earliest deadlines and head the worklist's first page
whatever else the shared sandbox holds.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from consent_gap.evaluate import evaluate
from consent_gap.fhir.client import FhirClient
from consent_gap.scan import run_scan
from consent_gap.web.worklist import PAGE_SIZE
from integration.test_scan_live import JURISDICTION, Charts, write_as_before_tasks
from support import axe

TIMEOUT_MS = 60_000
TASK_CODE = "https://consent-gap.dev/fhir/CodeSystem/task|review-disclosure"


@pytest.fixture(scope="module")
def office(sandbox, tmp_path_factory):
    """The charts loaded and scanned; their Tasks by decision (id, patient, disclosure)."""
    charts = Charts(sandbox["fhir"], "wl" + uuid.uuid4().hex[:8])
    discovered = datetime(2019, 1, 1, tzinfo=UTC) - timedelta(
        seconds=int(time.time()) - 1_796_000_000)
    write_as_before_tasks(sandbox["fhir"], charts, discovered)
    summary = run_scan(charts.settings(tmp_path_factory.mktemp("scan")),
                       patients=charts.patients)
    assert summary.status == "ok", summary.errors
    tasks = hapi_tasks(sandbox["fhir"], charts.patients)
    assert len({t["for"]["reference"] for t in tasks}) >= 5
    findings = {f.disclosure: f for b in charts.bundles
                for f in evaluate(b, JURISDICTION).findings}
    expired = next(t for t in tasks
                   if t["focus"]["reference"].startswith("AuditEvent/ae-pnholt-1-"))
    return {"charts": charts, "tasks": tasks, "discovered": discovered,
            "used": {expired["id"]}, "expired": (expired, findings[expired["focus"]["reference"]])}


def hapi_tasks(base: str, patients: list[str]) -> list[dict]:
    with FhirClient(base) as client:
        return [r for r in client.search("Task", [
            ("subject", ",".join(f"Patient/{p}" for p in patients)), ("code", TASK_CODE)])
            if r["resourceType"] == "Task"]


def read(base: str, reference: str) -> dict:
    response = requests.get(f"{base}/{reference}", timeout=30,
                            headers={"Accept": "application/fhir+json"})
    assert response.status_code == 200, response.text[:300]
    return response.json()


def unused(office, priority: str) -> dict:
    """A Task of this run no test has used yet."""
    used = office.setdefault("used", set())
    task = next(t for t in office["tasks"] if t["priority"] == priority and t["id"] not in used)
    used.add(task["id"])
    return task


def sign_in(page, sandbox) -> None:
    """The EHR's patient list, its Privacy office entry by keyboard, the worklist."""
    page.goto(f"{sandbox['launcher']}/ehr")
    link = page.get_by_role("link", name="Privacy office: consent-gap worklist")
    link.focus()
    page.keyboard.press("Enter")
    page.locator("table.worklist").wait_for(timeout=TIMEOUT_MS)


def no_blocking_violations(page) -> None:
    found = axe.violations(page)
    assert found == [], found


@pytest.fixture()
def officer_page(page, sandbox, app_server):
    if not axe.available():
        pytest.fail(f"axe-core is missing at {axe.AXE_CORE_JS}; scripts/test installs it",
                    pytrace=False)
    axe.install(page)
    page.set_viewport_size({"width": 1200, "height": 1400})
    sign_in(page, sandbox)
    return page


@pytest.fixture()
def a_second_page(sandbox, office):
    """More open Tasks than one page holds (routine, discovered now, so they sort after this
    run's), so that the worklist always has a next page to follow; deleted afterwards."""
    model = next(t for t in office["tasks"] if t["priority"] == "routine")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    made = []
    for n in range(PAGE_SIZE + 1):
        task = {k: v for k, v in model.items() if k not in ("meta", "id", "identifier")}
        task.update(id=f"{office['charts'].suffix}-fill-{n}", authoredOn=now)
        response = requests.put(f"{sandbox['fhir']}/Task/{task['id']}", json=task, timeout=30)
        assert response.status_code in (200, 201), response.text[:300]
        made.append(task["id"])
    yield made
    for task_id in made:
        requests.delete(f"{sandbox['fhir']}/Task/{task_id}", timeout=30)


def test_the_officer_sees_the_scans_tasks_across_clients(officer_page, sandbox, app_server,
                                                          office, a_second_page):
    page = officer_page
    rows = page.locator("table.worklist tbody tr[data-task]")
    shown = [rows.nth(i).get_attribute("data-task") for i in range(rows.count())]
    ours = {t["id"]: t for t in office["tasks"]}
    urgent = [t["id"] for t in office["tasks"] if t["priority"] == "urgent"]
    # this run's urgent Tasks have the earliest deadlines: they head the first page
    assert set(shown[:len(urgent)]) == set(urgent)
    assert len({ours[i]["for"]["reference"] for i in shown if i in ours}) >= 5
    first = page.locator(f'tr[data-task="{urgent[0]}"]')
    assert "overdue" in first.locator("td.days").inner_text()
    assert "Unauthorized" in first.inner_text()  # the decision in words
    no_blocking_violations(page)
    # filters: review only
    page.get_by_label("Decision").select_option("review")
    page.get_by_role("button", name="Apply").click()
    page.locator("table.worklist").wait_for()
    decisions = page.locator("table.worklist tbody tr[data-task]")
    assert decisions.count() > 0
    assert all("review" in decisions.nth(i).inner_text() for i in range(decisions.count()))
    # paging: the next page is the server's next page, not the same rows again
    page.goto(f"{app_server}/worklist")
    page.locator("table.worklist").wait_for()
    rows = page.locator("table.worklist tbody tr[data-task]")
    first_page = {rows.nth(i).get_attribute("data-task") for i in range(rows.count())}
    assert len(first_page) == PAGE_SIZE
    page.get_by_role("link", name="Next page").click()
    page.get_by_role("link", name="First page").wait_for(timeout=TIMEOUT_MS)
    later = page.locator("table.worklist tbody tr[data-task]")
    assert later.count() > 0
    assert not {later.nth(i).get_attribute("data-task")
                for i in range(later.count())} & first_page


def start_assessment(page, app_server, task_id: str) -> None:
    page.goto(f"{app_server}/worklist/task/{task_id}")
    page.locator("#disposition").wait_for(timeout=TIMEOUT_MS)
    # names and words on the task page, never a resource id (issue 12)
    shown = page.locator("main").inner_text()
    assert not re.search(r"\b(AuditEvent|Patient|Organization|Practitioner|RelatedPerson|"
                         r"Consent|DocumentReference)/", shown), shown
    page.get_by_label("Start the breach risk assessment").check()
    page.get_by_role("button", name="Record the disposition").click()
    page.locator("form#assessment").wait_for(timeout=TIMEOUT_MS)


def fill_assessment(page, ratings: dict[str, str]) -> None:
    form = page.locator("form#assessment")
    form.get_by_label("No", exact=True).check()
    form.get_by_label("No exception applies").check()
    for code, rating in ratings.items():
        factor = form.locator(f'fieldset[data-factor="{code}"]')
        factor.get_by_label(rating, exact=True).check()
        factor.get_by_label("Evidence").fill(f"Evidence for {code}: {rating}.")


def test_a_breach_assessment_writes_the_notice_draft_and_shows_the_deadlines(
        officer_page, sandbox, app_server, office):
    page = officer_page
    task = unused(office, "urgent")
    start_assessment(page, app_server, task["id"])
    assert "in-progress" in page.locator("#task-state").inner_text()
    no_blocking_violations(page)
    fill_assessment(page, {"nature": "high", "recipient": "moderate", "acquired": "low",
                           "mitigation": "low"})
    # the app suggests breach, as a factor is high
    form = page.locator("form#assessment")
    assert form.locator('input[name="conclusion"][value="breach"]').is_checked()
    assert "breach" in page.locator("#suggestion").inner_text()
    form.get_by_role("button", name="Record the assessment").click()
    page.locator("#deadlines").wait_for(timeout=TIMEOUT_MS)
    text = page.locator("#deadlines").inner_text()
    discovered = office["discovered"]
    client = (discovered + timedelta(days=60)).date().isoformat()
    hhs = (datetime(discovered.year, 12, 31) + timedelta(days=60)).date().isoformat()
    assert client in text and hhs in text and "not required" in text
    # words on screen, the draft notice opened by its link (the reference only in the href)
    assert "DocumentReference/" not in page.locator("#deadlines").inner_text()
    href = page.locator("#notice-ref").get_attribute("href") or ""
    notice_ref = "DocumentReference/" + href.rsplit("/DocumentReference/", 1)[-1]

    stored = read(sandbox["fhir"], f"Task/{task['id']}")
    assert stored["status"] == "in-progress"
    assert stored["businessStatus"]["coding"][0]["code"] == "breach"
    outputs = {o["type"]["coding"][0]["code"]: o["valueReference"]["reference"]
               for o in stored["output"] if "valueReference" in o}
    assert outputs["breach-notice-draft"] == notice_ref
    notice = read(sandbox["fhir"], notice_ref)
    assert notice["docStatus"] == "preliminary"
    assert notice["subject"] == task["for"]
    dated = {o["type"]["coding"][0]["code"]: o.get("valueDate") for o in stored["output"]}
    assert dated["hhs-notice-deadline"] == hhs  # the deadlines are on the Task itself
    assert "media-notice-deadline" not in dated
    response = read(sandbox["fhir"], outputs["breach-risk-assessment"])
    assert response["status"] == "completed"
    assert response["subject"] == task["for"]
    assert response["author"] == {"reference": "Practitioner/sandbox-practitioner"}
    occurred = next(i for i in response["item"] if i["linkId"] == "occurred")
    assert occurred["answer"][0]["valueDateTime"][:4].isdigit()
    assert response["questionnaire"] == (
        "https://consent-gap.dev/fhir/Questionnaire/breach-risk-assessment")
    questionnaires = requests.get(f"{sandbox['fhir']}/Questionnaire", timeout=30, params={
        "url": response["questionnaire"], "_summary": "count"}).json()
    assert questionnaires["total"] == 1
    # and on the worklist
    page.goto(f"{app_server}/worklist")
    row = page.locator(f'tr[data-task="{task["id"]}"]')
    assert f"HHS by {hhs}" in row.inner_text() and client in row.inner_text()
    # the breach log of the discovery year lists it
    page.goto(f"{app_server}/worklist/breaches?year={discovered.year}")
    listed = page.locator("tr", has=page.locator(f'a[href$="/worklist/task/{task["id"]}"]'))
    assert listed.count() == 1
    assert "draft, not sent" in listed.inner_text()  # the notice, in words, not by id
    no_blocking_violations(page)


def test_a_low_probability_assessment_completes_the_task(officer_page, sandbox, app_server,
                                                         office):
    page = officer_page
    task = unused(office, "urgent")
    start_assessment(page, app_server, task["id"])
    fill_assessment(page, {code: "low" for code in ("nature", "recipient", "acquired",
                                                    "mitigation")})
    form = page.locator("form#assessment")
    assert form.locator('input[name="conclusion"][value="low-probability"]').is_checked()
    form.get_by_role("button", name="Record the assessment").click()
    page.locator(".notice-ok").wait_for(timeout=TIMEOUT_MS)
    stored = read(sandbox["fhir"], f"Task/{task['id']}")
    assert stored["status"] == "completed"
    assert stored["businessStatus"]["coding"][0]["code"] == "low-probability"
    page.goto(f"{app_server}/worklist")
    assert page.locator(f'tr[data-task="{task["id"]}"]').count() == 0


def test_not_a_disclosure_needs_its_note_and_completes(officer_page, sandbox, app_server,
                                                       office):
    page = officer_page
    task = unused(office, "routine")
    page.goto(f"{app_server}/worklist/task/{task['id']}")
    page.get_by_label("Not a disclosure", exact=True).check()
    page.get_by_role("button", name="Record the disposition").click()
    # the browser's own check (required radio) passes; the server asks for the note
    page.locator(".notice-error").wait_for(timeout=TIMEOUT_MS)
    assert read(sandbox["fhir"], f"Task/{task['id']}")["status"] == "requested"
    # by keyboard alone: the radio, the note, then Tab to the button and Enter
    page.get_by_label("Not a disclosure", exact=True).focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "note"
    page.keyboard.type("The export went to our own billing office's archive.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Record the disposition"
    page.keyboard.press("Enter")
    page.locator(".notice-ok").wait_for(timeout=TIMEOUT_MS)
    stored = read(sandbox["fhir"], f"Task/{task['id']}")
    assert stored["status"] == "completed"
    assert stored["businessStatus"]["coding"][0]["code"] == "not-a-disclosure"
    assert stored["note"][-1]["authorReference"] == {
        "reference": "Practitioner/sandbox-practitioner"}
    assert "billing office" in stored["note"][-1]["text"]


def test_two_officers_on_one_task_get_a_conflict_not_a_lost_update(
        browser, sandbox, app_server, office):
    task = unused(office, "routine")
    pages = []
    for _ in range(2):
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, sandbox)
        page.goto(f"{app_server}/worklist/task/{task['id']}")
        page.locator("#disposition").wait_for(timeout=TIMEOUT_MS)
        pages.append(page)
    first, second = pages
    first.get_by_label("Not a disclosure", exact=True).check()
    first.get_by_label("Why").fill("First officer: internal transfer.")
    first.get_by_role("button", name="Record the disposition").click()
    first.locator(".notice-ok").wait_for(timeout=TIMEOUT_MS)
    second.get_by_label("Not a disclosure", exact=True).check()
    second.get_by_label("Why").fill("Second officer: something else.")
    second.get_by_role("button", name="Record the disposition").click()
    conflict = second.locator(".notice-error")
    conflict.wait_for(timeout=TIMEOUT_MS)
    assert "Someone else changed this task" in conflict.inner_text()
    stored = read(sandbox["fhir"], f"Task/{task['id']}")
    texts = [n["text"] for n in stored.get("note") or []]
    assert any("First officer" in t for t in texts)
    assert not any("Second officer" in t for t in texts)
    for page in pages:
        page.context.close()


def test_an_authorization_on_file_completes_the_task_only_when_the_re_check_clears_it(
        officer_page, sandbox, app_server, office):
    """Example 02 (an expired authorization): the officer attaches the signed form that was
    kept on paper. One that does not cover the date of the disclosure leaves the Task open;
    one that does completes it, and the Consent is in the chart, signed by its scan."""
    page = officer_page
    task, finding = office["expired"]
    year = int(finding.occurred[:4])
    page.goto(f"{app_server}/worklist/task/{task['id']}")
    form = page.locator("form#authorization")
    form.wait_for(timeout=TIMEOUT_MS)
    no_blocking_violations(page)

    def attach(signed: str, expires: str) -> None:
        form = page.locator("form#authorization")
        form.locator("#auth-file").set_input_files(files=[{
            "name": "signed-authorization.pdf", "mimeType": "application/pdf",
            "buffer": b"%PDF-1.4 signed authorization (scan)"}])
        form.get_by_label("Signed on").fill(signed)
        form.get_by_label("Expires on").fill(expires)
        form.get_by_role("button", name="Attach and re-check").click()

    attach(f"{year - 3}-01-01", f"{year - 2}-01-01")
    message = page.locator(".notice-error")
    message.wait_for(timeout=TIMEOUT_MS)
    assert "still flags" in message.inner_text() and "stays open" in message.inner_text()
    assert read(sandbox["fhir"], f"Task/{task['id']}")["status"] == "requested"

    attach(f"{year - 1}-01-01", f"{year + 1}-12-31")
    page.locator(".notice-ok").wait_for(timeout=TIMEOUT_MS)
    stored = read(sandbox["fhir"], f"Task/{task['id']}")
    assert stored["status"] == "completed"
    assert stored["businessStatus"]["coding"][0]["code"] == "authorization-on-file"
    consent_ref = next(o["valueReference"]["reference"] for o in stored["output"]
                       if o["type"]["coding"][0]["code"] == "authorization")
    consent = read(sandbox["fhir"], consent_ref)
    assert consent["status"] == "active"
    assert consent["sourceAttachment"]["contentType"] == "application/pdf"
    assert consent["patient"] == task["for"]
