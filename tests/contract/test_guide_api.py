"""CONTRACT 6 through the app (HTTP mocked with `responses`): the JSON API behind the launch
session with CSRF, the record and the authorization written as 6.3 and 6.5 say, a double
submit written once, and the "New disclosure" page."""

from __future__ import annotations

import base64
import json
import re
import uuid

import pytest
import responses
from consent_gap.smart import discovery
from consent_gap.web import create_app
from consent_gap.web.config import WebConfig
from webfakes import ISS, FakeEhr, example_resources

APPS: list = []
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
FIVE = {"nature": "Threat with a plan.", "informed": "Police and the victim, to protect her.",
        "client_response": "Agreed to a safety plan.", "evidence": "Consulted the supervisor.",
        "harm_minimised": "Shared only the threat."}


class ServerLike(FakeEhr):
    """The fake EHR with a conditional create that matches, an If-Match that can fail, and
    what it stores readable afterwards (as HAPI would)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keys: dict[str, str] = {}
        self.count = 0

    def _transaction(self, request):
        bundle = json.loads(request.body)
        self.transactions.append(bundle)
        entries, created = [], []
        for entry in bundle["entry"]:
            req, resource = entry["request"], entry["resource"]
            rtype = resource["resourceType"]
            if req["method"] == "PUT":
                rid = req["url"].split("/")[1]
                stored = next(r for r in self.resources if r.get("id") == rid
                              and r["resourceType"] == rtype)
                version = stored.get("meta", {}).get("versionId", "1")
                if req.get("ifMatch") != f'W/"{version}"':
                    return 412, {}, json.dumps({"resourceType": "OperationOutcome",
                                                "issue": [{"severity": "error",
                                                           "code": "conflict"}]})
                new = {**resource, "id": rid,
                       "meta": {**resource.get("meta", {}), "versionId": str(int(version) + 1)}}
                created.append(("replace", stored, new))
                entries.append({"response": {"status": "200 OK",
                                             "location": f"{rtype}/{rid}/_history/2"}})
                continue
            key = req.get("ifNoneExist", "")
            if key and key in self.keys:
                entries.append({"response": {"status": "200 OK",
                                             "location": self.keys[key] + "/_history/1"}})
                continue
            self.count += 1
            rid = f"w{self.count}"
            location = f"{rtype}/{rid}"
            if key:
                self.keys[key] = location
            created.append(("add", entry.get("fullUrl"), {**resource, "id": rid,
                                                          "meta": {**resource.get("meta", {}),
                                                                   "versionId": "1"}}))
            entries.append({"response": {"status": "201 Created",
                                         "location": location + "/_history/1",
                                         "etag": 'W/"1"'}})
        urls = {full: f"{r['resourceType']}/{r['id']}" for op, full, r in created if op == "add"}
        for op, first, resource in created:
            text = json.dumps(resource)
            for url, ref in urls.items():
                text = text.replace(url or "\0", ref)
            resource = json.loads(text)
            if op == "add":
                self.resources.append(resource)
            else:
                self.resources[self.resources.index(first)] = resource
        body = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(body)


@pytest.fixture(autouse=True)
def _fresh_discovery_cache():
    discovery.clear_cache()
    yield
    while APPS:
        APPS.pop().extensions["consent_gap.prefetch"].wait_idle()


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def launch(mocked, example, patient, jurisdiction=None, resources=None):
    resources = resources if resources is not None else example_resources(example)
    fake = ServerLike(mocked, resources, patient,
                      scope="launch openid fhirUser patient/*.cruds")
    app = create_app(config=WebConfig(
        allowed_issuers=(ISS,), secret_key="k", public_url="https://app.test",
        jurisdiction=jurisdiction, privacy_officer="Practitioner/po-1",
        organization="Organization/org-practice"))
    APPS.append(app)
    client = app.test_client()
    response = client.get(f"/launch?iss={ISS}&launch=L")
    state = re.search(r"state=([^&]+)", response.headers["Location"]).group(1)
    panel_url = client.get(f"/callback?code=c&state={state}").headers["Location"]
    html = client.get(f"{panel_url}/guide").get_data(as_text=True)
    token = re.search(r'data-csrf="([^"]+)"', html).group(1)
    return client, fake, panel_url, token


def post(client, url, body, token):
    return client.post(url, json=body, headers={"X-CSRF-Token": token,
                                                "Origin": "https://app.test"})


def without_audit_events(example: str) -> list[dict]:
    return [r for r in example_resources(example) if r["resourceType"] != "AuditEvent"]


THREAT = {"scenario": "threat-to-person", "at": "2025-09-03T22:10:00Z",
          "recipient": {"reference": "Organization/org-alden-valley-pd"},
          "data": [{"labels": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                "code": "MH"}], "description": "the risk assessment"}]}


def test_check_answers_6_2_for_the_launched_patient(mocked):
    client, _, _, token = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike", "US-CA",
                                 without_audit_events("06-duty-to-warn-ca.json"))
    response = post(client, "/api/proposals/check", THREAT, token)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert list(body) == ["finding", "steps", "can_draft_authorization"]
    assert body["finding"]["decision"] == "required"
    assert body["finding"]["basis"] == "duty-to-warn-or-protect"
    assert body["finding"]["disclosure"] is None
    assert (body["finding"]["documentation"], body["finding"]["client_notice"]) == \
        ("missing", "missing")
    assert [s["code"] for s in body["steps"]] == [
        "warn-intended-victim", "notify-law-enforcement", "inform-client", "document",
        "record-disclosure"]


@pytest.mark.parametrize(("change", "field"), [
    ({"purposes": ["WHATEVER"]}, "purposes[0]"),
    ({"recipient": {"reference": "the police"}}, "recipient.reference"),
    ({"patient": "Patient/someone-else"}, "patient"),
])
def test_check_refuses_a_bad_proposal_with_400_naming_the_field(mocked, change, field):
    client, _, _, token = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike", "US-CA")
    response = post(client, "/api/proposals/check", {**THREAT, **change}, token)
    assert response.status_code == 400
    assert response.get_json()["message"].startswith(field + ":")


def test_the_api_needs_the_csrf_token_and_a_session(mocked):
    client, fake, _, _token = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike", "US-CA")
    assert client.post("/api/proposals/check", json=THREAT).status_code == 403
    assert post(client, "/api/proposals/record", {**THREAT, "proposal_id": str(uuid.uuid4())},
                "wrong").status_code == 403
    fresh = APPS[-1].test_client()
    assert fresh.post("/api/proposals/check", json=THREAT).status_code == 403
    assert not fake.transactions


def test_record_writes_one_transaction_then_a_second_post_writes_nothing(mocked):
    client, fake, _, token = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike", "US-CA",
                                    without_audit_events("06-duty-to-warn-ca.json"))
    pid = str(uuid.uuid4())
    body = {"proposal": THREAT, "proposal_id": pid, "documentation": FIVE,
            "client_notice": {"status": "sent"}}
    first = post(client, "/api/proposals/record", body, token)
    assert first.status_code == 201, first.get_json()
    (bundle,) = fake.transactions
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Device", "AuditEvent", "Provenance", "DocumentReference", "Provenance",
                     "Communication", "Provenance"]
    assert all(e["request"]["method"] == "POST" and e["request"]["ifNoneExist"]
               for e in bundle["entry"])
    assert f"https://consent-gap.dev/fhir/proposal|{pid}-audit-event" in \
        bundle["entry"][1]["request"]["ifNoneExist"]
    refs = first.get_json()["references"]
    assert refs["audit-event"].startswith("AuditEvent/")
    again = post(client, "/api/proposals/record", body, token)
    assert again.status_code == 200
    assert again.get_json()["references"] == refs
    assert again.get_json()["written"] is False
    assert sum(1 for r in fake.resources if r["resourceType"] == "AuditEvent") == 1
    # afterwards evaluate on the chart finds documentation present and the notice sent
    findings = client.get("/api/findings").get_json()["findings"]
    (mine,) = [f for f in findings if f["disclosure"] == refs["audit-event"]]
    assert (mine["decision"], mine["documentation"], mine["client_notice"]) == \
        ("required", "present", "sent")


def test_record_refuses_missing_elements_and_writes_nothing(mocked):
    client, fake, _, token = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike", "US-CA")
    body = {"proposal": THREAT, "proposal_id": str(uuid.uuid4()),
            "documentation": {**FIVE, "evidence": "", "nature": " "},
            "client_notice": {"status": "sent"}}
    response = post(client, "/api/proposals/record", body, token)
    assert response.status_code == 400
    assert response.get_json()["message"] == "documentation: missing nature, evidence"
    assert not fake.transactions
    bad_id = post(client, "/api/proposals/record", {**body, "proposal_id": "1"}, token)
    assert bad_id.status_code == 400 and "proposal_id" in bad_id.get_json()["message"]


def test_a_subpoena_without_an_order_is_recorded_only_when_acknowledged(mocked):
    resources = without_audit_events("09-subpoena-only.json")
    client, fake, _, token = launch(mocked, "09-subpoena-only.json", "p-equillon", None,
                                    resources)
    instruments = [f"DocumentReference/{r['id']}" for r in resources
                   if r["resourceType"] == "DocumentReference"
                   and "legal-instrument" in json.dumps(r.get("type"))]
    proposal = {"scenario": "subpoena", "at": "2026-01-14T18:00:00Z",
                "recipient": {"reference": "Organization/org-brightwater-moss"},
                "instruments": instruments, "data": [{"labels": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                     "code": "MH"}]}]}
    answer = post(client, "/api/proposals/check", proposal, token).get_json()
    assert answer["finding"]["decision"] == "unauthorized"
    assert answer["finding"]["reasons"][0] == "subpoena-without-court-order"
    assert [s["code"] for s in answer["steps"]] == ["do-not-disclose", "consult-legal-counsel",
                                                    "assert-privilege"]
    body = {"proposal": proposal, "proposal_id": str(uuid.uuid4())}
    refused = post(client, "/api/proposals/record", body, token)
    assert refused.status_code == 400
    assert refused.get_json()["message"].startswith("acknowledge_unauthorized:")
    assert not fake.transactions
    done = post(client, "/api/proposals/record", {**body, "acknowledge_unauthorized": True},
                token)
    assert done.status_code == 201
    kinds = [e["resource"]["resourceType"] for e in fake.transactions[0]["entry"]]
    assert kinds.count("Communication") == 1 and kinds.count("DocumentReference") == 1
    alert = next(e["resource"] for e in fake.transactions[0]["entry"]
                 if e["resource"]["resourceType"] == "Communication")
    assert alert["priority"] == "urgent"
    assert {"reference": "Practitioner/po-1"} in alert["recipient"]


def test_client_request_draft_sign_then_check_again_authorized(mocked):
    resources = [r for r in without_audit_events("01-authorized-lawyer.json")
                 if r["resourceType"] not in ("Consent", "Provenance")]
    client, fake, _, token = launch(mocked, "01-authorized-lawyer.json", "p-jvance", None,
                                    resources)
    proposal = {"scenario": "client-request",
                "recipient": {"reference": "Organization/org-castellan-reyes"},
                "data": [{"labels": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                      "code": "MH"}]}]}
    first = post(client, "/api/proposals/check", proposal, token).get_json()
    assert first["finding"]["decision"] == "unauthorized"
    assert first["can_draft_authorization"] is True
    assert first["steps"][-1]["code"] == "obtain-authorization"
    pid = str(uuid.uuid4())
    drafted = post(client, "/api/authorizations/draft", {"proposal": proposal,
                                                         "proposal_id": pid}, token)
    assert drafted.status_code == 201, drafted.get_json()
    draft = drafted.get_json()
    consent = next(r for r in fake.resources if r["resourceType"] == "Consent")
    assert consent["status"] == "proposed" and "sourceAttachment" not in consent
    assert draft["consent"] == f"Consent/{consent['id']}" and draft["version"] == "1"
    # the form, as HTML and as PDF; still not authorized before signing
    html = client.get(draft["form"]).get_data(as_text=True)
    assert "revoke" in html and "Not signed yet" in html
    pdf = client.get(draft["pdf"])
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert post(client, "/api/proposals/check", proposal, token).get_json()[
        "finding"]["decision"] == "unauthorized"
    again = post(client, "/api/authorizations/draft", {"proposal": proposal,
                                                       "proposal_id": pid}, token)
    assert again.status_code == 200
    assert sum(1 for r in fake.resources if r["resourceType"] == "Consent") == 1
    sign_url = f"/api/authorizations/{consent['id']}/sign"
    signature = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert post(client, sign_url, {"signature": "data:image/gif;base64,R0lG"},
                token).status_code == 400
    signed = post(client, sign_url, {"signature": signature, "version": draft["version"]},
                  token)
    assert signed.status_code == 201, signed.get_json()
    tx = fake.transactions[-1]["entry"]
    # the Device the draft created is found and named, not created again (strict EHRs)
    assert [e["resource"]["resourceType"] for e in tx] == ["Provenance", "Consent"]
    assert tx[0]["resource"]["signature"][0]["sigFormat"] == "image/png"
    assert tx[0]["resource"]["target"][1] == {"reference": tx[1]["resource"]["patient"][
        "reference"]}
    assert tx[1]["request"] == {"method": "PUT", "url": f"Consent/{consent['id']}",
                                "ifMatch": 'W/"1"'}
    final = post(client, "/api/proposals/check", proposal, token).get_json()
    assert final["finding"]["decision"] == "authorized"
    assert final["finding"]["basis"] == f"Consent/{consent['id']}"
    twice = post(client, sign_url, {"signature": signature, "version": "1"}, token)
    assert twice.status_code == 200 and twice.get_json()["written"] is False


def test_the_new_disclosure_page_renders_with_scenarios_and_local_script_only(mocked):
    client, _, panel_url, _ = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike", "US-CA")
    panel = client.get(panel_url).get_data(as_text=True)
    assert f"{panel_url}/guide" in panel
    html = client.get(f"{panel_url}/guide").get_data(as_text=True)
    assert "Threat to a specific person" in html
    assert html.count("<script") == 1 and "guide.js" in html
    for key in ("nature", "informed", "client_response", "evidence", "harm_minimised"):
        assert f'data-element="{key}"' in html
    found = client.get(f"{panel_url}/guide/recipients?q=al").get_json()
    assert any(r["reference"].startswith("Organization/") for r in found["results"])


def test_the_pages_answer_uses_the_chart_it_just_read_and_the_record_reads_afresh(mocked):
    client, fake, panel_url, token = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike",
                                            "US-CA",
                                            without_audit_events("06-duty-to-warn-ca.json"))
    client.get(f"{panel_url}/guide")
    before = len(fake.fhir_calls())
    answer = post(client, f"{panel_url}/guide/answer", THREAT, token)
    assert answer.status_code == 200
    assert answer.get_json()["finding"]["decision"] == "required"
    assert answer.get_json()["details"]["state_rule"].startswith("California has a mandatory")
    assert fake.fhir_calls()[before:] == [], fake.fhir_calls()[before:]
    body = {"proposal": THREAT, "proposal_id": str(uuid.uuid4()), "documentation": FIVE,
            "client_notice": {"status": "later"}}
    assert post(client, "/api/proposals/record", body, token).status_code == 201
    assert len(fake.fhir_calls()) > before  # the record decided on the chart as it is now


def test_draft_without_proposal_id_is_idempotent_and_sign_takes_object_forms(mocked):
    resources = [r for r in without_audit_events("01-authorized-lawyer.json")
                 if r["resourceType"] not in ("Consent", "Provenance")]
    client, fake, _, token = launch(mocked, "01-authorized-lawyer.json", "p-jvance", None,
                                    resources)
    proposal = {"purposes": ["PATRQT"], "at": "2026-12-07T10:00:00Z",
                "recipient": {"reference": "Organization/org-castellan-reyes"},
                "data": [{"labels": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                      "code": "MH"}]}], "expires": "2027-03-01"}
    first = post(client, "/api/authorizations/draft", proposal, token)
    again = post(client, "/api/authorizations/draft", proposal, token)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["consent"] == again.get_json()["consent"]
    consent = next(r for r in fake.resources if r["resourceType"] == "Consent")
    assert consent["provision"]["period"]["end"] == "2027-03-01T00:00:00Z"
    signed = post(client, f"/api/authorizations/{consent['id']}/sign",
                  {"signer": {"reference": "Patient/p-jvance"},
                   "signature": {"contentType": "image/png",
                                 "data": base64.b64encode(PNG).decode()}}, token)
    assert signed.status_code == 201, signed.get_json()
    assert post(client, "/api/authorizations/nope-1/sign", {"signature": "x"},
                token).status_code == 404
