"""FhirClient against a mocked FHIR server: paging, retries, errors, creates, transactions."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from consent_gap.fhir import (
    BearerAuth,
    FhirClient,
    FhirHttpError,
    FhirPagingError,
    FhirTransactionError,
    FhirTransportError,
)
from fhirfakes import BASE, bundle, outcome
from responses import matchers

CONSENTS = [{"resourceType": "Consent", "id": f"c{i}"} for i in range(6)]


def page_url(offset: int) -> str:
    return f"{BASE}?_getpages=abc&_getpagesoffset={offset}&_count=2"


def test_search_follows_next_links_through_three_pages(mocked, client):
    mocked.get(f"{BASE}/Consent", json=bundle(CONSENTS[:2], page_url(2)),
               match=[matchers.query_param_matcher({"patient": "p1,p2", "_count": "2"})])
    mocked.get(BASE, json=bundle(CONSENTS[2:4], page_url(4)),
               match=[matchers.query_param_matcher(
                   {"_getpages": "abc", "_getpagesoffset": "2", "_count": "2"})])
    mocked.get(BASE, json=bundle(CONSENTS[4:]),
               match=[matchers.query_param_matcher(
                   {"_getpages": "abc", "_getpagesoffset": "4", "_count": "2"})])

    ids = [r["id"] for r in client.search("Consent", {"patient": "p1,p2"}, page_size=2)]

    assert ids == ["c0", "c1", "c2", "c3", "c4", "c5"]
    assert client.request_count == 3
    assert all(c.request.headers["Cache-Control"] == "no-cache" for c in mocked.calls)


def test_search_pages_yields_bundles_and_repeated_list_params(mocked, client):
    mocked.get(f"{BASE}/AuditEvent", json=bundle(CONSENTS[:1]))
    pages = list(client.search_pages(
        "AuditEvent", [("_include", "AuditEvent:entity"), ("_include", "AuditEvent:agent")]))
    assert len(pages) == 1 and pages[0]["type"] == "searchset"
    sent = parse_qsl(mocked.calls[0].request.url.split("?", 1)[1])
    assert sent == [("_include", "AuditEvent:entity"), ("_include", "AuditEvent:agent")]


def test_page_fetches_one_paging_link_and_reads_its_bundle(mocked, client):
    """The worklist's "Next page": one paging link of this server, fetched once."""
    mocked.get(BASE, json=bundle(CONSENTS[2:4], page_url(4)),
               match=[matchers.query_param_matcher(
                   {"_getpages": "abc", "_getpagesoffset": "2", "_count": "2"})])
    page = client.page(page_url(2))
    assert [e["resource"]["id"] for e in page["entry"]] == ["c2", "c3"]
    assert client.next_link(page) == page_url(4)
    assert mocked.calls[0].request.headers["Cache-Control"] == "no-cache"


def test_page_that_expired_raises_the_servers_error(mocked, client):
    mocked.get(BASE, status=410, json=outcome("Search expired"))
    with pytest.raises(FhirHttpError) as raised:
        client.page(page_url(2))
    assert raised.value.status == 410


def test_page_that_is_not_a_bundle_is_refused(mocked, client):
    mocked.get(BASE, json={"resourceType": "Patient", "id": "x"})
    with pytest.raises(FhirPagingError, match="not a Bundle"):
        client.page(page_url(2))


def test_next_link_to_another_host_is_refused(mocked, client):
    mocked.get(f"{BASE}/Consent",
               json=bundle(CONSENTS[:2], "http://elsewhere.example/fhir?_getpages=abc"))
    results = client.search("Consent", {"patient": "p1"})
    assert next(results)["id"] == "c0"
    with pytest.raises(FhirPagingError, match=r"elsewhere\.example"):
        list(results)
    assert len(mocked.calls) == 1


def test_next_link_downgrading_to_http_or_leaving_the_base_path_is_refused(mocked):
    client = FhirClient("https://fhir.test/fhir", sleep=lambda s: None)
    mocked.get("https://fhir.test/fhir/Consent",
               json=bundle([], "http://fhir.test/fhir?_getpages=abc"))
    with pytest.raises(FhirPagingError):
        list(client.search("Consent"))
    mocked.replace(responses.GET, "https://fhir.test/fhir/Consent",
                   json=bundle([], "https://fhir.test/admin?_getpages=abc"))
    with pytest.raises(FhirPagingError, match="base path"):
        list(client.search("Consent"))


def test_a_paging_loop_is_detected(mocked, client):
    mocked.get(f"{BASE}/Consent", json=bundle(CONSENTS[:1], page_url(2)))
    mocked.get(BASE, json=bundle(CONSENTS[1:2], page_url(2)))
    with pytest.raises(FhirPagingError, match="loop"):
        list(client.search("Consent"))


def test_long_search_goes_by_post_with_a_form_body(mocked, client):
    ids = ",".join(f"patient-{i:05d}" for i in range(300))
    mocked.post(f"{BASE}/Consent/_search", json=bundle(CONSENTS[:1]))
    found = list(client.search("Consent", {"patient": ids, "_revinclude": "Provenance:target"}))
    assert [r["id"] for r in found] == ["c0"]
    req = mocked.calls[0].request
    assert req.method == "POST"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = dict(parse_qsl(req.body))
    assert form["patient"] == ids and form["_revinclude"] == "Provenance:target"
    assert "?" not in req.url  # nothing of the query leaks into the URL


def test_short_search_stays_a_get(mocked, client):
    mocked.get(f"{BASE}/Consent", json=bundle([]))
    list(client.search("Consent", {"patient": "p1"}))
    assert mocked.calls[0].request.method == "GET"


def test_429_with_retry_after_seconds_is_honoured(mocked, client, sleeps):
    mocked.get(f"{BASE}/Patient/p1", status=429, headers={"Retry-After": "7"},
               json=outcome("slow down", code="throttled"))
    mocked.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert client.read("Patient", "p1")["id"] == "p1"
    assert sleeps.waits == [7.0]
    assert client.request_count == 2 and client.retry_count == 1


def test_429_with_retry_after_http_date_is_honoured(mocked, client, sleeps):
    when = datetime.now(UTC) + timedelta(seconds=20)
    mocked.get(f"{BASE}/Patient/p1", status=429,
               headers={"Retry-After": format_datetime(when, usegmt=True)})
    mocked.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client.read("Patient", "p1")
    assert len(sleeps.waits) == 1 and 17 <= sleeps.waits[0] <= 20


def test_retry_after_beyond_the_budget_gives_up_without_waiting(mocked, client, sleeps):
    mocked.get(f"{BASE}/Patient/p1", status=429, headers={"Retry-After": "3600"},
               json=outcome("come back in an hour", code="throttled"))
    with pytest.raises(FhirHttpError) as err:
        client.read("Patient", "p1")
    assert err.value.status == 429 and sleeps.waits == []
    assert "come back in an hour" in str(err.value)


def test_503_then_success_backs_off_exponentially(mocked, client, sleeps):
    for _ in range(2):
        mocked.get(f"{BASE}/metadata", status=503, body="<html>down</html>")
    mocked.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    assert client.capabilities()["resourceType"] == "CapabilityStatement"
    assert sleeps.waits == [0.5, 1.0]


def test_persistent_503_ends_in_a_readable_error_after_max_attempts(mocked, client, sleeps):
    mocked.get(f"{BASE}/Patient/p1", status=503, body="<html>secret page</html>")
    with pytest.raises(FhirHttpError) as err:
        client.read("Patient", "p1")
    assert client.request_count == 4 and len(sleeps.waits) == 3
    assert str(err.value) == "HTTP 503 on GET Patient/p1: no OperationOutcome in the response"


@pytest.mark.parametrize("exc", [requests.ConnectTimeout, requests.ReadTimeout])
def test_timeouts_are_retried_then_reported_clearly(mocked, client, sleeps, exc):
    mocked.get(f"{BASE}/Consent", body=exc("boom"))
    with pytest.raises(FhirTransportError) as err:
        list(client.search("Consent", {"patient": "Jane Doe"}))
    assert client.request_count == 4
    kind = "connect timeout" if exc is requests.ConnectTimeout else "read timeout"
    assert str(err.value) == f"FHIR server {BASE}: GET Consent: {kind} after 4 attempt(s)"
    assert "Jane" not in str(err.value)


def test_a_timeout_then_success(mocked, client, sleeps):
    mocked.get(f"{BASE}/Patient/p1", body=requests.ReadTimeout("slow"))
    mocked.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert client.read("Patient", "p1")["id"] == "p1"
    assert sleeps.waits == [0.5]


def test_plain_create_is_not_replayed_after_a_read_timeout(mocked, client, sleeps):
    mocked.post(f"{BASE}/Communication", body=requests.ReadTimeout("lost"))
    with pytest.raises(FhirTransportError, match="may have reached the server"):
        client.create({"resourceType": "Communication", "status": "completed"})
    assert client.request_count == 1 and sleeps.waits == []


def test_plain_create_is_replayed_after_a_429(mocked, client, sleeps):
    mocked.post(f"{BASE}/Communication", status=429, headers={"Retry-After": "1"})
    mocked.post(f"{BASE}/Communication", status=201,
                json={"resourceType": "Communication", "id": "9"})
    assert client.create({"resourceType": "Communication"})["id"] == "9"
    assert sleeps.waits == [1.0]


def test_operation_outcome_becomes_a_readable_error(mocked, client, caplog):
    mocked.get(f"{BASE}/AuditEvent", status=400, json={
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "processing",
             "diagnostics": "HAPI-0524: Unknown search parameter \"subtyp\" for AuditEvent"},
            {"severity": "warning", "code": "informational",
             "details": {"text": "consider _lastUpdated"}},
        ]})
    caplog.set_level(logging.DEBUG, logger="consent_gap.fhir")
    with pytest.raises(FhirHttpError) as err:
        list(client.search("AuditEvent", {"subtyp": "x", "patient": "Jane Doe"}))
    e = err.value
    assert e.status == 400 and e.outcome["resourceType"] == "OperationOutcome"
    assert str(e) == ('HTTP 400 on GET AuditEvent: error (processing): HAPI-0524: Unknown search '
                      'parameter "subtyp" for AuditEvent; warning (informational): consider '
                      '_lastUpdated')
    assert "GET AuditEvent -> 400" in caplog.text
    assert "Jane" not in caplog.text


def test_log_lines_never_hold_query_values_or_tokens(mocked, caplog):
    client = FhirClient(BASE, auth=BearerAuth("tok-SECRET"), sleep=lambda s: None)
    mocked.get(f"{BASE}/Patient", json=bundle([]))
    caplog.set_level(logging.DEBUG)
    list(client.search("Patient", {"name": "Jane Doe"}))
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer tok-SECRET"
    assert "GET Patient -> 200" in caplog.text
    assert "Jane" not in caplog.text and "SECRET" not in caplog.text


def test_open_server_gets_no_authorization_header(mocked, client):
    mocked.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client.read("Patient", "p1")
    assert "Authorization" not in mocked.calls[0].request.headers


def test_conditional_create_201_then_200(mocked, client):
    doc = {"resourceType": "DocumentReference", "status": "current"}
    mocked.post(f"{BASE}/DocumentReference", status=201, json={**doc, "id": "d1"},
                headers={"Location": f"{BASE}/DocumentReference/d1/_history/1"})
    mocked.post(f"{BASE}/DocumentReference", status=200, json={**doc, "id": "d1"})

    first = client.conditional_create(doc, "identifier=https://consent-gap.dev/fhir/finding|abc")
    second = client.conditional_create(
        doc, {"identifier": "https://consent-gap.dev/fhir/finding|abc"})

    assert (first.created, first.resource["id"]) == (True, "d1")
    assert (second.created, second.resource["id"]) == (False, "d1")
    sent = [c.request.headers["If-None-Exist"] for c in mocked.calls]
    assert sent[0] == "identifier=https://consent-gap.dev/fhir/finding|abc"
    assert dict(parse_qsl(sent[1])) == {"identifier": "https://consent-gap.dev/fhir/finding|abc"}
    assert json.loads(mocked.calls[0].request.body) == doc
    assert mocked.calls[0].request.headers["Content-Type"] == "application/fhir+json"


def test_conditional_create_without_body_reads_the_location(mocked, client):
    mocked.post(f"{BASE}/Device", status=200, body="",
                headers={"Location": f"{BASE}/Device/dev1/_history/3"})
    mocked.get(f"{BASE}/Device/dev1", json={"resourceType": "Device", "id": "dev1"})
    result = client.conditional_create({"resourceType": "Device"}, "identifier=x|y")
    assert result == type(result)({"resourceType": "Device", "id": "dev1"}, False,
                                  f"{BASE}/Device/dev1/_history/3")


def test_conditional_create_is_replayed_after_a_lost_response(mocked, client):
    mocked.post(f"{BASE}/Communication", body=requests.ReadTimeout("lost"))
    mocked.post(f"{BASE}/Communication", status=200,
                json={"resourceType": "Communication", "id": "c9"})
    result = client.conditional_create({"resourceType": "Communication"}, "identifier=a|b")
    assert result.created is False and result.resource["id"] == "c9"


def test_conditional_create_with_several_matches_raises(mocked, client):
    mocked.post(f"{BASE}/Communication", status=412,
                json=outcome("Failed to CREATE resource with match URL because this search "
                             "matched 2 resources"))
    with pytest.raises(FhirHttpError, match="matched 2 resources") as err:
        client.conditional_create({"resourceType": "Communication"}, "identifier=a|b")
    assert err.value.status == 412


def _transaction(*entries):
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


COND_ENTRY = {"resource": {"resourceType": "Communication"},
              "request": {"method": "POST", "url": "Communication",
                          "ifNoneExist": "identifier=a|b"}}


def test_transaction_returns_the_response_bundle(mocked, client):
    answer = {"resourceType": "Bundle", "type": "transaction-response",
              "entry": [{"response": {"status": "201 Created",
                                      "location": "Communication/1/_history/1"}}]}
    mocked.post(BASE, json=answer)
    assert client.transaction(_transaction(COND_ENTRY)) == answer


def test_rejected_transaction_names_the_entry(mocked, client):
    mocked.post(BASE, status=400, json=outcome(
        "HAPI-0541: Invalid reference found at path 'Communication.about'. Resource type "
        "'AuditEvent' with ID 'gone' does not exist (Bundle entry 1)"))
    with pytest.raises(FhirTransactionError) as err:
        client.transaction(_transaction(COND_ENTRY, COND_ENTRY))
    assert err.value.status == 400
    assert "Bundle entry 1" in str(err.value) and "POST (transaction)" in str(err.value)


def test_entry_level_errors_in_a_200_response_are_raised(mocked, client):
    mocked.post(BASE, json={"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"response": {"status": "201 Created"}},
        {"response": {"status": "422 Unprocessable Entity",
                      "outcome": outcome("Communication.status: minimum required = 1")}},
    ]})
    with pytest.raises(FhirTransactionError) as err:
        client.transaction(_transaction(COND_ENTRY, COND_ENTRY))
    assert err.value.status == 422
    assert err.value.issues == ["entry 1 (POST Communication): 422 Unprocessable Entity: "
                                "error (processing): Communication.status: minimum required = 1"]


def test_transaction_with_a_plain_post_is_not_replayed(mocked, client):
    plain = {"resource": {"resourceType": "Communication"},
             "request": {"method": "POST", "url": "Communication"}}
    mocked.post(BASE, status=502)
    with pytest.raises(FhirTransactionError):
        client.transaction(_transaction(COND_ENTRY, plain))
    assert client.request_count == 1


def test_conditional_transaction_is_replayed_after_a_502(mocked, client):
    mocked.post(BASE, status=502)
    mocked.post(BASE, json={"resourceType": "Bundle", "type": "transaction-response",
                            "entry": [{"response": {"status": "200 OK"}}]})
    client.transaction(_transaction(COND_ENTRY))
    assert client.request_count == 2


def test_batch_returns_entry_errors_without_raising(mocked, client):
    mocked.post(BASE, json={"resourceType": "Bundle", "type": "batch-response", "entry": [
        {"response": {"status": "400 Bad Request", "outcome": outcome("bad")}}]})
    out = client.batch({"resourceType": "Bundle", "type": "batch", "entry": [COND_ENTRY]})
    assert out["entry"][0]["response"]["status"].startswith("400")


CAPS = {
    "resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
    "rest": [{"mode": "server", "searchParam": [{"name": "_lastUpdated"}], "resource": [
        {"type": "Consent", "interaction": [{"code": "read"}, {"code": "search-type"}],
         "searchParam": [{"name": "patient"}], "searchRevInclude": ["Provenance:target"]},
        {"type": "AuditEvent", "interaction": [{"code": "read"}],
         "searchParam": [{"name": "patient"}, {"name": "date"}],
         "searchInclude": ["AuditEvent:entity"]},
    ]}],
}


def test_capability_check_names_what_is_missing(mocked, client):
    mocked.get(f"{BASE}/metadata", json=CAPS)
    missing = client.check_capabilities({
        "Consent": ["search-type", "read"],
        "AuditEvent": {"search": ["patient", "subtype", "date", "_lastUpdated"],
                       "include": ["AuditEvent:entity"],
                       "revinclude": ["DocumentReference:related"]},
        "Communication": ["create"],
    })
    assert missing == [
        "AuditEvent: interaction 'search-type' not supported",
        "AuditEvent: search parameter 'subtype' not supported",
        "AuditEvent: _revinclude 'DocumentReference:related' not supported",
        "Communication: resource type not supported",
    ]
    assert client.check_capabilities({"Consent": {"search": ["patient", "_count"],
                                                  "revinclude": ["Provenance:target"]}}) == []
    assert len(mocked.calls) == 1  # the statement is fetched once


def test_bad_type_or_id_never_reaches_the_network(mocked, client):
    with pytest.raises(ValueError):
        client.read("Patient", "../metadata")
    with pytest.raises(ValueError):
        client.read("patient", "p1")
    assert len(mocked.calls) == 0


# -- answers cut short or garbled (issue 12): retried as a 5xx when the request is replay-safe

CUT = requests.exceptions.ChunkedEncodingError(
    "('Connection broken: IncompleteRead(120 bytes read, 880 more expected)')")
GARBLED = '{"resourceType": "Bundle", "type": "searchset", "entr'


def test_a_search_page_cut_short_is_retried_then_read(mocked, client, sleeps):
    mocked.get(f"{BASE}/Consent", body=CUT)
    mocked.get(f"{BASE}/Consent", json=bundle(CONSENTS[:1]))
    assert [r["id"] for r in client.search("Consent")] == ["c0"]
    assert client.request_count == 2 and sleeps.waits == [0.5]


@pytest.mark.parametrize("body", [GARBLED, "<html>proxy error</html>", ""])
def test_a_success_whose_body_is_not_json_is_retried(mocked, client, sleeps, body):
    mocked.get(f"{BASE}/Patient/p1", body=body, status=200,
               content_type="application/fhir+json")
    mocked.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert client.read("Patient", "p1")["id"] == "p1"
    assert client.request_count == 2


def test_garbled_bodies_use_the_same_budget_then_fail_naming_the_server(mocked, client, sleeps):
    mocked.get(f"{BASE}/metadata", body=GARBLED, content_type="application/fhir+json")
    with pytest.raises(FhirTransportError) as err:
        client.capabilities()
    assert client.request_count == 4 and len(sleeps.waits) == 3
    assert str(err.value) == (f"FHIR server {BASE}: GET metadata: HTTP 200 with a body that is "
                              "not JSON after 4 attempt(s)")


def test_cut_short_mixed_with_5xx_shares_one_budget(mocked, client, sleeps):
    mocked.get(f"{BASE}/metadata", status=503)
    mocked.get(f"{BASE}/metadata", body=CUT)
    mocked.get(f"{BASE}/metadata", status=500)
    mocked.get(f"{BASE}/metadata", body=CUT)
    with pytest.raises(FhirTransportError, match="response cut short after 4 attempt"):
        client.capabilities()
    assert client.request_count == 4


def test_conditional_transaction_cut_short_after_commit_is_replayed(mocked, client):
    answer = {"resourceType": "Bundle", "type": "transaction-response",
              "entry": [{"response": {"status": "200 OK", "location": "Communication/1"}}]}
    mocked.post(BASE, body=CUT)
    mocked.post(BASE, body=GARBLED, content_type="application/fhir+json")
    mocked.post(BASE, json=answer)
    assert client.transaction(_transaction(COND_ENTRY)) == answer
    assert client.request_count == 3


def test_plain_create_cut_short_is_not_replayed(mocked, client, sleeps):
    mocked.post(f"{BASE}/Communication", body=CUT)
    with pytest.raises(FhirTransportError, match="may have reached the server"):
        client.create({"resourceType": "Communication", "status": "completed"})
    assert client.request_count == 1 and sleeps.waits == []


def test_plain_create_answered_with_garbage_is_not_replayed(mocked, client, sleeps):
    mocked.post(f"{BASE}/Communication", status=201, body=GARBLED,
                content_type="application/fhir+json")
    with pytest.raises(FhirTransportError, match="server may have acted on it"):
        client.create({"resourceType": "Communication", "status": "completed"})
    assert client.request_count == 1


def test_an_error_page_that_is_not_json_is_an_http_error_not_retried(mocked, client):
    mocked.get(f"{BASE}/Patient/p1", status=404, body="<html>not here</html>",
               content_type="text/html")
    with pytest.raises(FhirHttpError) as err:
        client.read("Patient", "p1")
    assert err.value.status == 404 and client.request_count == 1


def test_a_bad_url_is_a_transport_error_naming_the_server(mocked, client):
    mocked.get(f"{BASE}/metadata", body=requests.exceptions.TooManyRedirects("loop"))
    with pytest.raises(FhirTransportError, match=f"^FHIR server {BASE}: GET metadata"):
        client.capabilities()
    assert client.request_count == 1
