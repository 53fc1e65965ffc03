"""The scan's wiring: settings in, a ready Scanner out, and one run of it.

From the settings it builds the FHIR client and its authorization (none, or SMART Backend
Services with discovery), checks the server before anything is written (`preflight`), binds
the evaluator to the rules and the jurisdiction, resolved once per run, and opens the
checkpoint store. The command (commands/scan.py) and the scheduler both run a scan through
`run_scan`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from consent_gap.checkpoint import CheckpointStore
from consent_gap.commands.base import UsageError
from consent_gap.fhir.client import FhirClient
from consent_gap.fhir.errors import FhirError, FhirHttpError
from consent_gap.scan.scanner import DecideBatch, Scanner, ScanOptions, ScanSummary
from consent_gap.settings import Settings, load_settings, require

#: What the scan uses of the server (the CapabilityStatement must offer all of it).
SCAN_REQUIREMENTS = {
    "Patient": {"interactions": ["search-type"], "search": ["_id"],
                "revinclude": ["RelatedPerson:patient"]},
    "Consent": {"search": ["patient", "_lastUpdated"], "revinclude": ["Provenance:target"]},
    "AuditEvent": {"search": ["patient", "subtype", "_lastUpdated"],
                   "include": ["AuditEvent:entity", "AuditEvent:patient"],
                   "revinclude": ["DocumentReference:related"]},
    "Communication": {"interactions": ["create"], "search": ["recipient"]},
    "DocumentReference": {"interactions": ["create"]},
    "Provenance": {"interactions": ["create"]},
    "Device": {"interactions": ["create"], "search": ["identifier"]},
}


def make_auth(settings: Settings, session: Any) -> Any:
    """None for an open server; SMART Backend Services (discovery unless a token URL is set)."""
    if settings.auth == "none":
        return None
    from consent_gap.smart.backend import BackendServicesAuth
    from consent_gap.smart.discovery import discover
    from consent_gap.smart.keys import KeyFileError, load_signing_key

    require(settings, "fhir_base", "private_key")
    try:  # the key first: an unusable one stops the scan before any request
        key = load_signing_key(settings.private_key)
    except KeyFileError as error:
        raise KeyFileError(f"CONSENT_GAP_PRIVATE_KEY: {error}") from None
    token_url = settings.token_url or discover(settings.fhir_base, session).token_endpoint
    return BackendServicesAuth(token_url, settings.client_id, scope=settings.scopes, key=key)


def make_client(settings: Settings) -> FhirClient:
    import requests

    session = requests.Session()
    return FhirClient(settings.fhir_base or "", auth=make_auth(settings, session),
                      session=session)


def preflight(client: FhirClient, settings: Settings) -> None:
    """Refuse to start (exit 2) when the server lacks what the scan uses, or when a configured
    reference does not exist (every alert would be rejected). A server that fails to answer
    is a run-time failure (FhirError, exit 1) whose one line names the server."""
    try:
        missing = client.check_capabilities(SCAN_REQUIREMENTS)
    except FhirHttpError as error:
        raise FhirError(f"FHIR server {client.base_url}: {error}") from None
    if missing:
        raise UsageError("the FHIR server lacks what the scan needs: " + "; ".join(missing))
    for name in ("privacy_officer", "organization"):
        reference = getattr(settings, name)
        if not reference:
            continue
        rtype, rid = reference.split("/", 1)
        try:
            client.read(rtype, rid)
        except FhirHttpError as error:
            if error.status in (404, 410):
                raise UsageError(f"CONSENT_GAP_{name.upper()}: {reference} does not exist on "
                                 "the FHIR server") from None
            raise FhirError(f"FHIR server {client.base_url}: {error}") from None


def scan_settings(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Settings:
    """Settings with the command line applied over them."""
    return load_settings(environ).with_overrides(
        fhir_base=getattr(args, "fhir_base", None),
        auth=getattr(args, "auth", None),
        jurisdiction=getattr(args, "jurisdiction", None),
    )


def bound_evaluator(settings: Settings) -> DecideBatch:
    """The evaluator of this run: the rules loaded and the jurisdiction resolved now, so an
    unknown one fails before any request instead of in the first batch; its reports name
    what the alerts and notes mention (`named`)."""
    from consent_gap.evaluate import evaluator
    from consent_gap.mappings import MappingsError, load_rules
    from consent_gap.normalize import InputError

    try:
        rules = load_rules(settings.mappings)
    except MappingsError as error:
        raise UsageError(f"CONSENT_GAP_MAPPINGS: {error}") from None
    try:
        return evaluator(settings.jurisdiction, rules=rules, base=settings.fhir_base,
                         named=True)
    except InputError as error:
        raise UsageError(f"--jurisdiction / CONSENT_GAP_JURISDICTION: {error}") from None


def run_scan(settings: Settings, *, patients: Sequence[str] = (), since: str | None = None,
             full: bool = False, dry_run: bool = False, check: bool = True,
             progress_stream: TextIO | None = None,
             should_stop: Callable[[], bool] | None = None,
             bulk: bool = False, group: str | None = None, workers: int | None = None,
             dask_scheduler: str | None = None) -> ScanSummary:
    """One scan with these settings (used by the command and by the scheduler). `bulk`:
    read through Bulk Data export (scan/bulk.py), of the Group `group` if given, deciding on
    Dask when `workers` or `dask_scheduler` is given (scan/distributed.py)."""
    require(settings, "fhir_base")
    assert settings.fhir_base is not None
    evaluate = bound_evaluator(settings)
    store = CheckpointStore(settings.database_url)
    client = make_client(settings)
    try:
        if check:
            preflight(client, settings)
        options = ScanOptions(fhir_base=settings.fhir_base, patients=tuple(patients),
                              since=since, full=full, jurisdiction=settings.jurisdiction,
                              dry_run=dry_run, batch_size=settings.batch_size)
        common = {"privacy_officer": settings.privacy_officer,
                  "organization": settings.organization, "evaluator": evaluate,
                  "progress_stream": progress_stream, "should_stop": should_stop}
        if not bulk:
            return Scanner(client, store, options, **common).run()
        from consent_gap.scan.bulk import BulkScanner

        if not (workers or dask_scheduler):
            return BulkScanner(client, store, options, group=group,
                               database_url=settings.database_url,
                               max_wait=settings.bulk_max_wait, **common).run()
        from consent_gap.scan.distributed import dask_decider

        with dask_decider(evaluate, workers=workers, scheduler=dask_scheduler) as decide:
            return BulkScanner(client, store, options, group=group,
                               database_url=settings.database_url, decide_many=decide,
                               max_wait=settings.bulk_max_wait, **common).run()
    finally:
        client.close()
        store.close()
