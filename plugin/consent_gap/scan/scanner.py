"""The scanner: one run over the selected patients, batch by batch: fetch, decide, write
back, checkpoint.

Fetching (fetch_plan.py): per batch of patients (``CONSENT_GAP_BATCH_SIZE``) five searches,
each across the whole batch (``patient=a,b,c``), paged: Patients with their RelatedPersons;
Consents with the Provenance that signs them; disclosure AuditEvents with the resources they
name and the DocumentReferences that document them; Communications on a disclosure channel
with theirs; Communications to the patients or their representatives. The next batch is
fetched while the current one is decided and written.

Writing: first the scan finds which of the batch's writes are on the server already (those
its fetch returned, then a look-up by identifier for the rest), and builds only the others;
each finding's remaining resources go in one transaction of conditional creates with one
Provenance targeting them all (writeback/). To save round trips, several findings share a
transaction, and when the server rejects one the scan retries that group one finding per
transaction, reports the findings the server still rejects, and writes the rest. A rerun, a
retried transaction or a resumed scan writes nothing twice.

A dry run decides everything, looks up what is on the server exactly as the real run does,
and lists per finding the kind and identifier of each resource the real run would create,
and its Provenance, without building or sending anything; the Device when it is missing.

Checkpointing: after each batch its patients are recorded as done with the batch's counts; a
scan that is killed and started again with the same selection (selectors.py) resumes with the
patients not yet done. Only a run that finishes without error moves the incremental starting
point.

Collaborators (client, checkpoint store, the bound evaluator) are injected: wiring.py builds
them from the settings, tests pass fakes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from consent_gap import fetch_plan
from consent_gap.checkpoint import ERRORS, FAILED, OK, CheckpointStore, RunRecord
from consent_gap.domain import Finding
from consent_gap.fhir.client import FhirClient
from consent_gap.fhir.errors import FhirError, FhirHttpError, FhirTransactionError
from consent_gap.mappings import load_rules
from consent_gap.scan import selectors
from consent_gap.scan.output import Progress
from consent_gap.writeback import (
    FindingWrites,
    WriteContext,
    device_resource,
    device_search,
    plan,
    planned_values,
    preview,
    provenance_key,
    provenance_searches,
    provenance_targets,
    read_response,
    tasks,
    transaction,
    written_values,
)

log = logging.getLogger("consent_gap.scan")

#: Findings per write transaction; a rejected group is retried one finding at a time.
WRITE_GROUP = 20
#: Matches per search page. HAPI loads at most 1,000 `_include`d resources per page and drops
#: the rest silently (its maximumIncludesToLoadPerPage): 500 disclosures with their entities
#: and notes overflow it, 100 stay well under.
PAGE_SIZE = 100


class ScanStopped(Exception):
    """Asked to stop (the scheduler got SIGTERM): the run ends between two batches, recorded
    as failed, and the next run of the same selection resumes it."""


def fetch_batch(client: FhirClient, patient_ids: Sequence[str],
                codes: fetch_plan.ChartCodes | None = None) -> list[dict[str, Any]]:
    """Every resource the engine needs for these patients, each once (fetch_plan.py), with
    the codes of the run's rules (the shipped ones when None)."""
    return fetch_plan.fetch_charts(client, patient_ids, codes=codes, page_size=PAGE_SIZE)


@dataclass(frozen=True)
class ScanOptions:
    """What to scan and how: the selection's options (selectors.py) and the batch sizes."""

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


#: The pipeline bound to the run's rules and jurisdiction (evaluate.evaluator): resources in,
#: a Report out.
DecideBatch = Callable[[list[dict[str, Any]]], Any]


def _default_evaluator(jurisdiction: str | None, base: str) -> DecideBatch:
    from consent_gap.evaluate import evaluator

    return evaluator(jurisdiction, base=base, named=True)


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
        evaluator: DecideBatch | None = None,
        progress_stream: TextIO | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.options = options
        self.privacy_officer = privacy_officer
        self.organization = organization
        self.evaluate = evaluator or _default_evaluator(options.jurisdiction, options.fhir_base)
        rules = getattr(self.evaluate, "rules", None)
        self.codes = fetch_plan.ChartCodes.from_rules(rules) if rules is not None else None
        self.ruleset = (rules if rules is not None else load_rules()).ruleset
        self.progress_stream = progress_stream
        self.should_stop = should_stop or (lambda: False)
        self._tasks_searchable = True

    # -- the run

    def run(self) -> ScanSummary:
        started = time.monotonic()
        before = self.client.request_count
        options = self.options
        summary = ScanSummary(fhir_base=options.fhir_base, dry_run=options.dry_run)
        selection = selectors.choose(
            patients=options.patients, full=options.full, since=options.since,
            last_success=self.store.last_success(options.fhir_base))
        summary.mode, summary.since = selection.mode, selection.since
        run = self._open_run(selection, summary)

        def body() -> None:
            patients = selectors.patients(self.client, selection, options.patients,
                                          page_size=PAGE_SIZE)
            todo = self._todo(run, patients, summary)
            self._scan(run, todo, self._context(summary), summary)

        record = self._finished(run, summary, body, "scan")
        summary.run = record.id
        summary.requests = self.client.request_count - before
        summary.seconds = time.monotonic() - started
        log.info("scan %s: run %s, %d/%d patients, %d disclosures, %d written, %d errors, "
                 "%d requests, %.1f s", summary.status, record.id, summary.patients_done,
                 summary.patients_selected, summary.disclosures, sum(summary.written.values()),
                 len(summary.errors), summary.requests, summary.seconds)
        return summary

    def _open_run(self, selection: selectors.Selection, summary: ScanSummary,
                  named: Sequence[str] | None = None) -> RunRecord:
        """Reopen the stopped run of the same selection (not in a dry run), else start one.
        `named`: what else the selection covers (default: the --patient ids)."""
        options = self.options
        key = selectors.selection_key(selection, options.patients if named is None else named,
                                      options.jurisdiction, self.ruleset)
        if not options.dry_run:
            previous = self.store.resumable(options.fhir_base, key)
            if previous is not None:
                summary.resumed = True
                log.info("resuming run %d (%d patients done)", previous.id,
                         previous.patients_done)
                return self.store.reopen(previous.id)
        return self.store.start(options.fhir_base, selection=key, mode=selection.mode,
                                since=selection.since, jurisdiction=options.jurisdiction,
                                dry_run=options.dry_run)

    def _finished(self, run: RunRecord, summary: ScanSummary, body: Callable[[], None],
                  what: str) -> RunRecord:
        """Run `body` and record how the run ended: a server, file or stop request ends it as
        failed (resumable, summary says why), Ctrl-C or SIGTERM records it interrupted and
        re-raises; else ok, or errors when some findings could not be written."""
        try:
            body()
        except (FhirError, OSError, ScanStopped) as error:
            summary.errors.append(f"scan stopped: {error}")
            summary.status = FAILED
            log.error("%s stopped after %d patients: %s", what, summary.patients_done, error)
        except BaseException:
            # Killed by Ctrl-C or SIGTERM: the run stays resumable.
            self.store.finish(run.id, FAILED, ["scan interrupted"])
            raise
        else:
            summary.status = ERRORS if summary.errors else OK
        return self.store.finish(run.id, summary.status,
                                 summary.errors[-1:] if summary.status == FAILED else ())

    def _todo(self, run: RunRecord, patients: list[str], summary: ScanSummary) -> list[str]:
        """The selected patients a resumed run has not done yet; counts them in the summary
        and the checkpoint."""
        done = self.store.done_patients(run.id) if summary.resumed else set()
        todo = [p for p in patients if p not in done]
        summary.patients_selected = len(patients)
        summary.patients_skipped = len(patients) - len(todo)
        self.store.set_total(run.id, len(patients))
        return todo

    def _context(self, summary: ScanSummary) -> WriteContext:
        return WriteContext(privacy_officer=self.privacy_officer,
                            organization=self.organization, device=self._device(summary),
                            ruleset=self.ruleset)

    def _device(self, summary: ScanSummary) -> str | None:
        """The app's Device: created once (conditionally) and counted when created; in a dry
        run only looked up, and listed when the real run would create it."""
        rtype, params = device_search()
        if self.options.dry_run:
            for resource in self.client.search(rtype, params):
                return f"Device/{resource['id']}"
            summary.would_write.append({"disclosure": "", "kind": "device",
                                        "resourceType": "Device",
                                        "identifier": params["identifier"]})
            return None
        created = self.client.conditional_create(
            device_resource(), "&".join(f"{k}={v}" for k, v in params.items()))
        if created.created:
            summary.written["Device"] += 1
        return f"Device/{created.resource['id']}"

    def _scan(self, run: RunRecord, todo: list[str], context: WriteContext,
              summary: ScanSummary) -> None:
        progress = Progress(len(todo) + summary.patients_skipped, self.progress_stream,
                            done=summary.patients_skipped)
        batches = list(_batches(todo, self.options.batch_size))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
            pending: Future | None = (
                pool.submit(fetch_batch, self.client, batches[0], self.codes) if batches else None
            )
            for index, batch in enumerate(batches):
                assert pending is not None
                resources = pending.result()
                if self.should_stop():
                    raise ScanStopped("scan stopped on request; the next run resumes it")
                pending = (pool.submit(fetch_batch, self.client, batches[index + 1], self.codes)
                           if index + 1 < len(batches) else None)
                self._batch(run, batch, resources, context, summary)
                progress.advance(len(batch), sum(summary.decisions.values()),
                                 sum(summary.written.values()))
        progress.close()

    def _batch(self, run: RunRecord, batch: list[str], resources: list[dict[str, Any]],
               context: WriteContext, summary: ScanSummary, report: Any = None) -> None:
        """Decide (unless `report` was decided elsewhere: a bulk scan on Dask), write back,
        checkpoint."""
        report = report if report is not None else self.evaluate(resources)
        findings: list[Finding] = list(report.findings)
        # The alerts and notes name the recipients, records and Consents (Report.names, read
        # by the run's evaluator from the batch's resources), never their ids.
        context = replace(context, names=getattr(report, "names", None) or {})
        decisions = Counter(str(f.decision) for f in findings)
        written: Counter[str] = Counter()
        errors: list[str] = []
        present = self._present(findings, resources, context)
        if self.options.dry_run:
            for finding in findings:
                summary.would_write += preview(finding, context.ruleset, present)
        else:
            groups = [group for group in (
                tasks.anchored(plan(f, context), present, context) for f in findings
                if any(value not in present for _, value in planned_values(f, context.ruleset)))
                if group]
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

    def _present(self, findings: list[Finding], resources: list[dict[str, Any]],
                 context: WriteContext) -> dict[str, tasks.Present]:
        """Which of the findings' writes are on the server already: those the batch's fetch
        returned (our notes and drafts come with their disclosures), then one look-up per
        resource type and 200 identifiers for the rest. The real run and the dry run both
        decide from this, so the dry run lists what the real run writes."""
        known = tasks.present(resources)
        absent = self._known_absent(findings, resources, context)
        wanted = [(rtype, value) for finding in findings
                  for rtype, value in planned_values(finding, context.ruleset)
                  if value in known or value not in absent]
        present = written_values(wanted, self._search, known)
        if not self._tasks_searchable:
            present.update(self._tasks_by_provenance(findings, present, context))
        return present

    def _known_absent(self, findings: list[Finding], resources: list[dict[str, Any]],
                      context: WriteContext) -> set[str]:
        """Identifier values that the fetch shows are not on the server, so need no look-up:
        none for the paging fetch (the bulk scan's export holds more)."""
        return set()

    def _tasks_by_provenance(self, findings: list[Finding], present: dict[str, tasks.Present],
                             context: WriteContext) -> dict[str, tasks.Present]:
        """With Task search refused, a finding's Task is on the server when the Provenance of
        the transaction that wrote it is (a transaction is all or nothing): the one over the
        finding's whole write-back, or over the Task alone (written after its alert). Else a
        rerun would send the Task again, which matches, under a new Provenance, which would
        not."""
        keys: dict[str, str] = {}
        for finding in findings:
            values = planned_values(finding, context.ruleset)
            task = next((v for t, v in values if t == "Task" and v not in present), None)
            if task is not None:
                keys[provenance_key(finding.key, [v for _, v in values])] = task
                keys[provenance_key(finding.key, [task])] = task
        found: dict[str, tasks.Present] = {}
        for rtype, params in provenance_searches(sorted(keys)):
            for key, targets in provenance_targets(self._search(rtype, params)).items():
                reference = next((t for t in targets if t.startswith("Task/")), None)
                if key in keys and reference is not None:
                    found[keys[key]] = tasks.Present(reference, None)
        return found

    def _search(self, rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """What the write-back's look-ups search with (the scan's page size). DESIGN.md
        grants the scan system/Task.cru, no search: a refused Task look-up finds nothing and
        the conditional create alone keeps a Task from being written twice."""
        if rtype == "Task" and not self._tasks_searchable:
            return []
        try:
            return list(self.client.search(rtype, params, page_size=PAGE_SIZE))
        except FhirHttpError as error:
            if rtype != "Task" or error.status != 403:
                raise
            self._tasks_searchable = False
            log.info("Task search refused (HTTP 403): Tasks are written conditionally")
            return []

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
