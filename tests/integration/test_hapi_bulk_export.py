"""Bulk Data $export (async pattern): kick-off with `Prefer: respond-async`, poll the status URL,
read the NDJSON files. The sandbox shortens HAPI's batch maintenance interval so a small export
finishes in seconds (on the public sandbox it takes minutes)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta


def test_system_export_of_recent_consents(fhir, run_id):
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="seconds")
    patient = {"resourceType": "Patient", "id": f"{run_id}-bx"}
    fhir.put(patient)
    consent = fhir.put({
        "resourceType": "Consent", "id": f"{run_id}-bxc", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{run_id}-bx"},
    })

    kick = fhir.get("$export", {"_type": "Consent", "_since": since},
                    headers={"Prefer": "respond-async"})
    assert kick.status_code == 202, kick.text[:500]
    status_url = kick.headers["Content-Location"]

    deadline = time.monotonic() + 180
    while True:
        poll = fhir.get(status_url)
        if poll.status_code != 202 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert poll.status_code == 200, f"export not done: HTTP {poll.status_code} {poll.text[:300]}"
    manifest = poll.json()
    assert manifest["error"] == []
    outputs = [o for o in manifest["output"] if o["type"] == "Consent"]
    assert outputs, manifest

    exported: set[str] = set()
    for output in outputs:
        r = fhir.http.get(output["url"], headers={"Accept": "application/fhir+ndjson"},
                          timeout=60)
        assert r.status_code == 200
        exported |= {json.loads(line)["id"] for line in r.text.splitlines() if line.strip()}
    assert consent["id"] in exported
