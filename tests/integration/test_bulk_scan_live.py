"""`scan --bulk` against the sandbox's HAPI (Bulk Data `$export` of a Group holding only this
test's patients, so other tests' data never enters): it writes exactly what `evaluate` finds,
the same resources as the paging scan on the same data (a paging run after a bulk run writes
nothing), an incremental run after a change writes only what changed, and a killed bulk scan
resumes without writing twice; the same with the decide step on Dask (`--workers 2`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import requests
from consent_gap.checkpoint import CheckpointStore
from consent_gap.evaluate import evaluate
from consent_gap.scan import run_scan
from consent_gap.writeback import WriteContext, plan
from support import fhir as build
from test_scan_live import JURISDICTION, Charts, _by_about, _ours, _renamed, assert_exactly

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def load(base: str) -> tuple[Charts, str]:
    """The example charts under a fresh suffix, and a Group of their patients."""
    charts = Charts(base, "bk" + uuid.uuid4().hex[:8])
    group = f"g-{charts.suffix}"
    response = requests.put(f"{base}/Group/{group}", headers=FHIR_JSON, timeout=60, json={
        "resourceType": "Group", "id": group, "type": "person", "actual": True,
        "member": [{"entity": {"reference": f"Patient/{p}"}} for p in charts.patients]})
    assert response.status_code in (200, 201), response.text[:300]
    return charts, group


def settings(charts: Charts, state, **changes: Any):
    return charts.settings(state, bulk_max_wait=1, **changes)


@pytest.mark.parametrize("workers", [None, 2], ids=["in-process", "dask-2-workers"])
def test_bulk_writes_what_evaluate_finds_and_a_rerun_writes_nothing(fhir_base, tmp_path,
                                                                    workers):
    charts, group = load(fhir_base)
    expected = charts.expected()
    first = run_scan(settings(charts, tmp_path), bulk=True, group=group, workers=workers)
    assert first.status == "ok", first.errors
    assert first.mode == "bulk" and first.since is None
    assert first.patients_done == len(charts.patients)
    offline = [f for b in charts.bundles for f in evaluate(b, JURISDICTION).findings]
    assert first.disclosures == len(offline)
    assert first.written["Provenance"] == sum(t == "Provenance" for t in expected.values())
    assert_exactly(charts, expected)
    # the bulk batch fetches whom the disclosures went to: its alerts name them (issue 12)
    alerts = _by_about(_ours(fhir_base, "Communication", charts.patients), "alert")
    expired = next(key for key in alerts if key.startswith("AuditEvent/ae-pnholt-1-"))
    assert "to Whitcombe Legal Group on" in alerts[expired]["payload"][0]["contentString"]

    again = run_scan(settings(charts, tmp_path), bulk=True, group=group, workers=workers,
                     full=True)
    assert again.status == "ok" and again.written == {}
    assert_exactly(charts, expected)


def test_bulk_and_paging_write_the_same_resources(fhir_base, tmp_path):
    """Each on a fresh copy: both write exactly what evaluate finds; on either copy, a run of
    the other kind then writes nothing."""
    bulk_charts, group = load(fhir_base)
    bulk = run_scan(settings(bulk_charts, tmp_path / "b"), bulk=True, group=group)
    assert bulk.status == "ok", bulk.errors
    assert_exactly(bulk_charts, bulk_charts.expected())
    after = run_scan(settings(bulk_charts, tmp_path / "b"), patients=bulk_charts.patients)
    assert after.status == "ok" and after.written == {}

    paging_charts, _ = load(fhir_base)
    paging = run_scan(settings(paging_charts, tmp_path / "p"), patients=paging_charts.patients)
    assert paging.status == "ok", paging.errors
    assert_exactly(paging_charts, paging_charts.expected())
    assert sum(paging.written.values()) == sum(bulk.written.values())
    # Bulk after paging on the same copy: the same identifiers, so nothing to write.
    topup = run_scan(settings(paging_charts, tmp_path / "p"), bulk=True,
                     group=f"g-{paging_charts.suffix}")
    assert topup.status == "ok" and topup.written == {}
    assert topup.disclosures == paging.disclosures


def test_an_incremental_bulk_run_writes_only_what_changed(fhir_base, tmp_path):
    charts, group = load(fhir_base)
    first = run_scan(settings(charts, tmp_path), bulk=True, group=group)
    assert first.status == "ok", first.errors
    assert_exactly(charts, charts.expected())

    # A new unauthorized disclosure for one patient of the group.
    patient = charts.patients[0]
    suffix = patient.split("-")[-1]
    new = _renamed(build.disclosure("AuditEvent/ae-new", patient_ref="Patient/" + patient,
                                    recipient="Organization/org-new", data=()), "x")
    new["id"] = f"ae-new-{suffix}-{uuid.uuid4().hex[:6]}"
    new["entity"][0]["what"]["reference"] = f"Patient/{patient}"
    new["agent"] = [a for a in new["agent"] if "Practitioner" not in str(a)]
    new["source"] = {"observer": {"display": "EHR"}}
    new["agent"][0]["who"] = {"identifier": {"system": "urn:test", "value": "recipient"}}
    response = requests.put(f"{fhir_base}/AuditEvent/{new['id']}", json=new, headers=FHIR_JSON,
                            timeout=60)
    assert response.status_code in (200, 201), response.text[:300]
    finding = next(f for f in evaluate([*charts.bundles[0], new], JURISDICTION).findings
                   if f.disclosure == f"AuditEvent/{new['id']}")
    group_written = plan(finding, WriteContext(privacy_officer=charts.privacy_officer))
    changed = {w.value: w.resource_type for w in group_written.writes}
    changed[group_written.provenance_key] = "Provenance"  # one per finding (CONTRACT 5)

    second = run_scan(settings(charts, tmp_path), bulk=True, group=group)
    assert second.status == "ok", second.errors
    assert second.mode == "bulk" and second.since is not None
    assert second.patients_selected == 1
    assert second.written["Provenance"] == 1  # one finding changed: one Provenance (CONTRACT 5)
    assert sum(second.written.values()) == len(changed)
    assert_exactly(charts, {**charts.expected(), **changed})


@pytest.mark.parametrize("workers", [None, 2], ids=["in-process", "dask-2-workers"])
def test_a_killed_bulk_scan_resumes_without_writing_twice(fhir_base, tmp_path, workers):
    charts, group = load(fhir_base)
    expected = charts.expected()
    env = {**os.environ, "CONSENT_GAP_FHIR_BASE": fhir_base,
           "CONSENT_GAP_PRIVACY_OFFICER": charts.privacy_officer,
           "CONSENT_GAP_JURISDICTION": JURISDICTION, "CONSENT_GAP_STATE_DIR": str(tmp_path),
           "CONSENT_GAP_BATCH_SIZE": "1", "CONSENT_GAP_BULK_MAX_WAIT": "1"}
    env.pop("CONSENT_GAP_CONFIG", None)
    command = [sys.executable, "-m", "consent_gap.cli", "scan", "--bulk", "--group", group,
               "--format", "json"]
    if workers:
        command += ["--workers", str(workers)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = CheckpointStore(settings(charts, tmp_path).database_url)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        runs = store.last_runs(fhir_base)
        if runs and runs[0].patients_done >= 5:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the scan ended before it could be killed"
    killed = store.last_runs(fhir_base)[0]
    store.close()
    assert killed.status == "running" and killed.mode == "bulk"
    assert 5 <= killed.patients_done < len(charts.patients)

    resumed = run_scan(settings(charts, tmp_path, batch_size=1), bulk=True, group=group,
                       workers=workers)
    assert resumed.status == "ok", resumed.errors
    assert resumed.resumed and resumed.run == killed.id
    assert resumed.patients_skipped == killed.patients_done
    assert_exactly(charts, expected)


def test_a_stopped_bulk_scan_deletes_its_export_job(fhir_base, tmp_path):
    charts, group = load(fhir_base)
    env = {**os.environ, "CONSENT_GAP_FHIR_BASE": fhir_base, "CONSENT_GAP_STATE_DIR": str(tmp_path),
           "CONSENT_GAP_PRIVACY_OFFICER": charts.privacy_officer,
           "CONSENT_GAP_BULK_MAX_WAIT": "30"}
    env.pop("CONSENT_GAP_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "consent_gap.cli", "scan", "--bulk", "--group", group],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = CheckpointStore(settings(charts, tmp_path).database_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not store.last_runs(fhir_base):
        time.sleep(0.05)
    time.sleep(1.0)  # kicked off, now waiting on the export (up to 30 s between polls)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    run = store.last_runs(fhir_base)[0]
    store.close()
    assert process.returncode == 1, stderr[-2000:]
    assert run.status == "failed"
    assert "export job deleted" in stderr
