"""The scan under faults (issue 12): through a fault-injecting proxy in front of the sandbox's
HAPI (tests/support/faultproxy.py), breaking 5, 15 and 30 % of the exchanges before HAPI sees
them and after it committed them, and killed with SIGKILL at seeded moments, the scan ends
with exactly the resources of an undisturbed run: every resource once, one Provenance per
finding, each resource the target of exactly one.

A run that the faults stop (the retry budget of one request spent) ends `failed` and the next
run resumes it, as the scheduler's next night would; the tests allow a bounded number of runs.
Each test loads the example charts under its own suffix (test_scan_live.Charts) and checks
HAPI directly, not through the proxy. Seeded; bounded to well under two minutes together.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from consent_gap.checkpoint import CheckpointStore
from consent_gap.fhir.client import FhirClient
from consent_gap.fhir.retry import RetryPolicy
from consent_gap.scan import Scanner, ScanOptions, ScanSummary
from support.faultproxy import AFTER, BEFORE, FaultProxy
from test_scan_live import JURISDICTION, Charts, assert_exactly, load

#: The ports this suite's proxies may bind (one at a time).
PORTS = range(8181, 8190)
#: At most this many runs to finish a scan under faults (each resumes the one before).
MAX_RUNS = 8
#: A client that gives up a stalled answer after 2 s and backs off briefly, so the faults cost
#: seconds, not minutes; the budget is the product's default number of attempts.
POLICY = RetryPolicy(max_attempts=5, backoff_base=0.1, max_delay=1.0, max_total_wait=10.0)
TIMEOUT = (2.0, 2.0)


def scan_through(proxy: FaultProxy, charts: Charts, state: Path) -> ScanSummary:
    """One scan run of the charts' patients through the proxy."""
    client = FhirClient(proxy.base, retries=POLICY, timeout=TIMEOUT)
    store = CheckpointStore(charts.settings(state).database_url)
    try:
        return Scanner(client, store, ScanOptions(
            proxy.base, patients=tuple(charts.patients), jurisdiction=JURISDICTION,
            batch_size=4, write_group=5), privacy_officer=charts.privacy_officer).run()
    finally:
        client.close()
        store.close()


def scan_until_done(proxy: FaultProxy, charts: Charts, state: Path) -> list[ScanSummary]:
    runs: list[ScanSummary] = []
    while len(runs) < MAX_RUNS:
        runs.append(scan_through(proxy, charts, state))
        if runs[-1].status == "ok":
            return runs
    pytest.fail(f"no run finished in {MAX_RUNS}: {[r.errors[-1:] for r in runs]}")


@pytest.mark.parametrize(("rate", "seed"), [(0.05, 5), (0.15, 15), (0.30, 30)])
def test_scan_under_faults_writes_exactly_what_an_undisturbed_run_writes(
        fhir_base, tmp_path, rate, seed):
    charts = load(fhir_base)
    expected = charts.expected()
    with FaultProxy(fhir_base, PORTS, rate=rate, seed=seed) as proxy:
        runs = scan_until_done(proxy, charts, tmp_path)
        assert proxy.injected > 0
        if rate >= 0.15:  # enough draws that both phases occur
            assert set(proxy.stats) & set(BEFORE) and set(proxy.stats) & set(AFTER)
        assert_exactly(charts, expected)
        if rate >= 0.30:  # a rerun through the faults writes nothing
            assert scan_until_done(proxy, charts, tmp_path)[-1].written == {}
            assert_exactly(charts, expected)
    assert sum(run.patients_done for run in runs) >= len(charts.patients)


def test_killed_again_and_again_under_faults_ends_with_exactly_the_same_resources(
        fhir_base, tmp_path):
    """kill -9 at seeded moments of a scan through 15 % faults, twice, then runs to the end
    (resuming the killed run): nothing lost, nothing twice."""
    charts = load(fhir_base)
    expected = charts.expected()
    rng = random.Random(912)
    with FaultProxy(fhir_base, PORTS, rate=0.15, seed=12) as proxy:
        env = {**os.environ, "CONSENT_GAP_FHIR_BASE": proxy.base,
               "CONSENT_GAP_PRIVACY_OFFICER": charts.privacy_officer,
               "CONSENT_GAP_JURISDICTION": JURISDICTION, "CONSENT_GAP_STATE_DIR": str(tmp_path),
               "CONSENT_GAP_BATCH_SIZE": "2"}
        env.pop("CONSENT_GAP_CONFIG", None)
        command = [sys.executable, "-m", "consent_gap.cli", "scan", "--format", "json"]
        for patient in charts.patients:
            command += ["--patient", patient]
        killed = 0
        for _ in range(2):
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(1.2, 2.5))  # start-up takes about a second
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait(timeout=60)
        assert killed >= 1, "every run ended before it could be killed"
        store = CheckpointStore(charts.settings(tmp_path).database_url)
        left = store.last_runs(proxy.base)
        store.close()
        runs = scan_until_done(proxy, charts, tmp_path)
        if left and left[0].status == "running":  # killed mid-run: the next run resumes it
            assert runs[0].resumed and runs[0].run == left[0].id
        assert proxy.injected > 0
    assert_exactly(charts, expected)


def _cli(base: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONSENT_GAP_STATE_DIR": str(tmp_path)}
    env.pop("CONSENT_GAP_CONFIG", None)
    for name in ("CONSENT_GAP_PRIVACY_OFFICER", "CONSENT_GAP_ORGANIZATION"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "consent_gap.cli", "scan", "--fhir-base", base,
         "--jurisdiction", JURISDICTION, "--patient", "no-such-patient-for-faults"],
        env=env, capture_output=True, text=True, timeout=120)


def test_a_truncated_answer_in_preflight_is_a_runtime_failure_naming_the_server(
        fhir_base, tmp_path):
    with FaultProxy(fhir_base, PORTS, rate=1.0, seed=1, kinds=["cut"],
                    only=lambda method, path: path.endswith("/metadata")) as proxy:
        result = _cli(proxy.base, tmp_path)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"consent-gap scan: FHIR server {proxy.base}: GET metadata: ")
    assert "after 5 attempt(s)" in last
    assert "Traceback" not in result.stderr and "requests." not in result.stderr


def test_a_truncated_answer_to_the_device_creation_is_a_runtime_failure(fhir_base, tmp_path):
    with FaultProxy(fhir_base, PORTS, rate=1.0, seed=2, kinds=["cut"],
                    only=lambda method, path: method == "POST" and path.endswith("/Device")
                    ) as proxy:
        result = _cli(proxy.base, tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"error: scan stopped: FHIR server {proxy.base}: POST Device: response cut short" \
        in result.stdout
