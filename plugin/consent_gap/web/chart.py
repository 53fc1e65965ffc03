"""The launched patient's chart: tokens kept fresh, the FHIR reads the panel needs, the report.

I/O lives here (the FHIR server, the token endpoint); the deciding is the engine's
``evaluate``. The reads run concurrently (one round for the patient's own resources, a second
for what those reference) so that the panel costs little more than the bare reads.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import requests

from consent_gap import fetch_plan
from consent_gap.fhir import BearerAuth, FhirClient, FhirError

from . import oauth, services
from .config import WebConfig
from .context import Launch, save_launch

log = logging.getLogger(__name__)

PAGE_SIZE = 200


class SessionExpired(Exception):
    """The access token has run out and cannot be refreshed: the user must launch again."""


@dataclass(frozen=True)
class ChartData:
    patient_id: str
    resources: list[dict[str, Any]]


def fresh_launch(launch: Launch, config: WebConfig, http: requests.Session) -> Launch:
    """The launch with a token good for at least another minute, refreshed (and saved in the
    session) when it is about to expire; SessionExpired when that is impossible."""
    if not launch.expiring():
        return launch
    if not launch.refresh_token:
        raise SessionExpired("token expired and no refresh token")
    try:
        tokens = oauth.refresh(config, http, launch.token_endpoint, launch.token_set())
    except oauth.SignInFailed as error:
        raise SessionExpired(str(error)) from None
    updated = replace(
        launch,
        access_token=tokens.access_token,
        expires_at=tokens.expires_at,
        refresh_token=tokens.refresh_token,
        scope=tokens.scope or launch.scope,
    )
    save_launch(updated)
    log.info("access token refreshed for launch %s", launch.lid)
    return updated


def client_for(launch: Launch) -> FhirClient:
    """A FHIR client on the launch's issuer, authenticated with its (fresh) access token."""
    config = services.config()
    http = services.http()
    launch = fresh_launch(launch, config, http)
    return FhirClient(launch.iss, auth=BearerAuth(launch.access_token), session=http,
                      timeout=config.http_timeout, retries=2)


def registered_device(client: FhirClient) -> str | None:
    """The app's Device as the scan or the `consent-gap` command registered it ("Device/<id>"),
    looked up and never created here: a Device is in no patient's compartment, so a strict EHR
    refuses it to the panel's patient/ scopes. None when none is registered yet; the write
    then creates it inline, which only a lenient EHR allows."""
    from consent_gap.writeback import device_search

    rtype, params = device_search()
    for resource in client.search(rtype, params):
        if resource.get("resourceType") == rtype and resource.get("id"):
            return f"{rtype}/{resource['id']}"
    return None


def fetch_chart(client: FhirClient, patient_id: str, *, rules: Any = None,
                workers: int = 6) -> ChartData:
    """Everything the engine needs about one patient, read by the one fetch plan's
    one-patient runner (fetch_plan.py) with the codes of the rules in use."""
    codes = fetch_plan.ChartCodes.from_rules(rules) if rules is not None else None
    return ChartData(patient_id, fetch_plan.fetch_patient_chart(
        client, patient_id, codes=codes, workers=workers, page_size=PAGE_SIZE))


def _decide(client: FhirClient, launch: Launch, jurisdiction: str | None,
            rules: Any) -> tuple[ChartData, Any]:
    """Fetch and decide; runs in the request or in the prefetch pool (no Flask context)."""
    from consent_gap.evaluate import evaluate

    started = time.perf_counter()
    with client:
        chart = fetch_chart(client, launch.patient or "", rules=rules)
    fetched = time.perf_counter()
    report = evaluate(chart.resources, jurisdiction, rules=rules, base=launch.iss)
    log.info(
        "chart for launch %s: %d resources, %d findings, fetch %.0f ms, decide %.0f ms",
        launch.lid, len(chart.resources), len(report.findings),
        (fetched - started) * 1000, (time.perf_counter() - fetched) * 1000,
    )
    return chart, report


class Prefetcher:
    """Starts a launch's first fetch-and-decide as soon as its token arrives (at /callback),
    so that it overlaps the redirect to the panel; the panel then takes the result instead of
    starting over. Per process: a panel request served by another worker fetches for itself.
    Results are taken once and expire after ``ttl`` seconds, so nothing stale is shown."""

    def __init__(self, workers: int = 4, ttl: float = 20.0) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prefetch")
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[float, Future]] = {}
        self.ttl = ttl

    def start(self, launch: Launch) -> None:
        config = services.config()
        if not launch.patient:
            return
        try:
            client = client_for(launch)
        except SessionExpired:
            return  # the panel will say the session ended
        future = self._pool.submit(_decide, client, launch, config.jurisdiction,
                                   _rules(config))
        now = time.monotonic()
        with self._lock:
            for lid in [k for k, (t, _) in self._pending.items() if now - t > self.ttl]:
                del self._pending[lid]
            self._pending[launch.lid] = (now, future)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for every prefetch started so far (shutdown, tests)."""
        with self._lock:
            futures = [future for _, future in self._pending.values()]
        wait(futures, timeout=timeout)  # failures are reported to whoever takes them

    def take(self, lid: str) -> Future | None:
        with self._lock:
            entry = self._pending.pop(lid, None)
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return None
        return entry[1]


def load_report(launch: Launch) -> tuple[ChartData, Any]:
    """The launched patient's chart and its engine Report: the prefetched ones right after
    the launch, else fetched and decided now."""
    config = services.config()
    if not launch.patient:
        raise FhirError("the launch has no patient")
    prefetcher = services.prefetcher()
    future = prefetcher.take(launch.lid) if prefetcher else None
    if future is not None:
        return future.result()
    return _decide(client_for(launch), launch, config.jurisdiction, _rules(config))


def _rules(config: WebConfig) -> Any:
    if config.mappings is None:
        return None
    from consent_gap.mappings import load_rules

    return load_rules(config.mappings)
