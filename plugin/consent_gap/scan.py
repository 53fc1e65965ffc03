"""The nightly scan: select patients, fetch their records in batches, decide, write back,
checkpoint.

    consent-gap scan --fhir-base URL [--auth none|backend] [--patient ID ...]
                     [--since TIME | --full] [--jurisdiction US-XX] [--dry-run]
                     [--format text|json] [--status]

Selection: the patients named with ``--patient``; else, with ``--full``, every Patient; else
(incremental, the default) the patients with a disclosure, Consent, signing Provenance, or
someone's note or notice changed since ``--since`` or, by default, since the start of the last
successful run on this server (minus five minutes of overlap; with no such run the scan is
full).

Fetching (fhir/queries.py): per batch of patients (``CONSENT_GAP_BATCH_SIZE``) four searches,
each across the whole batch (``patient=a,b,c``), paged: Patients with their RelatedPersons;
Consents with the Provenance that signs them; disclosure AuditEvents with the resources they
name and the DocumentReferences that document them; Communications to the patients or their
representatives. The next batch is fetched while the current one is decided and written.

Writing: each finding's resources go in one transaction of conditional creates
(writeback.py); to save round trips, several findings share a transaction, and when the server
rejects one the scan retries that group one finding per transaction, reports the findings the
server still rejects, and writes the rest. A rerun writes nothing.

A dry run (``--dry-run``) decides everything and lists, per finding, the kind and identifier
of each resource it would create, without building or sending them (building and validating
every note costs about 1.6 ms per resource, more than fetching the charts).

Checkpointing: after each batch its patients are recorded as done with the batch's counts; a
scan that is killed and started again with the same selection resumes with the patients not
yet done. Only a run that finishes without error moves the incremental starting point.

Exit status: 0 the scan ran and wrote everything it had to (whatever it found); 1 errors
during the scan (a write rejected, the server unreachable...: the summary lists them; a
stopped run resumes next time); 2 bad usage or configuration (the message names the setting).
Logs and the summary carry ids and counts only: no names, notes or tokens.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from consent_gap import RULESET
from consent_gap.checkpoint import ERRORS, FAILED, OK, CheckpointStore, RunRecord
from consent_gap.domain import Finding
from consent_gap.fhir import queries
from consent_gap.fhir.client import FhirClient
from consent_gap.fhir.errors import FhirError, FhirHttpError, FhirTransactionError
from consent_gap.settings import Settings, SettingsError, load_settings, require
from consent_gap.writeback import (
    FindingWrites,
    WriteContext,
    device_resource,
    device_search,
    existing_searches,
    identifier_values,
    plan,
    preview,
    read_response,
    transaction,
    without,
)

log = logging.getLogger("consent_gap.scan")

#: Findings per write transaction; a rejected group is retried one finding at a time.
WRITE_GROUP = 20
#: Overlap when the incremental scan starts from the last good run (clock skew, slow commits).
OVERLAP = timedelta(minutes=5)
#: Seconds between progress log lines when stderr is not a terminal.
LOG_EVERY = 10.0
#: Matches per search page. HAPI loads at most 1,000 `_include`d resources per page and drops
#: the rest silently (its maximumIncludesToLoadPerPage): 500 disclosures with their entities
#: and notes overflow it, 100 stay well under.
PAGE_SIZE = 100

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """Bad arguments or configuration: exit 2 with one line."""


class ScanStopped(Exception):
    """Asked to stop (the scheduler got SIGTERM): the run ends between two batches, recorded
    as failed, and the next run of the same selection resumes it."""


# ------------------------------------------------------------------ what the scan needs

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


def fetch_batch(client: FhirClient, patient_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every resource the engine needs for these patients, each once (fhir/queries.py)."""
    return queries.fetch_charts(client, patient_ids, page_size=PAGE_SIZE)


def select_patients(client: FhirClient, since: str | None) -> list[str]:
    """Every patient (``since`` None), or those with a relevant change since then."""
    if since is None:
        return queries.all_patient_ids(client)
    return queries.changed_patient_ids(client, since, page_size=PAGE_SIZE)


# ------------------------------------------------------------------ progress

class Progress:
    """A bar on a terminal; a log line every LOG_EVERY seconds otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, done: int = 0) -> None:
        self.total = total
        self.done = done
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self.last_log = 0.0

    def advance(self, patients: int, findings: int, written: int) -> None:
        self.done += patients
        if self.tty:
            width = 30
            filled = int(width * self.done / self.total) if self.total else width
            self.stream.write(
                f"\rscan [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"patients, {findings} findings, {written} written"
            )
            self.stream.flush()
        elif time.monotonic() - self.last_log >= LOG_EVERY or self.done >= self.total:
            self.last_log = time.monotonic()
            log.info("scan progress: %d/%d patients, %d findings, %d resources written",
                     self.done, self.total, findings, written)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ------------------------------------------------------------------ the scan

@dataclass(frozen=True)
class ScanOptions:
    fhir_base: str
    patients: tuple[str, ...] = ()
    since: str | None = None
    full: bool = False
    jurisdiction: str | None = None
    dry_run: bool = False
    batch_size: int = 50
    write_group: int = WRITE_GROUP


@dataclass
class ScanSummary:
    """What a run did; also what ``--format json`` prints."""

    run: int | None = None
    status: str = OK
    fhir_base: str = ""
    mode: str = ""
    since: str | None = None
    dry_run: bool = False
    resumed: bool = False
    patients_selected: int = 0
    patients_done: int = 0
    patients_skipped: int = 0  # done by the run this one resumed
    disclosures: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)
    would_write: list[dict[str, str]] = field(default_factory=list)
    problems: int = 0
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "status": self.status,
            "fhir_base": self.fhir_base,
            "mode": self.mode,
            "since": self.since,
            "dry_run": self.dry_run,
            "resumed": self.resumed,
            "patients": {"selected": self.patients_selected, "done": self.patients_done,
                         "skipped_as_done": self.patients_skipped},
            "disclosures": self.disclosures,
            "decisions": dict(sorted(self.decisions.items())),
            "written": dict(sorted(self.written.items())),
            "would_write": self.would_write,
            "problems": self.problems,
            "errors": self.errors,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
        }

    def to_text(self) -> str:
        decisions = ", ".join(f"{k} {v}" for k, v in sorted(self.decisions.items())) or "none"
        verb = "would write" if self.dry_run else "written"
        count = len(self.would_write) if self.dry_run else sum(self.written.values())
        lines = [
            f"scan {self.status}: {self.fhir_base} ({self.mode}"
            + (f" since {self.since}" if self.since else "")
            + (", dry run" if self.dry_run else "")
            + (", resumed" if self.resumed else "") + ")",
            f"  patients: {self.patients_done} of {self.patients_selected}"
            + (f" ({self.patients_skipped} done before resuming)" if self.patients_skipped
               else ""),
            f"  disclosures: {self.disclosures}; decisions: {decisions}",
            f"  resources {verb}: {count}"
            + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(self.written.items())) + ")"
               if self.written and not self.dry_run else ""),
            f"  unreadable resources: {self.problems}; errors: {len(self.errors)}",
            f"  {self.requests} HTTP requests in {self.seconds:.1f} s",
        ]
        if self.dry_run:
            lines += [
                f"  would write {row['resourceType']} ({row['kind']}) for {row['disclosure']}: "
                f"{row['identifier']}"
                for row in self.would_write
            ]
        lines += [f"  error: {error}" for error in self.errors]
        return "\n".join(lines) + "\n"


Evaluator = Callable[[list[dict[str, Any]], str | None], Any]


def _default_evaluator(mappings: Any = None) -> Evaluator:
    from consent_gap.evaluate import evaluate
    from consent_gap.mappings import load_rules

    rules = load_rules(mappings) if mappings else None

    def run(resources: list[dict[str, Any]], jurisdiction: str | None) -> Any:
        return evaluate(resources, jurisdiction, rules=rules)

    return run


def _selection_key(mode: str, since: str | None, patients: Sequence[str],
                   jurisdiction: str | None) -> str:
    text = json.dumps([mode, since, sorted(patients), jurisdiction, RULESET])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _instant(text: str) -> str:
    """--since as a UTC instant ``YYYY-MM-DDTHH:MM:SSZ`` (a date means its first instant)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since: not a date or date-time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


class Scanner:
    """One scan run. Collaborators are injected so tests can drive it without a server."""

    def __init__(
        self,
        client: FhirClient,
        store: CheckpointStore,
        options: ScanOptions,
        *,
        privacy_officer: str | None = None,
        organization: str | None = None,
        evaluator: Evaluator | None = None,
        progress_stream: TextIO | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.options = options
        self.privacy_officer = privacy_officer
        self.organization = organization
        self.evaluate = evaluator or _default_evaluator()
        self.progress_stream = progress_stream
        self.should_stop = should_stop or (lambda: False)

    # -- the run

    def run(self) -> ScanSummary:
        started = time.monotonic()
        before = self.client.request_count
        options = self.options
        summary = ScanSummary(fhir_base=options.fhir_base, dry_run=options.dry_run)
        mode, since = self._mode_and_since()
        summary.mode, summary.since = mode, since
        key = _selection_key(mode, since, options.patients, options.jurisdiction)
        run = self._open_run(key, mode, since, summary)
        try:
            patients = self._select(mode, since)
            done = self.store.done_patients(run.id) if summary.resumed else set()
            todo = [p for p in patients if p not in done]
            summary.patients_selected = len(patients)
            summary.patients_skipped = len(patients) - len(todo)
            self.store.set_total(run.id, len(patients))
            context = self._context()
            self._scan(run, todo, context, summary)
        except (FhirError, OSError, ScanStopped) as error:
            summary.errors.append(f"scan stopped: {error}")
            summary.status = FAILED
            log.error("scan stopped after %d patients: %s", summary.patients_done, error)
        except BaseException:
            # Killed by Ctrl-C or SIGTERM: the run stays resumable.
            self.store.finish(run.id, FAILED, ["scan interrupted"])
            raise
        else:
            summary.status = ERRORS if summary.errors else OK
        record = self.store.finish(run.id, summary.status,
                                   summary.errors[-1:] if summary.status == FAILED else ())
        summary.run = record.id
        summary.requests = self.client.request_count - before
        summary.seconds = time.monotonic() - started
        log.info("scan %s: run %s, %d/%d patients, %d disclosures, %d written, %d errors, "
                 "%d requests, %.1f s", summary.status, record.id, summary.patients_done,
                 summary.patients_selected, summary.disclosures, sum(summary.written.values()),
                 len(summary.errors), summary.requests, summary.seconds)
        return summary

    def _mode_and_since(self) -> tuple[str, str | None]:
        options = self.options
        if options.patients:
            return "patients", None
        if options.full:
            return "full", None
        if options.since:
            return "incremental", _instant(options.since)
        last = self.store.last_success(options.fhir_base)
        if last is None:
            return "full", None
        moment = datetime.fromisoformat(last.replace("Z", "+00:00")) - OVERLAP
        return "incremental", moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _open_run(self, key: str, mode: str, since: str | None,
                  summary: ScanSummary) -> RunRecord:
        options = self.options
        if not options.dry_run:
            previous = self.store.resumable(options.fhir_base, key)
            if previous is not None:
                summary.resumed = True
                log.info("resuming run %d (%d patients done)", previous.id,
                         previous.patients_done)
                return self.store.reopen(previous.id)
        return self.store.start(options.fhir_base, selection=key, mode=mode, since=since,
                                jurisdiction=options.jurisdiction, dry_run=options.dry_run)

    def _select(self, mode: str, since: str | None) -> list[str]:
        if mode == "patients":
            return sorted({p.removeprefix("Patient/") for p in self.options.patients})
        return select_patients(self.client, since if mode == "incremental" else None)

    def _context(self) -> WriteContext:
        return WriteContext(privacy_officer=self.privacy_officer,
                            organization=self.organization, device=self._device())

    def _device(self) -> str | None:
        """The app's Device: created once (conditionally); in a dry run only looked up."""
        if self.options.dry_run:
            rtype, params = device_search()
            for resource in self.client.search(rtype, params):
                return f"Device/{resource['id']}"
            return None
        rtype, params = device_search()
        created = self.client.conditional_create(
            device_resource(), "&".join(f"{k}={v}" for k, v in params.items()))
        return f"Device/{created.resource['id']}"

    def _scan(self, run: RunRecord, todo: list[str], context: WriteContext,
              summary: ScanSummary) -> None:
        progress = Progress(len(todo) + summary.patients_skipped, self.progress_stream,
                            done=summary.patients_skipped)
        batches = list(_batches(todo, self.options.batch_size))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
            pending: Future | None = (
                pool.submit(fetch_batch, self.client, batches[0]) if batches else None
            )
            for index, batch in enumerate(batches):
                assert pending is not None
                resources = pending.result()
                if self.should_stop():
                    raise ScanStopped("scan stopped on request; the next run resumes it")
                pending = (pool.submit(fetch_batch, self.client, batches[index + 1])
                           if index + 1 < len(batches) else None)
                self._batch(run, batch, resources, context, summary)
                progress.advance(len(batch), sum(summary.decisions.values()),
                                 sum(summary.written.values()))
        progress.close()

    def _batch(self, run: RunRecord, batch: list[str], resources: list[dict[str, Any]],
               context: WriteContext, summary: ScanSummary) -> None:
        report = self.evaluate(resources, self.options.jurisdiction)
        findings: list[Finding] = list(report.findings)
        decisions = Counter(str(f.decision) for f in findings)
        written: Counter[str] = Counter()
        errors: list[str] = []
        if self.options.dry_run:
            for finding in findings:
                summary.would_write += preview(finding, context.ruleset)
        else:
            groups = [group for group in (plan(f, context) for f in findings) if group]
            written, errors = self._write(groups, context)
        summary.disclosures += len(findings)
        summary.decisions.update(decisions)
        summary.written.update(written)
        summary.problems += len(getattr(report, "problems", ()))
        summary.errors += errors
        summary.patients_done += len(batch)
        self.store.record_batch(run.id, patients=batch, disclosures=len(findings),
                                decisions=decisions, written=written, errors=errors)

    def _write(self, groups: list[FindingWrites],
               context: WriteContext) -> tuple[Counter[str], list[str]]:
        """Write the groups, several findings per transaction; isolate rejections."""
        written: Counter[str] = Counter()
        errors: list[str] = []
        groups = self._missing(groups)
        size = max(1, self.options.write_group)
        for start in range(0, len(groups), size):
            chunk = groups[start:start + size]
            try:
                written.update(self._send(chunk, context))
            except FhirTransactionError as error:
                if len(chunk) == 1:
                    errors.append(self._rejected(chunk[0], error))
                    continue
                log.warning("a transaction of %d findings was rejected (HTTP %s); writing "
                            "them one by one", len(chunk), error.status)
                for group in chunk:
                    try:
                        written.update(self._send([group], context))
                    except FhirTransactionError as single:
                        errors.append(self._rejected(group, single))
        return written, errors

    def _missing(self, groups: list[FindingWrites]) -> list[FindingWrites]:
        """Drop the writes already on the server: a nightly rerun then costs one search per
        resource type and batch instead of a transaction per group of findings."""
        present: set[str] = set()
        for rtype, params in existing_searches(groups):
            present |= identifier_values(self.client.search(rtype, params, page_size=PAGE_SIZE))
        if not present:
            return groups
        return [left for left in (without(group, present) for group in groups) if left]

    def _send(self, groups: list[FindingWrites], context: WriteContext) -> Counter[str]:
        bundle = transaction(groups, context)
        if bundle is None:
            return Counter()
        outcome = read_response(self.client.transaction(bundle), groups, context)
        return Counter(outcome.created)

    @staticmethod
    def _rejected(group: FindingWrites, error: FhirHttpError) -> str:
        kinds = ", ".join(str(write.kind) for write in group.writes)
        message = f"{group.finding.disclosure}: write of {kinds} rejected: {error}"
        log.error("%s", message)
        return message


# ------------------------------------------------------------------ wiring and the command

def make_auth(settings: Settings, session: Any) -> Any:
    """None for an open server; SMART Backend Services (discovery unless a token URL is set)."""
    if settings.auth == "none":
        return None
    from consent_gap.smart.backend import BackendServicesAuth
    from consent_gap.smart.discovery import discover

    require(settings, "fhir_base", "private_key")
    token_url = settings.token_url or discover(settings.fhir_base, session).token_endpoint
    return BackendServicesAuth(token_url, settings.client_id, str(settings.private_key),
                               settings.scopes)


def make_client(settings: Settings) -> FhirClient:
    import requests

    session = requests.Session()
    return FhirClient(settings.fhir_base or "", auth=make_auth(settings, session),
                      session=session)


def preflight(client: FhirClient, settings: Settings) -> None:
    """Refuse to start (exit 2) when the server lacks what the scan uses, or when a configured
    reference does not exist (every alert would be rejected)."""
    missing = client.check_capabilities(SCAN_REQUIREMENTS)
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
            raise


def scan_settings(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Settings:
    """Settings with the command line applied over them."""
    settings = load_settings(environ).with_overrides(
        fhir_base=getattr(args, "fhir_base", None),
        auth=getattr(args, "auth", None),
        jurisdiction=getattr(args, "jurisdiction", None),
    )
    return settings


def run_scan(settings: Settings, *, patients: Sequence[str] = (), since: str | None = None,
             full: bool = False, dry_run: bool = False, check: bool = True,
             progress_stream: TextIO | None = None,
             should_stop: Callable[[], bool] | None = None) -> ScanSummary:
    """One scan with these settings (used by the command and by the scheduler)."""
    require(settings, "fhir_base")
    assert settings.fhir_base is not None
    from consent_gap.mappings import MappingsError

    try:
        evaluator = _default_evaluator(settings.mappings)
    except MappingsError as error:
        raise UsageError(f"CONSENT_GAP_MAPPINGS: {error}") from None
    try:
        evaluator([], settings.jurisdiction)  # an unknown jurisdiction fails now, not mid-scan
    except ValueError as error:
        raise UsageError(f"--jurisdiction / CONSENT_GAP_JURISDICTION: {error}") from None
    store = CheckpointStore(settings.database_url)
    client = make_client(settings)
    try:
        if check:
            preflight(client, settings)
        scanner = Scanner(
            client,
            store,
            ScanOptions(fhir_base=settings.fhir_base, patients=tuple(patients), since=since,
                        full=full, jurisdiction=settings.jurisdiction, dry_run=dry_run,
                        batch_size=settings.batch_size),
            privacy_officer=settings.privacy_officer,
            organization=settings.organization,
            evaluator=evaluator,
            progress_stream=progress_stream,
            should_stop=should_stop,
        )
        return scanner.run()
    finally:
        client.close()
        store.close()


def configure_logging() -> None:
    """Progress and outcome lines on standard error (ids and counts only)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_command(name: str, body: Callable[[], int]) -> int:
    """Run a command's body with logging set up, turning the failures a user can act on into
    one line on standard error and an exit code: 2 for a setting, argument or key file to fix,
    1 for a server that failed or could not be discovered. Shared by ``scan`` and
    ``schedule`` so that both report and exit alike."""
    from consent_gap.smart.discovery import DiscoveryError
    from consent_gap.smart.keys import KeyFileError

    configure_logging()
    try:
        return body()
    except (SettingsError, UsageError, KeyFileError) as error:
        print(f"consent-gap {name}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (FhirError, DiscoveryError) as error:
        print(f"consent-gap {name}: {error}", file=sys.stderr)
        return EXIT_ERRORS


def run(args: argparse.Namespace) -> int:
    """``consent-gap scan`` (arguments declared in cli.py)."""
    return run_command("scan", lambda: _scan_command(args))


def _scan_command(args: argparse.Namespace) -> int:
    settings = scan_settings(args)
    if args.status:
        return print_status(settings, args.format)
    if args.patient and (args.since or args.full):
        raise UsageError("--patient cannot be combined with --since or --full")
    summary = run_scan(settings, patients=args.patient, since=args.since, full=args.full,
                       dry_run=args.dry_run)
    if args.format == "json":
        json.dump(summary.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(summary.to_text())
    return EXIT_OK if summary.status == OK else EXIT_ERRORS


def print_status(settings: Settings, fmt: str, stream: TextIO | None = None) -> int:
    """The last run on this server (or any server when none is configured)."""
    out = stream or sys.stdout
    store = CheckpointStore(settings.database_url)
    try:
        runs = store.last_runs(settings.fhir_base, limit=1)
        last_ok = store.last_success(settings.fhir_base) if settings.fhir_base else None
    finally:
        store.close()
    if not runs:
        print("no scan has run yet" + (f" on {settings.fhir_base}" if settings.fhir_base else ""),
              file=out)
        return EXIT_OK
    record = runs[0].to_json()
    record["last_successful_start"] = last_ok
    if fmt == "json":
        json.dump(record, out, indent=2)
        out.write("\n")
    else:
        print(f"last run {record['run']} on {record['fhir_base']}: {record['status']} "
              f"({record['mode']}{', dry run' if record['dry_run'] else ''})", file=out)
        print(f"  started {record['started']}, finished {record['finished'] or '-'}", file=out)
        print(f"  patients {record['patients']['done']}/{record['patients']['total']}, "
              f"disclosures {record['disclosures']}, decisions {record['decisions']}", file=out)
        print(f"  written {record['written']}, errors {record['errors']['count']}", file=out)
        for message in record["errors"]["messages"][:10]:
            print(f"  error: {message}", file=out)
        print(f"  last successful run started {last_ok or 'never'}", file=out)
    return EXIT_OK
