#!/usr/bin/env python3
"""Benchmark of the panel on the sandbox: one patient with 200 disclosures and 30 Consents.

    .venv/bin/python bench/panel.py [--fhir-base URL] [--launcher URL] [--app URL]
                                    [--disclosures 200] [--consents 30] [--rounds 7]
                                    [--clients 20] [--per-client 10] [--server gunicorn|serve]

Needs the sandbox (sandbox/up). Loads the bench patient into HAPI (PUT with fixed ids, so a
rerun replaces it), starts the app on --app's port unless one already answers there, then
measures, in the same run:

1. launch to rendered panel: from opening the launch URL the sandbox EHR page puts in its
   iframe to the panel's HTML received (the app's /launch, discovery, the launcher's authorize
   redirect, /callback with the code exchange, then the panel: its FHIR reads through the
   launcher's scope-checking proxy, the engine, the template), over plain HTTP; and the same
   in Chromium up to the page's load event (when --browser names a Chromium);
2. the bare reads that panel needs: the same read plan (web.chart.fetch_chart) through the same
   proxy with an access token obtained beforehand, and nothing else;
3. /api/findings requests per second under N concurrent clients sharing one launched session
   (loopback only, each client a bounded loop).

(1) and (2) alternate over --rounds rounds (HAPI's warm-up is paid by a discarded first
round); the ratio is given for the medians and as the median of each round's own ratio, which
pairs measurements taken moments apart on a machine whose load drifts. Goal (issue 5): (1)/(2)
at most 1.5.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consent_gap.fhir import BearerAuth, FhirClient  # noqa: E402
from consent_gap.smart import discovery, ehr_launch  # noqa: E402
from consent_gap.web.chart import fetch_chart  # noqa: E402
from consent_gap.web.config import PANEL_SCOPES  # noqa: E402

from sandbox.data import fhirbuild as fb  # noqa: E402

PATIENT = "bench-panel-p1"
CLIENT_ID = "consent-gap"
PURPOSES = ["TREAT", "HPAYMT", "HOPERAT", "HLEGAL", "PATRQT", "THREAT", "GOV", "COC"]


# ---------------------------------------------------------------------------- the bench chart

def bench_chart(disclosures: int, consents: int) -> list[dict]:
    """A patient, recipients, `consents` signed authorizations (some expired, some revoked),
    40 labelled records and `disclosures` disclosure AuditEvents spread over three years."""
    start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    resources: list[dict] = [
        fb.patient(PATIENT, "BENCH-1", "Benchmark", "Panel", "female", dt.date(1980, 5, 4),
                   fb.address("CA", "Sacramento", "1 Bench St", "95818")),
        fb.practitioner("bench-panel-pr", "Bench", "Therapist", "LCSW", "B-1"),
        fb.organization("bench-panel-clinic", "Bench Clinic", "prov",
                        fb.address("CA", "Sacramento", "2 Bench St", "95818")),
    ]
    orgs = [f"bench-panel-org-{i}" for i in range(10)]
    for i, oid in enumerate(orgs):
        resources.append(fb.organization(oid, f"Recipient {i}", "prov" if i % 2 else "other",
                                         fb.address("CA", "Sacramento", f"{i} Way", "95818")))
    for i in range(consents):
        signed = start + dt.timedelta(days=36 * i)
        cid = f"bench-panel-c{i:02d}"
        prov = fb.provision(start=signed, end=signed + dt.timedelta(days=180),
                            actors=[fb.actor("IRCP", fb.ref(f"Organization/{orgs[i % 10]}"))],
                            purposes=[PURPOSES[i % len(PURPOSES)]])
        resources.append(fb.consent(cid, PATIENT, signed, f"Patient/{PATIENT}",
                                    "Organization/bench-panel-clinic", prov=prov,
                                    status="inactive" if i % 7 == 6 else "active",
                                    text=f"Release to recipient {i % 10}"))
        resources.append(fb.signature_provenance(f"bench-panel-sig{i:02d}", f"Consent/{cid}",
                                                 f"Patient/{PATIENT}", signed))
    records = []
    for i in range(40):
        did = f"bench-panel-dr{i:02d}"
        records.append(did)
        resources.append(fb.document(did, PATIENT, start + dt.timedelta(days=27 * i),
                                     fb.concept(fb.LOINC, "11506-3", "Progress note"),
                                     "Progress note", ["MH"] if i % 3 else [],
                                     "Practitioner/bench-panel-pr"))
    for i in range(disclosures):
        when = start + dt.timedelta(hours=131 * i + 9)
        purpose = PURPOSES[(i * 5) % len(PURPOSES)]
        entities = [fb.audit_entity(fb.ref(f"Patient/{PATIENT}"), person=True),
                    fb.audit_entity(fb.ref(f"DocumentReference/{records[i % 40]}"))]
        resources.append(fb.disclosure_event(
            f"bench-panel-ae{i:03d}", when, [fb.concept(fb.ACT_REASON, purpose)],
            "Organization/bench-panel-clinic", fb.ref(f"Organization/{orgs[i % 10]}"),
            entities, "Organization/bench-panel-clinic", "bench"))
    return resources


def load(fhir_base: str, resources: list[dict]) -> None:
    """PUT every resource (fixed ids: a rerun replaces rather than adds), 100 per transaction."""
    http = requests.Session()
    for first in range(0, len(resources), 100):
        entries = [{"resource": r, "request": {"method": "PUT",
                                               "url": f"{r['resourceType']}/{r['id']}"}}
                   for r in resources[first:first + 100]]
        response = http.post(fhir_base, json={"resourceType": "Bundle", "type": "transaction",
                                              "entry": entries},
                             headers={"Content-Type": "application/fhir+json"}, timeout=120)
        response.raise_for_status()


# ---------------------------------------------------------------------------- the app

def ensure_app(app: str, iss: str, server: str) -> subprocess.Popen | None:
    """Start the app unless one answers at `app` (a started one is stopped at the end)."""
    if _healthy(app):
        print(f"using the app already running at {app}")
        return None
    port = urlsplit(app).port or 8082
    state = tempfile.mkdtemp(prefix="consent-gap-bench-")
    env = {**os.environ, "CONSENT_GAP_ALLOWED_ISSUERS": iss, "CONSENT_GAP_PUBLIC_URL": app,
           "CONSENT_GAP_DEV_INSECURE_COOKIES": "true", "CONSENT_GAP_SECRET_KEY": "bench-only",
           "CONSENT_GAP_SESSION_STORE": f"sqlite:{state}/sessions.db"}
    if server == "gunicorn":
        command = [str(Path(sys.executable).with_name("gunicorn")), "--bind",
                   f"127.0.0.1:{port}", "--workers", "2", "--threads", "8",
                   "consent_gap.web:create_app()"]
    else:
        command = [sys.executable, "-m", "consent_gap.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 30
    while not _healthy(app):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the app did not start ({' '.join(command[:2])})")
        time.sleep(0.2)
    print(f"started the app ({server}) at {app}")
    return process


def _healthy(app: str) -> bool:
    try:
        return requests.get(f"{app}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def launch_url(http: requests.Session, launcher: str) -> str:
    """The sandbox EHR page for the bench patient; the app URL its iframe would open."""
    page = http.get(f"{launcher}/ehr", params={"patient": PATIENT}, timeout=30)
    page.raise_for_status()
    found = re.search(r'<iframe[^>]*\ssrc="([^"]+)"', page.text)
    if not found:
        raise SystemExit("the sandbox EHR page has no app iframe")
    return unescape(found.group(1))


# ---------------------------------------------------------------------------- measurements

def launch_to_panel(launcher: str) -> tuple[float, requests.Session]:
    """Seconds from opening the launch URL to the panel's HTML; the launched session."""
    http = requests.Session()
    url = launch_url(http, launcher)
    started = time.perf_counter()
    response = http.get(url, timeout=120)  # follows /launch -> authorize -> /callback -> panel
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or 'id="counts-h"' not in response.text:
        raise SystemExit(f"the panel did not render (HTTP {response.status_code})")
    return elapsed, http


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser_rounds(launcher: str, rounds: int, chromium: str,
                   bare: Callable[[], float]) -> tuple[list[float], list[float]]:
    """Seconds from opening the launch URL in Chromium to the panel laid out (its `load`
    event: styles, script and the SVG done). One warm tab, as a clinician's browser is, with its
    cookies cleared each round (a new session, a new launch); a new tab per round would time
    Chromium starting a renderer process, which on two cores also slows the FHIR server. The
    bare reads are timed between the rounds with the browser open, for the same reason."""
    from playwright.sync_api import sync_playwright

    times, bares = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 600, "height": 900})
        page = context.new_page()
        try:
            for _ in range(rounds + 1):  # the first is a warm-up, dropped
                context.clear_cookies()
                url = launch_url(requests.Session(), launcher)
                started = time.perf_counter()
                page.goto(url, wait_until="load", timeout=120_000)
                page.locator("#counts-h").wait_for(timeout=120_000)
                times.append(time.perf_counter() - started)
                bares.append(bare())
        finally:
            context.close()
            browser.close()
    return times[1:], bares[1:]


def access_token(launcher: str, iss: str, app: str) -> str:
    """A token for the panel's client and scopes, by the same EHR launch done by hand."""
    http = requests.Session()
    launch = parse_qs(urlsplit(launch_url(http, launcher)).query)["launch"][0]
    smart = discovery.discover(iss, http)
    pending = ehr_launch.start_authorization(smart, iss=iss, client_id=CLIENT_ID,
                                             redirect_uri=f"{app}/callback",
                                             scope=PANEL_SCOPES, launch=launch)
    response = http.get(pending.authorize_url, allow_redirects=False, timeout=30)
    code = parse_qs(urlsplit(response.headers.get("Location", "")).query).get("code")
    if not code:
        raise SystemExit(f"the launcher gave no code (HTTP {response.status_code})")
    return ehr_launch.exchange_code(http, pending, code=code[0], client_id=CLIENT_ID).access_token


def bare_reads(iss: str, token: str) -> float:
    with FhirClient(iss, auth=BearerAuth(token)) as client:
        started = time.perf_counter()
        chart = fetch_chart(client, PATIENT)
        elapsed = time.perf_counter() - started
    if not chart.resources:
        raise SystemExit("the bare reads found nothing")
    return elapsed


def api_throughput(app: str, session: requests.Session, clients: int,
                   per_client: int) -> tuple[float, int, int]:
    """(requests per second, successes, failures) for /api/findings."""
    cookies = session.cookies.get_dict()
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        http = requests.Session()
        http.cookies.update(cookies)
        for _ in range(per_client):
            try:
                status = http.get(f"{app}/api/findings", timeout=120).status_code
            except requests.RequestException:
                status = 0
            with lock:
                results.append(status)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ok = sum(1 for s in results if s == 200)
    return len(results) / elapsed, ok, len(results) - ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fhir-base", default="http://127.0.0.1:8080/fhir")
    parser.add_argument("--launcher", default="http://127.0.0.1:8081")
    parser.add_argument("--app", default="http://127.0.0.1:8082")
    parser.add_argument("--disclosures", type=int, default=200)
    parser.add_argument("--consents", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--server", choices=("gunicorn", "serve"), default="gunicorn")
    parser.add_argument("--browser", default="/usr/bin/chromium",
                        help="Chromium for the rendered-panel rounds ('' to skip them)")
    args = parser.parse_args(argv)
    for url in (args.fhir_base, args.launcher, args.app):
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"loopback only: {url}")
    iss = f"{args.launcher}/fhir"

    chart = bench_chart(args.disclosures, args.consents)
    load(args.fhir_base, chart)
    print(f"loaded Patient/{PATIENT}: {args.disclosures} disclosures, {args.consents} Consents,"
          f" {len(chart)} resources")
    process = ensure_app(args.app, iss, args.server)
    try:
        token = access_token(args.launcher, iss, args.app)
        launch_to_panel(args.launcher)  # warm-up round, discarded
        bare_reads(iss, token)
        panel_times, bare_times = [], []
        session = None
        for _ in range(args.rounds):
            elapsed, session = launch_to_panel(args.launcher)
            panel_times.append(elapsed)
            bare_times.append(bare_reads(iss, token))
        panel, bare = statistics.median(panel_times), statistics.median(bare_times)
        print(f"launch to rendered panel: median {panel * 1000:.0f} ms "
              f"(min {min(panel_times) * 1000:.0f}, max {max(panel_times) * 1000:.0f}, "
              f"{args.rounds} rounds)")
        print(f"bare FHIR reads the panel needs: median {bare * 1000:.0f} ms "
              f"(min {min(bare_times) * 1000:.0f}, max {max(bare_times) * 1000:.0f})")
        paired = statistics.median(p / b for p, b in zip(panel_times, bare_times, strict=True))
        print(f"ratio panel / bare reads: {panel / bare:.2f} of the medians, {paired:.2f} "
              f"median of the paired rounds (goal <= 1.5)")
        if args.browser and Path(args.browser).exists():
            shown, bares = browser_rounds(args.launcher, args.rounds, args.browser,
                                          lambda: bare_reads(iss, token))
            rendered, bare_open = statistics.median(shown), statistics.median(bares)
            print(f"launch to panel rendered in Chromium: median {rendered * 1000:.0f} ms "
                  f"(min {min(shown) * 1000:.0f}, max {max(shown) * 1000:.0f}); bare reads "
                  f"with the browser open: median {bare_open * 1000:.0f} ms; "
                  f"ratio {rendered / bare_open:.2f}")
        assert session is not None
        rate, ok, failed = api_throughput(args.app, session, args.clients, args.per_client)
        print(f"/api/findings: {rate:.1f} requests/s with {args.clients} concurrent clients "
              f"({ok} ok, {failed} failed, {args.clients * args.per_client} requests)")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
