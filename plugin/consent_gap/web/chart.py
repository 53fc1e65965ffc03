"""The launched patient's chart: tokens kept fresh, the FHIR reads the panel needs, the report.

I/O lives here (the FHIR server, the token endpoint); the deciding is the engine's
``evaluate``. The reads run concurrently (one round for the patient's own resources, a second
for what those reference) so that the panel costs little more than the bare reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import requests
from flask import current_app

from consent_gap.fhir import BearerAuth, FhirClient, FhirError
from consent_gap.fhir.queries import Key, chunks, collect, tolerant_search, wanted_references

from . import oauth
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
    config: WebConfig = current_app.extensions["consent_gap"]
    http: requests.Session = current_app.extensions["consent_gap.http"]
    launch = fresh_launch(launch, config, http)
    return FhirClient(launch.iss, auth=BearerAuth(launch.access_token), session=http,
                      timeout=config.http_timeout, retries=2)


def _search(client: FhirClient, rtype: str, params: dict[str, str]) -> list[dict[str, Any]]:
    return list(client.search(rtype, params, page_size=PAGE_SIZE))


def _tolerant(client: FhirClient, rtype: str, params: dict[str, str]) -> list[dict[str, Any]]:
    return tolerant_search(client, rtype, params, PAGE_SIZE)


def fetch_chart(client: FhirClient, patient_id: str, *, workers: int = 6) -> ChartData:
    """Everything the engine needs about one patient, as resource dicts (each once).

    Round 1: the Patient, their Consents, disclosure AuditEvents, DocumentReferences,
    Communications (by subject and by recipient) and RelatedPersons. Round 2: the Provenance
    that signs each Consent, and what round 1 references but did not bring, as the scan's
    `wanted_references` defines it (disclosed records, legal instruments, recipients who are
    RelatedPersons, the RelatedPersons a Consent or notice names): without them a disclosed
    entity is unresolved (CONTRACT 1.1) and the decision would differ. Every search names the
    patient, as a patient-scoped server (or the launcher's proxy) refuses one that does not.
    """
    ref = f"Patient/{patient_id}"
    round_one: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "patient": lambda: [client.read("Patient", patient_id)],
        "consents": lambda: _search(client, "Consent", {"patient": ref}),
        "audit": lambda: _search(client, "AuditEvent", {"patient": ref}),
        "documents": lambda: _search(client, "DocumentReference", {"patient": ref}),
        "comm_subject": lambda: _search(client, "Communication", {"patient": ref}),
        # Notices sent to the patient without a subject; a patient-scoped server may refuse
        # a search not narrowed by patient=, and then the subject search above is all there is.
        "comm_recipient": lambda: _tolerant(client, "Communication", {"recipient": ref}),
        "related": lambda: _tolerant(client, "RelatedPerson", {"patient": ref}),
    }
    found: dict[Key, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(call) for name, call in round_one.items()}
        got = {name: future.result() for name, future in futures.items()}
        for resources in got.values():
            collect(found, resources)
        consent_refs = [f"Consent/{c['id']}" for c in got["consents"] if c.get("id")]
        wanted: dict[str, list[str]] = {}
        for rtype, rid in sorted(wanted_references(found) - found.keys()):
            wanted.setdefault(rtype, []).append(rid)
        round_two = [
            pool.submit(_search, client, "Provenance", {"target": ",".join(chunk)})
            for chunk in chunks(consent_refs)
        ] + [
            pool.submit(_tolerant, client, rtype, _by_id(rtype, chunk, ref))
            for rtype, ids in wanted.items()
            for chunk in chunks(ids)
        ]
        for future in round_two:
            collect(found, future.result())
    return ChartData(patient_id, list(found.values()))


# Types whose search takes `patient` (so a patient-scoped server accepts the search by id).
_PATIENT_SEARCH = frozenset({
    "DocumentReference", "Observation", "Condition", "Communication", "RelatedPerson",
    "Procedure", "MedicationRequest", "MedicationStatement", "Encounter", "DiagnosticReport",
    "CarePlan", "AllergyIntolerance", "Immunization", "ServiceRequest", "QuestionnaireResponse",
})


def _by_id(rtype: str, ids: list[str], patient_ref: str) -> dict[str, str]:
    params = {"_id": ",".join(ids)}
    if rtype in _PATIENT_SEARCH:
        params["patient"] = patient_ref
    return params


def _decide(client: FhirClient, launch: Launch, jurisdiction: str | None,
            rules: Any) -> tuple[ChartData, Any]:
    """Fetch and decide; runs in the request or in the prefetch pool (no Flask context)."""
    from consent_gap.evaluate import evaluate

    started = time.perf_counter()
    with client:
        chart = fetch_chart(client, launch.patient or "")
    fetched = time.perf_counter()
    report = evaluate(chart.resources, jurisdiction, rules=rules)
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
        config: WebConfig = current_app.extensions["consent_gap"]
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
    config: WebConfig = current_app.extensions["consent_gap"]
    if not launch.patient:
        raise FhirError("the launch has no patient")
    prefetcher: Prefetcher | None = current_app.extensions.get("consent_gap.prefetch")
    future = prefetcher.take(launch.lid) if prefetcher else None
    if future is not None:
        return future.result()
    return _decide(client_for(launch), launch, config.jurisdiction, _rules(config))


def _rules(config: WebConfig) -> Any:
    if config.mappings is None:
        return None
    from consent_gap.mappings import load_rules

    return load_rules(config.mappings)


def fetch_referenced(client: FhirClient, resources: list[dict[str, Any]], patient_id: str
                     ) -> list[dict[str, Any]]:
    """What `resources` name but do not hold, as `fetch_chart`'s second round fetches it
    (the scan's `wanted_references`, by `_id`, the patient named where the type allows):
    for a chart that came from elsewhere (a CDS client's prefetch whose server ignored an
    `_include`). Refused or absent reads are left out; the engine reports them unresolved."""
    found: dict[Key, dict[str, Any]] = {}
    collect(found, resources)
    wanted: dict[str, list[str]] = {}
    for rtype, rid in sorted(wanted_references(found) - found.keys()):
        wanted.setdefault(rtype, []).append(rid)
    ref = f"Patient/{patient_id}"
    added: list[dict[str, Any]] = []
    for rtype, ids in wanted.items():
        for chunk in chunks(ids):
            added += [r for r in _tolerant(client, rtype, _by_id(rtype, chunk, ref))
                      if r.get("resourceType") != "OperationOutcome"]
    return added
