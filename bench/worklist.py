#!/usr/bin/env python3
"""Benchmark of the privacy office's worklist with 10,000 open Tasks in HAPI.

    flock /tmp/cg-bench.lock flock /tmp/cg-e2e.lock .venv/bin/python bench/worklist.py \
        [--fhir-base URL] [--launcher URL] [--app URL] [--patients 1000] [--per-patient 10]
        [--rounds 15] [--skip-load SUFFIX]

Needs the sandbox (sandbox/up) and the app's port (8082, the launcher's registered redirect;
hence the e2e lock too). In one run:

1. Generates charts with the sandbox's generator (sandbox/data, seed 2026), every id of a chart
   suffixed with this run's suffix so the default data and other tests' charts are untouched,
   loads them into HAPI, and writes one open consent-gap Task per disclosure (10,000 by
   default; a third urgent, discovered over the last 50 days; their `reasonReference` is the
   disclosure itself, as no finding notes are written here). They stay in HAPI: the sandbox's
   worklist shows them afterwards (rerun with `--skip-load SUFFIX` to reuse a load).
2. Starts the app (unless one answers at --app), signs in through the sandbox EHR's Privacy
   office entry (an EHR launch with no patient), then alternates over --rounds rounds (a
   discarded warm-up first):
   - the worklist's first page: GET /worklist, the HTML received (the Task search with its
     Patients through the launcher's scope-checking proxy, the clinician list, the template);
   - the bare Task search it needs: the same search (fetch_plan.worklist_search) through the
     same proxy with a token of the same scopes, first page only, nothing else.
   It prints the medians, the ratio of the medians and the median of the paired rounds' ratios
   (goal: at most 1.5). No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consent_gap.domain import Decision  # noqa: E402
from consent_gap.evaluate import evaluate  # noqa: E402
from consent_gap.fetch_plan import worklist_search  # noqa: E402
from consent_gap.fhir import BearerAuth, FhirClient  # noqa: E402
from consent_gap.smart import discovery, ehr_launch  # noqa: E402
from consent_gap.web.worklist import WORKLIST_SCOPES  # noqa: E402
from consent_gap.writeback import FINDING_SYSTEM, WriteContext  # noqa: E402
from consent_gap.writeback.tasks import task_resource  # noqa: E402

from sandbox.data.charts import World  # noqa: E402

CLIENT_ID = "consent-gap"
BENCH_SYSTEM = f"{FINDING_SYSTEM}-bench"
_REF = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]+)$")


def suffixed(resources: list[dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    """The chart's resources with their ids and every reference to them suffixed (the shared
    directory of practitioners and organizations is left as it is)."""
    own = {f"{r['resourceType']}/{r['id']}" for r in resources}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "reference" and isinstance(item, str) and item in own:
                    out[key] = f"{item}-{suffix}"
                else:
                    out[key] = walk(item)
            return out
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    renamed = []
    for resource in resources:
        copy = walk(resource)
        copy["id"] = f"{resource['id']}-{suffix}"
        renamed.append(copy)
    return renamed


def put_all(http: requests.Session, base: str, resources: list[dict[str, Any]],
            size: int = 250) -> None:
    for first in range(0, len(resources), size):
        entries = [{"resource": r, "request": {"method": "PUT",
                                               "url": f"{r['resourceType']}/{r['id']}"}}
                   for r in resources[first:first + size]]
        response = http.post(base, json={"resourceType": "Bundle", "type": "transaction",
                                         "entry": entries},
                             headers={"Content-Type": "application/fhir+json"}, timeout=600)
        if response.status_code != 200:
            raise SystemExit(f"HAPI refused a transaction: HTTP {response.status_code} "
                             f"{response.text[:300]}")


def load(base: str, patients: int, per_patient: int, suffix: str) -> int:
    """Charts and one open Task per disclosure; the number of Tasks written."""
    world = World(seed=2026, patients=patients, per_patient=per_patient)
    http = requests.Session()
    put_all(http, base, world.directory_resources())
    now = datetime.now(UTC).replace(microsecond=0)
    tasks: list[dict[str, Any]] = []
    started = time.perf_counter()
    for chart in world.charts():
        resources = suffixed(chart.resources, suffix)
        put_all(http, base, resources)
        for finding in evaluate(resources).findings:
            index = len(tasks)
            flagged = replace(finding, decision=(Decision.UNAUTHORIZED if index % 3 == 0
                                                 else Decision.REVIEW))
            context = WriteContext(now=now - timedelta(minutes=7 * index % (50 * 24 * 60)))
            task = task_resource(flagged, context, "Device/none", note=finding.disclosure)
            task.pop("requester")
            task["id"] = f"bench-{suffix}-{index}"
            task["identifier"] = [{"system": BENCH_SYSTEM, "value": task["id"]}]
            tasks.append(task)
    put_all(http, base, tasks, size=500)
    print(f"loaded {patients} charts and {len(tasks)} open Tasks (suffix {suffix}) in "
          f"{time.perf_counter() - started:.0f} s")
    return len(tasks)


def ensure_app(app: str, iss: str) -> subprocess.Popen | None:
    if _healthy(app):
        print(f"using the app already running at {app}")
        return None
    port = urlsplit(app).port or 8082
    state = tempfile.mkdtemp(prefix="consent-gap-bench-")
    env = {**os.environ, "CONSENT_GAP_ALLOWED_ISSUERS": iss, "CONSENT_GAP_PUBLIC_URL": app,
           "CONSENT_GAP_DEV_INSECURE_COOKIES": "true", "CONSENT_GAP_SECRET_KEY": "bench-only",
           "CONSENT_GAP_SESSION_STORE": f"sqlite:{state}/sessions.db"}
    env.pop("CONSENT_GAP_CONFIG", None)
    command = [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}",
               "--workers", "2", "--threads", "8", "consent_gap.web:create_app()"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 30
    while not _healthy(app):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the app did not start")
        time.sleep(0.2)
    return process


def _healthy(app: str) -> bool:
    try:
        return requests.get(f"{app}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def sign_in(launcher: str, app: str) -> requests.Session:
    """The EHR's Privacy office entry, followed to the worklist (a launched session)."""
    http = requests.Session()
    response = http.get(f"{launcher}/ehr/office", params={"app": CLIENT_ID}, timeout=120)
    if response.status_code != 200 or "table" not in response.text:
        raise SystemExit(f"the worklist did not open (HTTP {response.status_code})")
    return http


def access_token(launcher: str, iss: str, app: str) -> str:
    """A token with the worklist's scopes, by the same EHR launch done by hand."""
    http = requests.Session()
    office = http.get(f"{launcher}/ehr/office", params={"app": CLIENT_ID},
                      allow_redirects=False, timeout=30)
    launch = parse_qs(urlsplit(office.headers["Location"]).query)["launch"][0]
    smart = discovery.discover(iss, http)
    pending = ehr_launch.start_authorization(smart, iss=iss, client_id=CLIENT_ID,
                                             redirect_uri=f"{app}/callback",
                                             scope=f"launch {WORKLIST_SCOPES}", launch=launch)
    response = http.get(pending.authorize_url, allow_redirects=False, timeout=30)
    code = parse_qs(urlsplit(response.headers.get("Location", "")).query).get("code")
    if not code:
        raise SystemExit(f"the launcher gave no code (HTTP {response.status_code})")
    return ehr_launch.exchange_code(http, pending, code=code[0], client_id=CLIENT_ID).access_token


def first_page(session: requests.Session, app: str) -> float:
    started = time.perf_counter()
    response = session.get(f"{app}/worklist", timeout=120)
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or "data-task=" not in response.text:
        raise SystemExit(f"the worklist's first page did not render (HTTP "
                         f"{response.status_code})")
    return elapsed


def bare_search(iss: str, token: str) -> float:
    search = worklist_search()
    with FhirClient(iss, auth=BearerAuth(token)) as client:
        started = time.perf_counter()
        bundle = client.first_page(search.type, list(search.params))
        elapsed = time.perf_counter() - started
    if not bundle.get("entry"):
        raise SystemExit("the bare Task search found nothing")
    return elapsed


def open_tasks(base: str) -> int:
    search = worklist_search()
    params = [p for p in search.params if p[0] not in ("_sort", "_include", "_count")]
    response = requests.get(f"{base}/Task", params=[*params, ("_summary", "count")], timeout=120)
    return int(response.json().get("total", 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fhir-base", default="http://127.0.0.1:8080/fhir")
    parser.add_argument("--launcher", default="http://127.0.0.1:8081")
    parser.add_argument("--app", default="http://127.0.0.1:8082")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--per-patient", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--skip-load", metavar="SUFFIX", help="reuse an earlier load")
    args = parser.parse_args(argv)
    for url in (args.fhir_base, args.launcher, args.app):
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"loopback only: {url}")
    iss = f"{args.launcher}/fhir"
    if not args.skip_load:
        load(args.fhir_base, args.patients, args.per_patient, "wb" + uuid.uuid4().hex[:8])
    print(f"open consent-gap Tasks in HAPI: {open_tasks(args.fhir_base)}")
    process = ensure_app(args.app, iss)
    try:
        session = sign_in(args.launcher, args.app)
        token = access_token(args.launcher, iss, args.app)
        first_page(session, args.app)  # warm-up, discarded
        bare_search(iss, token)
        pages, bares = [], []
        for _ in range(args.rounds):
            pages.append(first_page(session, args.app))
            bares.append(bare_search(iss, token))
        page, bare = statistics.median(pages), statistics.median(bares)
        paired = statistics.median(p / b for p, b in zip(pages, bares, strict=True))
        print(f"worklist first page: median {page * 1000:.0f} ms (min {min(pages) * 1000:.0f},"
              f" max {max(pages) * 1000:.0f}, {args.rounds} rounds)")
        print(f"bare Task search it needs: median {bare * 1000:.0f} ms "
              f"(min {min(bares) * 1000:.0f}, max {max(bares) * 1000:.0f})")
        print(f"ratio first page / bare search: {page / bare:.2f} of the medians, "
              f"{paired:.2f} median of the paired rounds (goal <= 1.5)")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
