"""SMART launcher conformance: the FHIR proxy (bearer tokens, v2 scopes, the patient compartment,
link rewriting, transactions).

In-process launcher in front of a fake FHIR server (see test_launcher_authorize.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sandbox" / "smart"))

from smart_launcher.testing import (
    OTHER_PATIENT,
    PATIENT,
    backend_token,
    bearer,
    patient_token,
    running_sandbox,
    sample_resources,
)

pytestmark = pytest.mark.integration
FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("keys"), sample_resources()) as running:
        yield running


@pytest.fixture(scope="module")
def system_token(sandbox):
    """ES384 backend client: system/Patient.rs system/Consent.rs system/Observation.rs."""
    response = backend_token(
        sandbox,
        "sandbox-backend-es384",
        "sandbox-backend-es384.pem",
        "ES384",
        scope="system/Patient.rs system/Consent.rs system/Observation.rs",
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def scan_token(sandbox):
    response = backend_token(
        sandbox,
        "consent-gap-scan",
        "consent-gap-scan.pem",
        "RS384",
        scope="system/Consent.rs system/Communication.crs system/Device.crs",
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def patient_scoped(sandbox):
    """EHR launch on PATIENT with patient/*.cruds (sandbox-public)."""
    return patient_token(sandbox, "launch patient/*.cruds")


def _outcome(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    return body["issue"][0]


def get(sandbox, path, token=None, **params):
    headers = bearer(token) if token else {}
    return requests.get(f"{sandbox.fhir_base}/{path}", headers=headers, params=params, timeout=10)


# --- bearer tokens -------------------------------------------------------------------------------


def test_call_without_a_token_is_401_with_an_operation_outcome(sandbox):
    response = get(sandbox, "Consent")
    issue = _outcome(response, 401)
    assert issue["code"] == "login"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_call_with_an_unknown_token_is_401(sandbox):
    response = get(sandbox, "Consent", token="not-a-token")
    _outcome(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_capability_statement_is_public_and_names_the_oauth_endpoints(sandbox):
    response = get(sandbox, "metadata")
    assert response.status_code == 200
    security = response.json()["rest"][0]["security"]
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris == {"authorize": sandbox.authorize_url, "token": sandbox.token_url}


# --- scopes --------------------------------------------------------------------------------------


def test_system_scope_allows_what_it_names(sandbox, system_token):
    assert get(sandbox, "Consent", system_token).status_code == 200
    assert get(sandbox, f"Patient/{OTHER_PATIENT}", system_token).status_code == 200


def test_type_outside_the_scopes_is_403(sandbox, system_token):
    issue = _outcome(get(sandbox, "Device", system_token), 403)
    assert issue["code"] == "forbidden"
    _outcome(get(sandbox, "Device/dev-app", system_token), 403)


def test_write_without_the_letter_is_403_and_never_reaches_upstream(sandbox, system_token):
    before = len(sandbox.upstream_store())
    consent = {"resourceType": "Consent", "status": "active", "patient": {"reference": "Patient/x"}}
    response = requests.post(
        f"{sandbox.fhir_base}/Consent",
        json=consent,
        headers={**bearer(system_token), **FHIR_JSON},
        timeout=10,
    )
    _outcome(response, 403)
    assert len(sandbox.upstream_store()) == before


def test_v1_read_scope_allows_reads_not_writes(sandbox):
    token = patient_token(sandbox, "launch patient/Consent.read")
    assert get(sandbox, "Consent", token, patient=PATIENT).status_code == 200
    response = requests.post(
        f"{sandbox.fhir_base}/Consent",
        json={"resourceType": "Consent", "patient": {"reference": f"Patient/{PATIENT}"}},
        headers={**bearer(token), **FHIR_JSON},
        timeout=10,
    )
    _outcome(response, 403)


def test_search_narrowed_scope_only_allows_searches_carrying_its_parameter(sandbox):
    token = patient_token(sandbox, "launch patient/Consent.rs?status=active")
    assert get(sandbox, "Consent", token, patient=PATIENT, status="active").status_code == 200
    _outcome(get(sandbox, "Consent", token, patient=PATIENT), 403)
    _outcome(get(sandbox, "Consent/c-a1", token), 403)


def test_pages_are_checked_by_the_types_they_hold(sandbox, system_token):
    wide = backend_token(
        sandbox, "sandbox-backend-jku", "sandbox-backend-jku.pem", "RS384", scope="system/*.rs"
    ).json()
    bundle = get(sandbox, "Encounter", wide).json()
    self_link = {link["relation"]: link["url"] for link in bundle["link"]}["self"]
    assert "_getpages=" in self_link
    assert requests.get(self_link, headers=bearer(wide), timeout=10).status_code == 200
    # the same page with a token that may not read Encounter: refused, whatever the URL says
    issue = _outcome(requests.get(self_link, headers=bearer(system_token), timeout=10), 403)
    assert "Encounter" in issue["diagnostics"]


# --- the patient compartment ------------------------------------------------------------------


def test_patient_scope_reads_only_the_launch_patient(sandbox, patient_scoped):
    assert get(sandbox, f"Patient/{PATIENT}", patient_scoped).status_code == 200
    _outcome(get(sandbox, f"Patient/{OTHER_PATIENT}", patient_scoped), 403)


def test_patient_scope_search_must_name_the_launch_patient(sandbox, patient_scoped):
    assert get(sandbox, "Consent", patient_scoped, patient=PATIENT).status_code == 200
    assert get(sandbox, "Consent", patient_scoped, patient=f"Patient/{PATIENT}").status_code == 200
    _outcome(get(sandbox, "Consent", patient_scoped), 403)
    _outcome(get(sandbox, "Consent", patient_scoped, patient=OTHER_PATIENT), 403)
    _outcome(get(sandbox, "Consent", patient_scoped, patient=f"{PATIENT},{OTHER_PATIENT}"), 403)
    _outcome(get(sandbox, "Consent", patient_scoped, **{"patient.name": "Birch"}), 403)
    assert get(sandbox, "Observation", patient_scoped, subject=f"Patient/{PATIENT}").ok


def test_patient_scope_post_search_is_checked_like_get(sandbox, patient_scoped):
    response = requests.post(
        f"{sandbox.fhir_base}/Consent/_search",
        data={"patient": OTHER_PATIENT},
        headers=bearer(patient_scoped),
        timeout=10,
    )
    _outcome(response, 403)


def test_patient_scope_read_of_another_patients_resource_is_403(sandbox, patient_scoped):
    assert get(sandbox, "Consent/c-a1", patient_scoped).status_code == 200
    _outcome(get(sandbox, "Consent/c-b1", patient_scoped), 403)
    assert get(sandbox, "Device/dev-app", patient_scoped).status_code == 200  # names no patient


def test_patient_scope_results_outside_the_compartment_are_refused(sandbox, patient_scoped):
    # Provenance may be searched without patient= (by target); what comes back is checked
    issue = _outcome(get(sandbox, "Provenance", patient_scoped), 403)
    assert "compartment" in issue["diagnostics"]


def test_included_resources_the_token_may_not_see_are_left_out(sandbox):
    narrow = patient_token(sandbox, "launch patient/Consent.rs")
    params = {"patient": PATIENT, "_revinclude": "Provenance:target"}
    page = get(sandbox, "Consent", narrow, **params)
    assert page.status_code == 200
    modes = {e["search"]["mode"] for e in page.json()["entry"]}
    assert modes == {"match"}
    wider = patient_token(sandbox, "launch patient/Consent.rs patient/Provenance.rs")
    included = [
        e["resource"]["id"]
        for e in get(sandbox, "Consent", wider, **params).json()["entry"]
        if e["search"]["mode"] == "include"
    ]
    assert included == ["prov-a"]


def test_patient_scope_write_for_another_patient_is_403(sandbox, patient_scoped):
    other = {"resourceType": "Consent", "patient": {"reference": f"Patient/{OTHER_PATIENT}"}}
    response = requests.post(
        f"{sandbox.fhir_base}/Consent",
        json=other,
        headers={**bearer(patient_scoped), **FHIR_JSON},
        timeout=10,
    )
    _outcome(response, 403)
    mine = {"resourceType": "Consent", "patient": {"reference": f"Patient/{PATIENT}"}}
    created = requests.post(
        f"{sandbox.fhir_base}/Consent",
        json=mine,
        headers={**bearer(patient_scoped), **FHIR_JSON},
        timeout=10,
    )
    assert created.status_code == 201
    assert created.headers["Location"].startswith(f"{sandbox.fhir_base}/Consent/")


def test_patient_scope_update_of_another_patients_resource_is_403(sandbox, patient_scoped):
    takeover = {
        "resourceType": "Consent",
        "id": "c-b1",
        "patient": {"reference": f"Patient/{PATIENT}"},
    }
    response = requests.put(
        f"{sandbox.fhir_base}/Consent/c-b1",
        json=takeover,
        headers={**bearer(patient_scoped), **FHIR_JSON},
        timeout=10,
    )
    _outcome(response, 403)
    stored = sandbox.upstream_store()[("Consent", "c-b1")]
    assert stored["patient"]["reference"] == f"Patient/{OTHER_PATIENT}"
    delete = requests.delete(
        f"{sandbox.fhir_base}/Consent/c-b1", headers=bearer(patient_scoped), timeout=10
    )
    _outcome(delete, 403)


def test_transaction_is_checked_entry_by_entry(sandbox, patient_scoped):
    def bundle(*patients):
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": f"urn:uuid:00000000-0000-0000-0000-00000000000{i}",
                    "resource": {
                        "resourceType": "Communication",
                        "subject": {"reference": f"Patient/{p}"},
                    },
                    "request": {"method": "POST", "url": "Communication"},
                }
                for i, p in enumerate(patients)
            ],
        }

    before = dict(sandbox.upstream_store())
    refused = requests.post(
        sandbox.fhir_base,
        json=bundle(PATIENT, OTHER_PATIENT),
        headers={**bearer(patient_scoped), **FHIR_JSON},
        timeout=10,
    )
    issue = _outcome(refused, 403)
    assert "entry 1" in issue["diagnostics"]
    assert sandbox.upstream_store() == before
    accepted = requests.post(
        sandbox.fhir_base,
        json=bundle(PATIENT, PATIENT),
        headers={**bearer(patient_scoped), **FHIR_JSON},
        timeout=10,
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["type"] == "transaction-response"


def test_transaction_entry_outside_the_scopes_is_refused(sandbox, scan_token):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Communication", "status": "completed"},
                "request": {"method": "POST", "url": "Communication"},
            },
            {
                "resource": {"resourceType": "Consent", "status": "active"},
                "request": {"method": "POST", "url": "Consent"},
            },
        ],
    }
    response = requests.post(
        sandbox.fhir_base, json=bundle, headers={**bearer(scan_token), **FHIR_JSON}, timeout=10
    )
    issue = _outcome(response, 403)
    assert "entry 1" in issue["diagnostics"]


# --- rewriting and forwarding --------------------------------------------------------------------


def test_search_links_and_full_urls_point_at_the_proxy_and_paging_works(sandbox, system_token):
    first = get(sandbox, "Consent", system_token)
    assert first.status_code == 200
    assert sandbox.upstream_base not in first.text
    bundle = first.json()
    assert all(e["fullUrl"].startswith(f"{sandbox.fhir_base}/Consent/") for e in bundle["entry"])
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert links["next"].startswith(f"{sandbox.fhir_base}?_getpages=")
    seen = [e["resource"]["id"] for e in bundle["entry"]]
    url = links.get("next")
    while url:
        page = requests.get(url, headers=bearer(system_token), timeout=10)
        assert page.status_code == 200, page.text
        assert sandbox.upstream_base not in page.text
        seen += [e["resource"]["id"] for e in page.json().get("entry", [])]
        url = {link["relation"]: link["url"] for link in page.json()["link"]}.get("next")
    assert sorted(seen) == sorted(
        rid for (rtype, rid) in sandbox.upstream_store() if rtype == "Consent"
    )


def test_paging_under_a_patient_scope_stays_in_the_compartment(sandbox, patient_scoped):
    first = get(sandbox, "Consent", patient_scoped, patient=PATIENT).json()
    nxt = {link["relation"]: link["url"] for link in first["link"]}["next"]
    page = requests.get(nxt, headers=bearer(patient_scoped), timeout=10)
    assert page.status_code == 200
    refs = {e["resource"]["patient"]["reference"] for e in page.json()["entry"]}
    assert refs == {f"Patient/{PATIENT}"}


def test_location_header_is_rewritten_on_create(sandbox, scan_token):
    response = requests.post(
        f"{sandbox.fhir_base}/Communication",
        data=json.dumps({"resourceType": "Communication", "status": "completed"}),
        headers={**bearer(scan_token), **FHIR_JSON},
        timeout=10,
    )
    assert response.status_code == 201
    assert response.headers["Location"].startswith(f"{sandbox.fhir_base}/Communication/")


def test_non_json_bodies_are_streamed_through(sandbox):
    token = backend_token(
        sandbox, "sandbox-backend-jku", "sandbox-backend-jku.pem", "RS384", scope="system/*.rs"
    ).json()
    response = requests.get(
        f"{sandbox.fhir_base}/Binary/bin-1",
        headers={**bearer(token), "Accept": "text/plain"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.content == b"line\n" * 40_000


def test_xml_is_not_served(sandbox, system_token):
    _outcome(get(sandbox, "Consent", system_token, _format="xml"), 406)


# --- writes stay in the patient compartment (a strict EHR) -------------------------------------


def _post(sandbox, token, body, path=""):
    url = f"{sandbox.fhir_base}/{path}" if path else sandbox.fhir_base
    return requests.post(url, json=body, headers={**bearer(token), **FHIR_JSON}, timeout=10)


def test_patient_scope_cannot_create_what_is_in_no_patients_compartment(sandbox, patient_scoped):
    before = dict(sandbox.upstream_store())
    device = {"resourceType": "Device", "status": "active"}
    issue = _outcome(_post(sandbox, patient_scoped, device, "Device"), 403)
    assert "not in the patient compartment" in issue["diagnostics"]
    organization = {"resourceType": "Organization", "name": "Elsewhere"}
    _outcome(_post(sandbox, patient_scoped, organization, "Organization"), 403)
    assert sandbox.upstream_store() == before
    system = backend_token(sandbox, "consent-gap-scan", "consent-gap-scan.pem", "RS384",
                           scope="system/Device.crs").json()
    assert _post(sandbox, system, device, "Device").status_code == 201  # the backend may


def test_patient_scope_writes_only_what_its_compartment_element_places_there(
        sandbox, patient_scoped):
    # a Communication naming no patient at all is in no compartment
    loose = {"resourceType": "Communication", "status": "completed"}
    issue = _outcome(_post(sandbox, patient_scoped, loose, "Communication"), 403)
    assert "subject, sender, recipient" in issue["diagnostics"]
    # a Provenance about a note only is outside; targeting the patient too puts it inside
    about_note = {"resourceType": "Provenance", "recorded": "2025-01-01T00:00:00Z",
                  "target": [{"reference": "Communication/x"}],
                  "agent": [{"who": {"reference": "Device/dev-app"}}]}
    _outcome(_post(sandbox, patient_scoped, about_note, "Provenance"), 403)
    placed = {**about_note, "target": [{"reference": "Communication/x"},
                                       {"reference": f"Patient/{PATIENT}"}]}
    assert _post(sandbox, patient_scoped, placed, "Provenance").status_code == 201
    # a Task is placed by `for`
    task = {"resourceType": "Task", "status": "requested", "intent": "order"}
    _outcome(_post(sandbox, patient_scoped, task, "Task"), 403)
    mine = {**task, "for": {"reference": f"Patient/{PATIENT}"}}
    assert _post(sandbox, patient_scoped, mine, "Task").status_code == 201


def test_a_transaction_with_one_entry_outside_the_compartment_writes_nothing(
        sandbox, patient_scoped):
    note = {"resourceType": "Communication", "subject": {"reference": f"Patient/{PATIENT}"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:00000000-0000-0000-0000-0000000000a1",
         "resource": {"resourceType": "Device", "status": "active"},
         "request": {"method": "POST", "url": "Device", "ifNoneExist": "identifier=s|v"}},
        {"resource": note, "request": {"method": "POST", "url": "Communication"}},
    ]}
    before = dict(sandbox.upstream_store())
    issue = _outcome(_post(sandbox, patient_scoped, bundle), 403)
    assert "entry 0" in issue["diagnostics"] and "Device" in issue["diagnostics"]
    assert sandbox.upstream_store() == before
    bundle["entry"] = bundle["entry"][1:]
    assert _post(sandbox, patient_scoped, bundle).status_code == 200
