"""HAPI FHIR's write behaviour the product relies on: conditional create and update (the
write-back is idempotent through If-None-Exist), atomic transactions, client-assigned ids and
multiple deletes, as configured to match the public sandbox."""

from __future__ import annotations

import pytest

ID_SYSTEM = "https://consent-gap.dev/fhir/it"


def _communication(identifier: str, subject: str | None = None) -> dict:
    body = {
        "resourceType": "Communication", "status": "completed",
        "identifier": [{"system": ID_SYSTEM, "value": identifier}],
    }
    if subject:
        body["subject"] = {"reference": subject}
    return body


def _count(fhir, rtype: str, params: dict) -> int:
    return fhir.search(rtype, {**params, "_summary": "count"})["total"]


def test_conditional_create_returns_the_existing_resource_the_second_time(fhir, run_id):
    value = f"{run_id}-cc"
    condition = f"identifier={ID_SYSTEM}|{value}"
    first = fhir.post("Communication", _communication(value), headers={"If-None-Exist": condition})
    assert first.status_code == 201, first.text[:500]
    created = first.json()
    second = fhir.post("Communication", _communication(value),
                       headers={"If-None-Exist": condition})
    assert second.status_code == 200, second.text[:500]
    assert second.json()["id"] == created["id"]
    assert second.json()["meta"]["versionId"] == "1"
    assert _count(fhir, "Communication", {"identifier": f"{ID_SYSTEM}|{value}"}) == 1


def test_conditional_create_inside_a_transaction(fhir, run_id):
    """The write-back sends its creates as a transaction of conditional POSTs."""
    value = f"{run_id}-txcc"
    entry = {"resource": _communication(value),
             "request": {"method": "POST", "url": "Communication",
                         "ifNoneExist": f"identifier={ID_SYSTEM}|{value}"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    first = fhir.post("", bundle)
    assert first.status_code == 200, first.text[:500]
    assert first.json()["entry"][0]["response"]["status"].startswith("201")
    second = fhir.post("", bundle)
    assert second.status_code == 200, second.text[:500]
    assert second.json()["entry"][0]["response"]["status"].startswith("200")
    assert (second.json()["entry"][0]["response"]["location"].split("/_history")[0]
            == first.json()["entry"][0]["response"]["location"].split("/_history")[0])
    assert _count(fhir, "Communication", {"identifier": f"{ID_SYSTEM}|{value}"}) == 1


def test_conditional_update_creates_then_updates(fhir, run_id):
    value = f"{run_id}-cu"
    url = f"Patient?identifier={ID_SYSTEM}|{value}"
    patient = {"resourceType": "Patient", "identifier": [{"system": ID_SYSTEM, "value": value}],
               "gender": "female"}
    first = fhir.http.put(fhir.url(url), json=patient, timeout=60)
    assert first.status_code == 201, first.text[:500]
    second = fhir.http.put(fhir.url(url), json={**patient, "gender": "other"}, timeout=60)
    assert second.status_code == 200, second.text[:500]
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["meta"]["versionId"] == "2"
    assert second.json()["gender"] == "other"


def test_transaction_commits_all_entries(fhir, run_id):
    patient_id = f"{run_id}-txok"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b7f6f9e-1c55-4c1e-9a53-8d1c3c1e0001",
         "resource": {"resourceType": "Patient", "id": patient_id},
         "request": {"method": "PUT", "url": f"Patient/{patient_id}"}},
        {"resource": _communication(f"{run_id}-txok-c", f"Patient/{patient_id}"),
         "request": {"method": "POST", "url": "Communication"}},
    ]}
    r = fhir.post("", bundle)
    assert r.status_code == 200, r.text[:500]
    assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["201", "201"]
    assert fhir.get(f"Patient/{patient_id}").status_code == 200
    assert _count(fhir, "Communication", {"patient": f"Patient/{patient_id}"}) == 1


def test_transaction_with_one_bad_entry_writes_nothing(fhir, run_id):
    """Atomicity: the good entries are rolled back with the bad one."""
    good_id = f"{run_id}-txbad"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": good_id},
         "request": {"method": "PUT", "url": f"Patient/{good_id}"}},
        {"resource": _communication(f"{run_id}-txbad-c", f"Patient/{good_id}"),
         "request": {"method": "POST", "url": "Communication"}},
        # A reference to a resource that does not exist: HAPI refuses the whole bundle.
        {"resource": _communication(f"{run_id}-txbad-d", f"Patient/{run_id}-missing"),
         "request": {"method": "POST", "url": "Communication"}},
    ]}
    r = fhir.post("", bundle)
    assert 400 <= r.status_code < 500, r.text[:500]
    assert r.json()["resourceType"] == "OperationOutcome"
    assert fhir.get(f"Patient/{good_id}").status_code in (404, 410)
    assert _count(fhir, "Communication", {"identifier": f"{ID_SYSTEM}|{run_id}-txbad-c"}) == 0


def test_client_assigned_ids_must_contain_a_non_digit(fhir, run_id):
    """HAPI's ALPHANUMERIC client-id strategy, as on the public sandbox: the data generator and
    the tests must use ids with a letter in them."""
    ok = fhir.http.put(fhir.url(f"Patient/{run_id}-id"),
                       json={"resourceType": "Patient", "id": f"{run_id}-id"}, timeout=60)
    assert ok.status_code == 201
    numeric = "9" + run_id.encode().hex()[:12].translate(str.maketrans("abcdef", "123456"))
    refused = fhir.http.put(fhir.url(f"Patient/{numeric}"),
                            json={"resourceType": "Patient", "id": numeric}, timeout=60)
    assert refused.status_code == 400
    assert "HAPI-0960" in refused.text


@pytest.mark.parametrize("matches", [2])
def test_conditional_delete_of_several_matches(fhir, run_id, matches):
    value = f"{run_id}-multi"
    for _ in range(matches):
        assert fhir.post("Communication", _communication(value)).status_code == 201
    assert _count(fhir, "Communication", {"identifier": f"{ID_SYSTEM}|{value}"}) == matches
    r = fhir.http.delete(fhir.url(f"Communication?identifier={ID_SYSTEM}|{value}"), timeout=60)
    assert r.status_code == 200, r.text[:500]
    assert _count(fhir, "Communication", {"identifier": f"{ID_SYSTEM}|{value}"}) == 0
