"""The worklist's launch and actions, HTTP mocked (CONTRACT 7): user/ scopes and no patient,
EHR and standalone; the list from one Task search; CSRF on every action; a stale version or a
server's version conflict is a conflict message and nothing overwritten."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from consent_gap.smart import discovery
from consent_gap.web import create_app
from consent_gap.web.config import WebConfig
from webfakes import AUTHORIZE, ISS, FakeEhr, example_resources

USER_SCOPES = "launch openid fhirUser user/*.rs user/Task.u user/Provenance.c user/Device.c"
TASK = {
    "resourceType": "Task", "id": "t-1", "meta": {"versionId": "2"},
    "status": "requested", "intent": "order", "priority": "urgent",
    "code": {"coding": [{"system": "https://consent-gap.dev/fhir/CodeSystem/task",
                         "code": "review-disclosure"}]},
    "focus": {"reference": "AuditEvent/ae-pnholt-1"}, "for": {"reference": "Patient/p-pnholt"},
    "authoredOn": "2026-11-02T09:30:00Z",
    "restriction": {"period": {"end": "2027-01-01T09:30:00Z"}},
}


@pytest.fixture(autouse=True)
def _fresh_discovery_cache():
    discovery.clear_cache()
    yield
    discovery.clear_cache()


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def make_app():
    return create_app(config=WebConfig(allowed_issuers=(ISS,), secret_key="test-secret",
                                       public_url="https://app.test"))


def signed_in(mocked, resources=None):
    ehr = FakeEhr(mocked, [*(resources or example_resources("02-authorization-expired.json")),
                           TASK], None, scope=USER_SCOPES)
    client = make_app().test_client()
    response = client.get(f"/worklist/launch?iss={ISS}&launch=l-1")
    state = parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]
    response = client.get(f"/callback?code=c-1&state={state}")
    assert response.status_code == 303 and response.headers["Location"] == "/worklist"
    return client, ehr


@pytest.mark.parametrize(("launch", "has_launch"), [("l-1", True), (None, False)])
def test_the_worklist_asks_user_scopes_and_no_patient(mocked, launch, has_launch):
    FakeEhr(mocked, [], None, scope=USER_SCOPES)
    query = f"/worklist/launch?iss={ISS}" + (f"&launch={launch}" if launch else "")
    response = make_app().test_client().get(query)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(AUTHORIZE)
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    scopes = params["scope"].split()
    assert ("launch" in scopes) is has_launch
    assert "launch/patient" not in scopes
    assert not [s for s in scopes if s.startswith("patient/")]
    for needed in ("openid", "fhirUser", "user/Task.rus", "user/QuestionnaireResponse.crus",
                   "user/Questionnaire.crs", "user/Patient.rs", "user/DocumentReference.crs",
                   "user/Communication.rs"):
        assert needed in scopes
    assert params.get("launch") == launch


def test_the_worklist_off_the_allowlist_is_refused_without_a_request():
    with responses.RequestsMock() as mocked:
        response = make_app().test_client().get("/worklist/launch?iss=https://evil.test/fhir")
        assert response.status_code == 403 and len(mocked.calls) == 0


def test_without_a_session_the_worklist_says_how_to_open_it(mocked):
    client = make_app().test_client()
    response = client.get("/worklist")
    assert response.status_code == 401
    assert b"Open the worklist from the EHR" in response.data
    standalone = client.get(f"/worklist?iss={ISS}")
    assert standalone.status_code == 302
    assert standalone.headers["Location"].startswith("/worklist/launch?iss=")


def test_a_launch_without_a_patient_opens_the_worklist_from_one_task_search(mocked):
    client, ehr = signed_in(mocked)
    page = client.get("/worklist")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-task="t-1"' in html
    assert "unauthorized" in html and "2027-01-01" in html
    tasks = [u for u in ehr.fhir_calls() if urlsplit(u).path.endswith("/Task")]
    assert len(tasks) == 1
    query = parse_qs(urlsplit(tasks[0]).query)
    assert query["status:not"] == ["completed", "cancelled"]
    assert query["_sort"] == ["-priority,authored-on"]
    assert query["_include"] == ["Task:patient"]
    assert query["_count"] == ["50"]


def test_filters_go_to_the_server(mocked):
    client, ehr = signed_in(mocked)
    client.get("/worklist?decision=review&clinician=Practitioner/pr-1&age=45")
    (call,) = [u for u in ehr.fhir_calls() if urlsplit(u).path.endswith("/Task")]
    query = parse_qs(urlsplit(call).query)
    assert query["priority"] == ["routine"]
    assert query["focus:AuditEvent.agent"] == ["Practitioner/pr-1"]
    assert query["authored-on"][0].startswith("lt")


def test_an_action_without_the_csrf_token_is_refused(mocked):
    client, ehr = signed_in(mocked)
    response = client.post("/worklist/task/t-1/disposition",
                           data={"disposition": "not-a-disclosure", "note": "x",
                                 "version": "2"})
    assert response.status_code == 403
    assert ehr.transactions == []


def _task_page_token(client) -> str:
    html = client.get("/worklist/task/t-1").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_not_a_disclosure_updates_the_task_with_if_match(mocked):
    client, ehr = signed_in(mocked)
    token = _task_page_token(client)
    response = client.post("/worklist/task/t-1/disposition", data={
        "csrf_token": token, "disposition": "not-a-disclosure", "version": "2",
        "note": "internal archive"})
    assert response.status_code == 303
    (bundle,) = ehr.transactions
    (put,) = [e for e in bundle["entry"] if e["request"]["method"] == "PUT"]
    assert put["request"] == {"method": "PUT", "url": "Task/t-1", "ifMatch": 'W/"2"'}
    assert put["resource"]["status"] == "completed"
    assert "internal archive" in put["resource"]["note"][-1]["text"]


def test_a_stale_version_is_a_conflict_and_nothing_is_sent(mocked):
    client, ehr = signed_in(mocked)
    token = _task_page_token(client)
    client.post("/worklist/task/t-1/disposition", data={
        "csrf_token": token, "disposition": "not-a-disclosure", "version": "1",
        "note": "late"})
    assert ehr.transactions == []
    assert "Someone else changed this task" in client.get("/worklist/task/t-1").get_data(
        as_text=True)


def test_the_servers_version_conflict_is_told_not_overwritten(mocked):
    client, _ehr = signed_in(mocked)
    token = _task_page_token(client)
    mocked.remove(responses.POST, ISS)
    mocked.add(responses.POST, ISS, status=409, json={
        "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "conflict",
                                                       "diagnostics": "HAPI-0989"}]})
    client.post("/worklist/task/t-1/disposition", data={
        "csrf_token": token, "disposition": "breach-assessment", "version": "2", "note": ""})
    html = client.get("/worklist/task/t-1").get_data(as_text=True)
    assert "Someone else changed this task" in html


def test_an_incomplete_assessment_writes_nothing_and_names_what_is_missing(mocked):
    in_progress = {**TASK, "status": "in-progress",
                   "businessStatus": {"coding": [{
                       "system": "https://consent-gap.dev/fhir/CodeSystem/disposition",
                       "code": "breach-assessment"}]}}
    ehr = FakeEhr(mocked, [*example_resources("02-authorization-expired.json"), in_progress],
                  None, scope=USER_SCOPES)
    client = make_app().test_client()
    response = client.get(f"/worklist/launch?iss={ISS}&launch=l-1")
    state = parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]
    client.get(f"/callback?code=c-1&state={state}")
    token = _task_page_token(client)
    response = client.post("/worklist/task/t-1/assessment", data={
        "csrf_token": token, "version": "2", "secured": "no", "exception": "none",
        "rating-nature": "high", "evidence-nature": "names and diagnoses"})
    assert response.status_code == 303
    assert ehr.transactions == []
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "the rating of factor recipient" in html and "the conclusion" in html
    assert "names and diagnoses" in html  # what was typed is kept
    assert json.dumps(ehr.transactions) == "[]"


def test_a_task_id_that_is_not_a_fhir_id_is_a_404_without_a_request(mocked):
    client, ehr = signed_in(mocked)
    before = len(ehr.fhir_calls())
    response = client.get("/worklist/task/..%2F..%2FPatient")
    assert response.status_code == 404
    assert len(ehr.fhir_calls()) == before


def test_only_the_authorization_route_takes_a_scan_larger_than_64_kb(mocked):
    import io

    client, ehr = signed_in(mocked)
    token = _task_page_token(client)
    scan = b"%PDF-1.4 " + b"x" * 200_000
    response = client.post("/worklist/task/t-1/authorization", data={
        "csrf_token": token, "version": "2", "signer": "Patient/p-pnholt",
        "signed": "2025-01-01", "expires": "2026-12-31",
        "file": (io.BytesIO(scan), "signed.pdf", "application/pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 303
    (bundle,) = ehr.transactions  # the Consent; the fake's chart re-check still flags it
    consent = bundle["entry"][1]["resource"]
    assert consent["resourceType"] == "Consent" and consent["status"] == "active"
    too_big = client.post("/worklist/task/t-1/disposition", data={
        "csrf_token": token, "version": "2", "disposition": "not-a-disclosure",
        "note": "x" * 200_000})
    assert too_big.status_code == 413
    huge = client.post("/worklist/task/t-1/authorization", data={
        "csrf_token": token, "file": (io.BytesIO(b"x" * 6_000_000), "big.pdf",
                                      "application/pdf")}, content_type="multipart/form-data")
    assert huge.status_code == 413


def test_the_breach_log_as_csv(mocked):
    concluded = {**TASK, "status": "in-progress",
                 "businessStatus": {"coding": [{
                     "system": "https://consent-gap.dev/fhir/CodeSystem/disposition",
                     "code": "breach"}]},
                 "note": [{"time": "2026-11-20T10:00:00Z",
                           "text": "Breach risk assessment: breach. Practitioner/po-1."}]}
    FakeEhr(mocked, [*example_resources("02-authorization-expired.json"), concluded], None,
            scope=USER_SCOPES)
    client = make_app().test_client()
    response = client.get(f"/worklist/launch?iss={ISS}&launch=l-1")
    state = parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]
    client.get(f"/callback?code=c-1&state={state}")
    csv_response = client.get("/worklist/breaches.csv?year=2026")
    assert csv_response.status_code == 200
    assert csv_response.mimetype == "text/csv"
    assert "breach-log-2026.csv" in csv_response.headers["Content-Disposition"]
    lines = csv_response.get_data(as_text=True).strip().split("\r\n")
    assert lines[0].startswith("task,patient,disclosure")
    assert lines[1].startswith("Task/t-1,")
    assert "2026-11-02" in lines[1] and "2026-11-20" in lines[1]
    html = client.get("/worklist/breaches?year=2026").get_data(as_text=True)
    assert "Breach log 2026" in html and "no notice drafted" in html
    # the screen names no resource by id (the CSV keeps the references, for the record)
    assert not re.search(r"\b(AuditEvent|Task|DocumentReference|Patient)/[A-Za-z0-9-]", html)
