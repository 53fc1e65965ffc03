"""FHIR Subscriptions end to end on the sandbox's HAPI (rest-hook Subscriptions enabled):
`subscribe` creates them idempotently, the app's `/fhir-notify` queues what HAPI sends, and
the scheduler's process (`consent-gap schedule`, a real subprocess) re-checks the patient: a
disclosure AuditEvent with no authorization written to HAPI gets its alert without the test
starting any scan. The delay from the write to the alert is printed (goal: under 30 s). A burst
of 50 disclosures gives one re-check per patient; a wrong secret is refused.

The app runs in this process on a free port (werkzeug), so HAPI can call it back; its
Subscriptions are deleted at the end so HAPI stops calling a port that is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from consent_gap.checkpoint import CheckpointStore
from consent_gap.fhir.client import FhirClient
from consent_gap.scan.notifications import NotifyQueue
from consent_gap.scan.subscriptions import ensure_subscriptions, remove_subscriptions
from consent_gap.settings import Settings
from consent_gap.web import create_app
from consent_gap.writeback import FINDING_SYSTEM, TAG
from consent_gap.writeback.subscriptions import SUBSCRIPTION_TAG_SYSTEM, tag_code
from support import fhir as build
from test_scan_live import _renamed
from werkzeug.serving import make_server

SECRET = "s3cret-" + uuid.uuid4().hex
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
#: How long the test waits for an alert before failing (the goal, 30 s, is only printed).
WAIT = 120


def chart(suffix: str, disclosures: int = 1) -> list[dict[str, Any]]:
    """A patient with `disclosures` disclosures and no authorization (all unauthorized),
    every id and reference suffixed."""
    resources = build.world(build.organization("Organization/org-src"),
                            *[build.disclosure(f"AuditEvent/ae{i}") for i in range(disclosures)])
    out = []
    for resource in resources:
        renamed = _renamed(resource, suffix)
        renamed["id"] = f"{resource['id']}-{suffix}"
        out.append(renamed)
    return out


def put_all(base: str, resources: list[dict[str, Any]]) -> None:
    entries = [{"resource": r, "request": {"method": "PUT",
                                           "url": f"{r['resourceType']}/{r['id']}"}}
               for r in resources]
    response = requests.post(base, json={"resourceType": "Bundle", "type": "transaction",
                                         "entry": entries}, headers=FHIR_JSON, timeout=120)
    assert response.status_code == 200, response.text[:500]


def alerts(base: str, patient: str) -> list[str]:
    """Identifier values of our alerts about the patient."""
    got = requests.get(f"{base}/Communication", params={
        "subject": f"Patient/{patient}", "_tag": f"{TAG['system']}|{TAG['code']}",
        "_count": "200"}, headers={**FHIR_JSON, "Cache-Control": "no-cache"}, timeout=60).json()
    return [i["value"] for e in got.get("entry", [])
            for i in e["resource"].get("identifier", []) if i.get("system") == FINDING_SYSTEM]


def wait_active(client: FhirClient, endpoint: str, timeout: float = 60.0) -> None:
    """HAPI matches a change only against Subscriptions it has activated and registered (it
    moves them from `requested` to `active` on its own schedule): a disclosure written before
    that is never delivered, so the tests write nothing until all four are active."""
    deadline = time.monotonic() + timeout
    kinds = ("disclosures", "sent-disclosures", "consents", "signatures")
    while time.monotonic() < deadline:
        statuses = [r.get("status") for kind in kinds for r in client.search(
            "Subscription", [("_tag", f"{SUBSCRIPTION_TAG_SYSTEM}|{tag_code(kind, endpoint)}")])]
        if len(statuses) == len(kinds) and all(s == "active" for s in statuses):
            time.sleep(2)  # registration in the matcher follows activation
            return
        time.sleep(0.5)
    raise AssertionError(f"HAPI did not activate the Subscriptions in {timeout:.0f} s")


class App:
    """The web app on a free port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def live(fhir_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("notify")
    suffix = "sb" + uuid.uuid4().hex[:8]
    officer = f"Practitioner/po-{suffix}"
    put_all(fhir_base, [{"resourceType": "Practitioner", "id": f"po-{suffix}"}])
    settings = Settings(fhir_base=fhir_base, state_dir=state, notify_secret=SECRET,
                        privacy_officer=officer, jurisdiction="US-CA", notify_interval=1,
                        dev_insecure_cookies=True, secret_key="k" * 32)
    app = App(settings)
    endpoint = f"{app.url}/fhir-notify"
    client = FhirClient(fhir_base)
    lines = list(ensure_subscriptions(client, endpoint, SECRET))
    capabilities_ok = all("created" in line or "up to date" in line for line in lines)
    again = list(ensure_subscriptions(client, endpoint, SECRET))
    wait_active(client, endpoint)
    env = {**os.environ, "CONSENT_GAP_FHIR_BASE": fhir_base, "CONSENT_GAP_STATE_DIR": str(state),
           "CONSENT_GAP_PRIVACY_OFFICER": officer, "CONSENT_GAP_JURISDICTION": "US-CA",
           "CONSENT_GAP_NOTIFY_INTERVAL": "1", "CONSENT_GAP_SCHEDULE": "0 3 1 1 *"}
    env.pop("CONSENT_GAP_CONFIG", None)
    log = (state / "sched.log").open("w")
    scheduler = subprocess.Popen([sys.executable, "-m", "consent_gap.cli", "schedule"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=log)
    try:
        yield {"base": fhir_base, "app": app, "settings": settings, "suffix": suffix,
               "first": lines, "again": again, "ok": capabilities_ok, "state": state,
               "endpoint": endpoint}
    finally:
        scheduler.send_signal(signal.SIGTERM)
        try:
            scheduler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            scheduler.kill()
        removed = list(remove_subscriptions(client, endpoint))
        left = [r for kind in ("disclosures", "sent-disclosures", "consents", "signatures")
                for r in client.search("Subscription", [
                    ("_tag", f"{SUBSCRIPTION_TAG_SYSTEM}|{tag_code(kind, endpoint)}")])]
        client.close()
        app.stop()
        log.close()
    assert len(removed) == 4 and left == [], "the Subscriptions must go, or HAPI keeps calling"


def test_subscribe_creates_the_four_subscriptions_once(live):
    assert [line.split(":")[0] for line in live["first"]] == [
        "disclosures", "sent-disclosures", "consents", "signatures"]
    assert all(": created (Subscription/" in line for line in live["first"]), live["first"]
    assert all(": up to date (Subscription/" in line for line in live["again"]), live["again"]
    assert SECRET not in " ".join(live["first"] + live["again"])


def test_a_disclosure_written_to_the_server_gets_its_alert_without_a_scan(live):
    base, suffix = live["base"], live["suffix"] + "a"
    resources = chart(suffix)
    patient = f"p1-{suffix}"
    put_all(base, [r for r in resources if r["resourceType"] != "AuditEvent"])
    assert alerts(base, patient) == []
    started = time.monotonic()
    put_all(base, [r for r in resources if r["resourceType"] == "AuditEvent"])
    found: list[str] = []
    while time.monotonic() - started < WAIT and not found:
        time.sleep(0.5)
        found = alerts(base, patient)
    delay = time.monotonic() - started
    log = (live["state"] / "sched.log").read_text()
    assert found, f"no alert after {WAIT} s; scheduler log:\n{log[-3000:]}"
    print(f"\nSubscription delay, disclosure written to alert readable: {delay:.1f} s "
          "(goal: under 30 s)")
    (Path(__file__).parents[2] / "test-artifacts").mkdir(exist_ok=True)
    (Path(__file__).parents[2] / "test-artifacts" / "notify-delay.txt").write_text(
        f"{delay:.1f}\n")
    assert len(found) == 1


def test_a_burst_of_fifty_disclosures_is_one_recheck_per_patient(live):
    base, suffix = live["base"], live["suffix"] + "b"
    first, second = chart(suffix + "x", 25), chart(suffix + "y", 25)
    put_all(base, [r for r in first + second if r["resourceType"] != "AuditEvent"])
    store = CheckpointStore(live["settings"].database_url)
    before = {run.id for run in store.last_runs(base, limit=1000)}
    put_all(base, [r for r in first + second if r["resourceType"] == "AuditEvent"])
    patients = [f"p1-{suffix}x", f"p1-{suffix}y"]
    started = time.monotonic()
    while time.monotonic() - started < WAIT:
        if all(len(alerts(base, p)) == 25 for p in patients):
            break
        time.sleep(1)
    assert [len(alerts(base, p)) for p in patients] == [25, 25]
    time.sleep(5)  # a late notification would show as a second re-check
    runs = [run for run in store.last_runs(base, limit=1000) if run.id not in before]
    store.close()
    assert len(runs) == 1, [r.to_json() for r in runs]
    assert runs[0].mode == "patients"
    assert runs[0].patients_total == runs[0].patients_done == 2
    assert runs[0].disclosures == 50
    assert NotifyQueue(live["settings"].database_url).pending() == []


@pytest.mark.parametrize("secret", [None, "wrong-" + uuid.uuid4().hex, SECRET[:-1]])
def test_a_missing_or_wrong_secret_is_refused_and_queues_nothing(live, secret):
    headers = {"Content-Type": "application/fhir+json"}
    if secret is not None:
        headers["X-Consent-Gap-Secret"] = secret
    queue = NotifyQueue(live["settings"].database_url)
    before = queue.pending()
    response = requests.put(f"{live['endpoint']}/AuditEvent/forged-{uuid.uuid4().hex[:8]}",
                            data="{}", headers=headers, timeout=30)
    assert response.status_code == 401
    assert queue.pending() == before
    queue.close()
