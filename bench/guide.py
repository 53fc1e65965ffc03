#!/usr/bin/env python3
"""Benchmark of "New disclosure" (CONTRACT 6) on the sandbox: the answer against the bare FHIR
reads it needs, and what recording costs.

    .venv/bin/python bench/guide.py [--fhir-base URL] [--launcher URL] [--rounds 15]
                                    [--disclosures 200] [--consents 30]

Needs the sandbox (sandbox/up) with a launcher that grants the panel's scopes for CONTRACT 6
(sandbox/smart/clients.toml). The bench patient is bench/panel.py's (200 disclosures, 30
Consents, PUT with fixed ids). The app runs in this process (Flask's test client, the real
outbound HTTP session), launched once through the launcher like the EHR page does; every
request the app sends to the FHIR server is counted by a hook on that session. In the same
run, alternating round by round:

1. open with a proposal filled, to the answer: GET the "New disclosure" page (its chart
   read), then POST the filled proposal to the page's answer (decided with the same engine);
2. the bare reads that answer needs: the one-patient fetch plan through the same proxy with
   the same token, and nothing else.

The ratio is given for the medians and as the median of each round's own ratio. Goal (issue
9): at most 1.5. Then one record of a threat (CONTRACT 6.3) is sent, and the requests it made
are listed: the transactions it wrote (goal: exactly 1) and the reads it needed to decide
again on the chart as it is now.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import uuid
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consent_gap.fetch_plan import fetch_patient_chart  # noqa: E402
from consent_gap.fhir import BearerAuth, FhirClient  # noqa: E402
from consent_gap.web import create_app  # noqa: E402
from consent_gap.web.config import WebConfig  # noqa: E402

from bench.panel import PATIENT, bench_chart, load  # noqa: E402
from sandbox.data import guide_clients  # noqa: E402

#: The record goes to a guide client of its own, so the panel bench's patient keeps its chart.
RECORD_SUFFIX = "-bench"

APP = "http://127.0.0.1:8082"
FIVE = {"nature": "Threat to harm a named person, with a plan.",
        "informed": "The police and the person threatened, to protect her.",
        "client_response": "Angry, then agreed to a safety plan.",
        "evidence": "Structured risk assessment; consulted the supervisor.",
        "harm_minimised": "Shared only the threat and the address."}


class Counter:
    """Every request the app sends, as (method, path)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def hook(self, response: requests.Response, *_args: object, **_kwargs: object) -> None:
        self.calls.append((response.request.method or "", urlsplit(response.url).path))

    def since(self, mark: int) -> list[tuple[str, str]]:
        return self.calls[mark:]


def launch_url(http: requests.Session, launcher: str, patient: str) -> str:
    """The app URL the sandbox EHR page's iframe opens for `patient`."""
    page = http.get(f"{launcher}/ehr", params={"patient": patient}, timeout=30)
    page.raise_for_status()
    found = re.search(r'<iframe[^>]*\ssrc="([^"]+)"', page.text)
    if not found:
        raise SystemExit("the sandbox EHR page has no app iframe")
    return unescape(found.group(1))


def launched(launcher: str, counter: Counter, patient: str = PATIENT):
    """The app, in this process, with a launched session for `patient`."""
    iss = f"{launcher}/fhir"
    http = requests.Session()
    http.headers["Accept"] = "application/json"
    http.hooks["response"].append(counter.hook)
    app = create_app(config=WebConfig(allowed_issuers=(iss,), public_url=APP,
                                      secret_key="bench-only", dev_insecure_cookies=True,
                                      jurisdiction="US-CA", privacy_officer=None), http=http)
    client = app.test_client()
    browser = requests.Session()
    start = urlsplit(launch_url(browser, launcher, patient))
    response = client.get(f"{start.path}?{start.query}")
    location = response.headers["Location"]
    while not location.startswith(APP):  # the launcher's authorize (auto-approved)
        location = browser.get(location, allow_redirects=False, timeout=30).headers["Location"]
    callback = urlsplit(location)
    panel = client.get(f"{callback.path}?{callback.query}").headers["Location"]
    lid = panel.rstrip("/").rsplit("/", 1)[-1]
    return app, client, lid


def csrf(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    if not found:
        raise SystemExit("the guide page did not render")
    return found.group(1)


def proposal() -> dict:
    return {"scenario": "threat-to-person",
            "recipient": {"reference": "Organization/bench-panel-org-0"},
            "data": [{"reference": "DocumentReference/bench-panel-dr01"}]}


def open_to_answer(client, lid: str) -> tuple[float, str]:
    started = time.perf_counter()
    page = client.get(f"/panel/{lid}/guide")
    token = csrf(page.get_data(as_text=True))
    answer = client.post(f"/panel/{lid}/guide/answer", json=proposal(),
                         headers={"X-CSRF-Token": token})
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise SystemExit(f"no answer (HTTP {answer.status_code}): {answer.get_json()}")
    return elapsed, token


def bare_token(launcher: str) -> str:
    """A token for the bench patient, by the same EHR launch (bench/panel.py's)."""
    from bench.panel import access_token

    return access_token(launcher, f"{launcher}/fhir", APP)


def bare_reads(iss: str, token: str) -> float:
    with FhirClient(iss, auth=BearerAuth(token)) as client:
        started = time.perf_counter()
        resources = fetch_patient_chart(client, PATIENT)
        elapsed = time.perf_counter() - started
    if not resources:
        raise SystemExit("the bare reads found nothing")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fhir-base", default="http://127.0.0.1:8080/fhir")
    parser.add_argument("--launcher", default="http://127.0.0.1:8081")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--disclosures", type=int, default=200)
    parser.add_argument("--consents", type=int, default=30)
    args = parser.parse_args(argv)
    for url in (args.fhir_base, args.launcher):
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"loopback only: {url}")
    iss = f"{args.launcher}/fhir"
    chart = bench_chart(args.disclosures, args.consents)
    load(args.fhir_base, chart)
    print(f"loaded Patient/{PATIENT}: {args.disclosures} disclosures, {args.consents} Consents,"
          f" {len(chart)} resources")
    counter = Counter()
    _app, client, lid = launched(args.launcher, counter)
    token = bare_token(args.launcher)
    open_to_answer(client, lid)  # warm-up round, discarded
    bare_reads(iss, token)
    answers, bares = [], []
    for _ in range(args.rounds):
        mark = len(counter.calls)
        elapsed, _token = open_to_answer(client, lid)
        answers.append(elapsed)
        reads = len(counter.since(mark))
        bares.append(bare_reads(iss, token))
    answer, bare = statistics.median(answers), statistics.median(bares)
    print(f"open New disclosure with a proposal filled, to the answer: median "
          f"{answer * 1000:.0f} ms (min {min(answers) * 1000:.0f}, max {max(answers) * 1000:.0f},"
          f" {args.rounds} rounds; {reads} FHIR requests per round)")
    print(f"bare FHIR reads the answer needs: median {bare * 1000:.0f} ms "
          f"(min {min(bares) * 1000:.0f}, max {max(bares) * 1000:.0f})")
    paired = statistics.median(a / b for a, b in zip(answers, bares, strict=True))
    print(f"ratio answer / bare reads: {answer / bare:.2f} of the medians, {paired:.2f} median "
          f"of the paired rounds (goal <= 1.5)")
    guide_clients.load(args.fhir_base, RECORD_SUFFIX)
    record_patient = guide_clients.patient_id("threat-to-person", RECORD_SUFFIX)
    _app, client, lid = launched(args.launcher, counter, record_patient)
    csrf_token = csrf(client.get(f"/panel/{lid}/guide").get_data(as_text=True))
    mark = len(counter.calls)
    body = {"proposal": {**proposal(), "recipient": {"reference": "Organization/org-police-ca-1"},
                         "data": [{"reference": f"DocumentReference/dr-{record_patient}-note"}]},
            "proposal_id": str(uuid.uuid4()), "documentation": FIVE,
            "client_notice": {"status": "withheld", "reason": "bench: not safe to tell"}}
    started = time.perf_counter()
    recorded = client.post(f"/api/proposals/record?launch={lid}", json=body,
                           headers={"X-CSRF-Token": csrf_token})
    took = time.perf_counter() - started
    calls = counter.since(mark)
    transactions = [c for c in calls if c[0] == "POST" and c[1].rstrip("/").endswith("/fhir")]
    print(f"record for Patient/{record_patient} (HTTP {recorded.status_code}, "
          f"{took * 1000:.0f} ms): {len(transactions)} "
          f"transaction(s) written (goal 1), {len(calls) - len(transactions)} reads to decide "
          f"again on the chart as it is now")
    again = client.post(f"/api/proposals/record?launch={lid}", json=body,
                        headers={"X-CSRF-Token": csrf_token})
    print(f"the same record again: HTTP {again.status_code}, written "
          f"{again.get_json().get('written')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
