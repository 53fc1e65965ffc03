"""The bulk selector: ``consent-gap scan --bulk [--group ID] [--workers N]``.

A whole server (system ``$export``) or a Group (``Group/<id>/$export``) is read through Bulk
Data export (fhir/bulk.py) instead of paged searches, then decided patient by patient and
written back exactly as the paging scan writes (scanner.py: same identifiers, same conditional
creates, same checkpoint), so a bulk run after a paging run writes nothing, and the reverse.

**Full run** (no earlier successful bulk run for this server and group, or ``--full``):

1. export ``_type`` = the types the engine reads (`EXPORT_TYPES`), disclosure AuditEvents only
   (``_typeFilter``);
2. each NDJSON file is streamed to a spool file on disk while an index (SQLite, on disk beside
   it) records where each resource's line is and which resources it references (a generic walk
   of ``reference`` strings, fhir/search.py); memory holds one line at a time. With
   ``--group``, what a Group export cannot hold (Provenance of a Consent, notes found only by
   ``related``, notices to RelatedPersons: outside the patient compartment) is searched while
   the server builds the export: the Consents of 50 members at a time with their Provenances
   (`signature_searches`), and chained searches naming 100 members at a time
   (`group_followups`), spooled after the export's files;
3. each resource is given to the patient(s) whose chart the paging fetch would put it in
   (`Spool.assign`): the Patient; what references the Patient (disclosures, Consents,
   RelatedPersons, notes, Communications); the Provenance of a Consent, the notes related to a
   disclosure and the notices to a RelatedPerson or about a disclosure; what a disclosure
   names (disclosed records, legal instruments) and the RelatedPersons a Consent or a notice
   names. Shared records go to each patient that needs them;
4. patients are taken in batches of ``CONSENT_GAP_BATCH_SIZE``; a batch's chart is read back
   from the spool; what it references but the export lacked (a disclosed Observation: any type
   outside `EXPORT_TYPES`) and whom its disclosures went to (to name them in the alerts and
   notes) are fetched by ``_id`` as the paging plan does;
5. the decide step runs here or on Dask (`--workers`, scan/distributed.py); the findings are
   written back by this process, batch by batch, and the checkpoint records the batch.

**Incremental run** (the default after a successful bulk run): the export asks ``_since`` the
``transactionTime`` of the last successful bulk run's export. The patients of the changed
resources are found on the server (scan/notifications.py's lookups; plus the incremental
selector's Provenance search, since a Group export holds no Provenance of a Consent), and their
charts fetched and decided as in a paging scan: a change touches few patients, and a partial
export cannot say what else a chart holds.

A stopped run (SIGTERM, Ctrl-C, an error) deletes the export job; run again with the same
options it resumes: a new export, the patients already done skipped, nothing written twice.
Only an ``ok`` run moves the ``_since`` of the next one.
"""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from consent_gap import fetch_plan
from consent_gap.checkpoint import OK, RunRecord, bulk_runs, migrate
from consent_gap.database import database_errors, make_engine
from consent_gap.fetch_plan import NOT_FETCHED
from consent_gap.fhir import search as fhir_search
from consent_gap.fhir.bulk import BulkExport, updated_before
from consent_gap.fhir.search import Search
from consent_gap.scan import selectors
from consent_gap.scan.notifications import patients_of
from consent_gap.scan.output import Progress
from consent_gap.scan.scanner import PAGE_SIZE, Scanner, ScanStopped, ScanSummary
from consent_gap.writeback import planned_values, tasks

log = logging.getLogger("consent_gap.scan")
T = TypeVar("T")

BULK = "bulk"
#: What the engine reads (CONTRACT 1.1-1.4); anything else a disclosure names is fetched by id.
EXPORT_TYPES = ("Patient", "RelatedPerson", "Consent", "Provenance", "AuditEvent",
                "DocumentReference", "Communication")
#: The types of our writes that name the patient as subject (writeback/): in the export.
IN_EXPORT = frozenset({"Communication", "DocumentReference"})
#: Reverse links the paging plan follows (fetch_plan.py): a resource of the first type that
#: references a resource of the second belongs to that resource's patient.
_REVERSE = (("Provenance", "Consent"), ("DocumentReference", "AuditEvent"),
            ("DocumentReference", "Communication"), ("Communication", "AuditEvent"),
            ("Communication", "Communication"), ("Communication", "RelatedPerson"))
#: Forward links (the `_include` and follow-up of the paging plan): what these name belongs
#: to their patient; None: any type but NOT_FETCHED.
_FORWARD = (("AuditEvent", None), ("Communication", None), ("Consent", "RelatedPerson"))



def type_filters(codes: fetch_plan.ChartCodes | None = None) -> tuple[str, ...]:
    """Only disclosure AuditEvents (the paging plan's `subtype` search, codes of the rules)."""
    codes = codes or fetch_plan.default_codes()
    return (f"AuditEvent?subtype={codes.disclosure_subtype}",)

# ---- the checkpoint of bulk runs ----------------------------------------------------------------

def last_transaction_time(database_url: str, fhir_base: str, group: str | None) -> str | None:
    """The export ``transactionTime`` of the last successful bulk run: the next ``_since``."""
    engine = make_engine(database_url)
    try:
        with database_errors(database_url), engine.begin() as connection:
            migrate(connection)
        query = (select(bulk_runs.c.transaction_time)
                 .where(bulk_runs.c.fhir_base == fhir_base, bulk_runs.c.grp == (group or ""))
                 .order_by(bulk_runs.c.run_id.desc()).limit(1))
        with engine.connect() as connection:
            return connection.execute(query).scalar()
    finally:
        engine.dispose()


def record_success(database_url: str, run_id: int, fhir_base: str, group: str | None,
                   transaction_time: str) -> None:
    engine = make_engine(database_url)
    try:
        with database_errors(database_url), engine.begin() as connection:
            migrate(connection)
        with engine.begin() as connection:
            connection.execute(bulk_runs.insert().values(
                run_id=run_id, fhir_base=fhir_base, grp=group or "",
                transaction_time=transaction_time))
    finally:
        engine.dispose()


# ---- the spool: NDJSON on disk, indexed by resource and patient ----------------------------------

class Spool:
    """The export's files on disk with an SQLite index: where each resource is, what it
    references, and whose chart it belongs to. Memory stays flat in the number of patients."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = sqlite3.connect(folder / "index.db", check_same_thread=False)
        self.db.executescript("""
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
            CREATE TABLE res (type TEXT, id TEXT, file INTEGER, offset INTEGER, length INTEGER,
                              PRIMARY KEY (type, id));
            CREATE TABLE edge (src_type TEXT, src_id TEXT, dst_type TEXT, dst_id TEXT);
            CREATE TABLE own (type TEXT, id TEXT, patient TEXT, PRIMARY KEY (type, id, patient));
        """)
        self.files: list[Path] = []
        self.resources = 0

    def close(self) -> None:
        self.db.close()

    def add(self, lines: Iterable[bytes]) -> int:
        """Spool one NDJSON file's lines; returns how many resources it held."""
        path = self.folder / f"{len(self.files)}.ndjson"
        number = len(self.files)
        self.files.append(path)
        rows: list[tuple] = []
        edges: list[tuple] = []
        count = 0
        with path.open("wb") as out:
            for line in lines:
                resource = json.loads(line)
                rtype, rid = str(resource.get("resourceType")), str(resource.get("id"))
                offset = out.tell()
                out.write(line + b"\n")
                rows.append((rtype, rid, number, offset, len(line)))
                edges += [(rtype, rid, t, i) for t, i in fhir_search.references(resource)
                          if (t, i) != (rtype, rid)]
                count += 1
                if len(rows) >= 1000:
                    self._insert(rows, edges)
                    rows, edges = [], []
        self._insert(rows, edges)
        self.resources += count
        return count

    def _insert(self, rows: list[tuple], edges: list[tuple]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO res VALUES (?, ?, ?, ?, ?)", rows)
        self.db.executemany("INSERT INTO edge VALUES (?, ?, ?, ?)", edges)

    def assign(self) -> None:
        """Give each resource to the patients whose chart holds it (see the module doc)."""
        db = self.db
        db.execute("CREATE INDEX edge_dst ON edge (dst_type, dst_id)")
        db.execute("CREATE INDEX edge_src ON edge (src_type, src_id)")
        db.execute("INSERT OR IGNORE INTO own SELECT type, id, id FROM res WHERE type = 'Patient'")
        db.execute("""INSERT OR IGNORE INTO own
            SELECT e.src_type, e.src_id, e.dst_id FROM edge e
            JOIN res p ON p.type = 'Patient' AND p.id = e.dst_id
            WHERE e.dst_type = 'Patient' AND e.src_type != 'Patient'""")
        for source, target in _REVERSE:
            db.execute("""INSERT OR IGNORE INTO own
                SELECT e.src_type, e.src_id, o.patient FROM edge e
                JOIN own o ON o.type = e.dst_type AND o.id = e.dst_id
                WHERE e.src_type = ? AND e.dst_type = ?""", (source, target))
        skipped = ",".join(f"'{t}'" for t in sorted(NOT_FETCHED))
        for source, target in _FORWARD:
            condition = "e.dst_type = ?" if target else f"e.dst_type NOT IN ({skipped})"
            db.execute(f"""INSERT OR IGNORE INTO own
                SELECT e.dst_type, e.dst_id, o.patient FROM own o
                JOIN edge e ON e.src_type = o.type AND e.src_id = o.id
                JOIN res r ON r.type = e.dst_type AND r.id = e.dst_id
                WHERE o.type = ? AND {condition}""",  # noqa: S608 (constants only)
                       (source, target) if target else (source,))
        db.execute("CREATE INDEX own_patient ON own (patient)")

    def patients(self) -> list[str]:
        return [row[0] for row in self.db.execute(
            "SELECT id FROM res WHERE type = 'Patient' ORDER BY id")]

    def ids(self, types: Sequence[str], since: str | None = None) -> list[tuple[str, str]]:
        """(type, id) of the spooled resources of these types; with `since`, only those
        updated since then (fhir/bulk.py: `updated_before`)."""
        marks = ",".join("?" * len(types))
        rows = self.db.execute(f"SELECT type, id, file, offset, length FROM res "  # noqa: S608
                               f"WHERE type IN ({marks}) ORDER BY file, offset", tuple(types))
        if since is None:
            return [(t, i) for t, i, *_ in rows]
        out = []
        for rtype, rid, number, offset, length in rows.fetchall():
            with self.files[number].open("rb") as handle:
                handle.seek(offset)
                if not updated_before(json.loads(handle.read(length)), since):
                    out.append((rtype, rid))
        return out

    def chart(self, patients: Sequence[str]) -> list[dict[str, Any]]:
        """The resources of these patients' charts, each once, read back from the spool."""
        marks = ",".join("?" * len(patients))
        rows = self.db.execute(f"""SELECT DISTINCT r.file, r.offset, r.length FROM own o
            JOIN res r ON r.type = o.type AND r.id = o.id
            WHERE o.patient IN ({marks}) ORDER BY r.file, r.offset""",  # noqa: S608
                               tuple(patients)).fetchall()
        out: list[dict[str, Any]] = []
        handle = None
        current = -1
        try:
            for number, offset, length in rows:
                if number != current:
                    if handle:
                        handle.close()
                    handle, current = self.files[number].open("rb"), number
                handle.seek(offset)
                out.append(json.loads(handle.read(length)))
        finally:
            if handle:
                handle.close()
        return out


#: Patients per follow-up search of a Group export (one chained search names them all), and
#: matches per page: these searches include nothing, so HAPI's cap on included resources
#: (scanner.PAGE_SIZE) does not apply, and each page is a request more while the server is
#: busy building the export.
FOLLOWUP_PATIENTS = 100
FOLLOWUP_PAGE_SIZE = 500
#: Patients per signature search (`signature_searches`) and its page: 50 patients' Consents
#: fit one page of 200. HAPI answers it in about a tenth of the time of the chained
#: `Provenance?target:Consent.patient` (measured on 2,000 charts: 0.13 s against 1.3 s for
#: 100 patients), and time HAPI spends on follow-ups is time taken from the export it builds.
SIGNED_PATIENTS = 50
SIGNED_PAGE_SIZE = 200
#: Included resources per page beyond which a server may have cut them (HAPI's default cap,
#: which it applies without saying so): a signature search that brings this many Provenances
#: is done again as the chained search, which includes nothing.
INCLUDE_CAP = 1000


def group_followups(patient_ids: Sequence[str]) -> list[Search]:
    """What a Group export cannot hold for these patients (outside the patient compartment)
    but their signatures (`signature_searches`): the notes related to their disclosures, and
    notices to their RelatedPersons. The paging plan's reverse includes, as chained searches
    by patient, so they need nothing from the export and run while the server builds it."""
    searches = []
    for chunk in fhir_search.chunks(patient_ids, FOLLOWUP_PATIENTS):
        patients = fhir_search.refs("Patient", chunk)
        searches += [Search(rtype, ((param, patients),)) for rtype, param in (
            ("DocumentReference", "related:AuditEvent.patient"),
            ("DocumentReference", "related:Communication.patient"),
            ("Communication", "recipient:RelatedPerson.patient"))]
    return searches


def signature_searches(patient_ids: Sequence[str]) -> list[Search]:
    """The Provenance that signs or revokes each of these patients' Consents (outside the
    patient compartment), as the paging plan reads it: their Consents with
    `_revinclude=Provenance:target` (the Consents themselves come with the export)."""
    return [Search("Consent", (("patient", fhir_search.refs("Patient", chunk)),
                               ("_revinclude", "Provenance:target")))
            for chunk in fhir_search.chunks(patient_ids, SIGNED_PATIENTS)]


def chained_signatures(search: Search) -> Search:
    """A signature search done again when its includes may have been cut: the Provenance of
    the same patients' Consents by a chained search, which includes nothing."""
    return Search("Provenance", (("target:Consent.patient", dict(search.params)["patient"]),))


def _write(out: Any, resources: Iterable[dict[str, Any]]) -> int:
    """Append resources to an NDJSON file; returns how many."""
    count = 0
    for resource in resources:
        out.write(json.dumps(resource).encode() + b"\n")
        count += 1
    return count


_END = object()


def one_ahead(items: Iterator[T], pool: ThreadPoolExecutor) -> Iterator[T]:
    """`items`, each next one made in `pool`'s thread while the caller uses this one: the
    next batch's chart is read back from the spool and its look-ups sent while this batch is
    decided and written (the engine holds the interpreter, the look-ups wait on the server).
    `items` is advanced by that one thread only; what it raises is raised here."""
    future = pool.submit(next, items, _END)
    while (item := future.result()) is not _END:
        future = pool.submit(next, items, _END)
        yield item


def _read_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield line.rstrip(b"\n")


def _kept(chart: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the write-back reads of a chart once it is decided (here or on Dask): its
    Patients and our own resources (those `tasks.present` recognizes)."""
    return [r for r in chart if r.get("resourceType") == "Patient" or tasks.present([r])]


# ---- the run -----------------------------------------------------------------------------------

@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM raises ScanStopped (in the main thread), so the export job is deleted and the
    run recorded as stopped instead of the process vanishing mid-way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise ScanStopped(f"signal {signum}: stopped; the next run resumes it")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


DecideMany = Callable[[list[list[dict[str, Any]]]], Iterator[tuple[int, Any]]]


class BulkScanner(Scanner):
    """A scan whose patients and charts come from a Bulk Data export."""

    def __init__(self, *args: Any, group: str | None = None, database_url: str = "",
                 decide_many: DecideMany | None = None, spool_dir: str | None = None,
                 max_wait: float = 120.0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.group = group
        self.database_url = database_url
        self.decide_many = decide_many
        self.spool_dir = spool_dir
        self.max_wait = max_wait
        self.export: BulkExport | None = None
        self.export_seconds = 0.0
        self._charts_from_export = False

    def run(self) -> ScanSummary:
        started = time.monotonic()
        before = self.client.request_count
        options = self.options
        summary = ScanSummary(fhir_base=options.fhir_base, dry_run=options.dry_run)
        since = None if options.full else last_transaction_time(
            self.database_url, options.fhir_base, self.group)
        selection = selectors.Selection(BULK, since)
        summary.mode, summary.since = BULK, since
        run = self._open_run(selection, summary, named=[f"Group/{self.group or '*'}"])
        transaction_time: str | None = None

        def body() -> None:
            nonlocal transaction_time
            stop = threading.Event()
            with stop_on_sigterm(), tempfile.TemporaryDirectory(
                    prefix="consent-gap-bulk-", dir=self.spool_dir) as folder, BulkExport(
                    self.client, group=self.group, types=EXPORT_TYPES,
                    type_filters=type_filters(self.codes), since=since,
                    on_progress=self._progress, max_wait=self.max_wait) as export, \
                    ThreadPoolExecutor(1, thread_name_prefix="bulk-followups") as pool:
                self.export = export
                export.kick_off()
                extra = Path(folder) / "followups.ndjson"
                shadow = (pool.submit(self._followups, extra, stop)
                          if self.group and since is None else None)
                spool = Spool(Path(folder))
                try:
                    manifest = export.wait()
                    transaction_time = manifest.transaction_time
                    for output in manifest.output:
                        spool.add(export.lines(output))
                    if shadow is not None:
                        shadow.result()
                        spool.add(_read_lines(extra))
                    self.export_seconds = time.monotonic() - started
                    log.info("export: %d resources in %d file(s), %.1f s", spool.resources,
                             len(manifest.output), self.export_seconds)
                    if since is None:
                        self._full(run, spool, summary)
                    else:
                        self._incremental(run, spool, summary)
                finally:
                    stop.set()
                    spool.close()

        record = self._finished(run, summary, body, "bulk scan")
        if summary.status == OK and not options.dry_run and transaction_time:
            record_success(self.database_url, record.id, options.fhir_base, self.group,
                           transaction_time)
        summary.run = record.id
        summary.requests = self.client.request_count - before
        summary.seconds = time.monotonic() - started
        log.info("bulk scan %s: run %s, %d/%d patients, %d disclosures, %d written, "
                 "%d requests, %.1f s", summary.status, record.id, summary.patients_done,
                 summary.patients_selected, summary.disclosures,
                 sum(summary.written.values()), summary.requests, summary.seconds)
        return summary

    def _progress(self, text: str) -> None:
        log.info("export in progress: %s", text)
        if self.progress_stream is not None:
            self.progress_stream.write(f"export: {text}\n")
            self.progress_stream.flush()

    def _full(self, run: RunRecord, spool: Spool, summary: ScanSummary) -> None:
        spool.assign()
        self._charts_from_export = True
        todo = self._todo(run, spool.patients(), summary)
        context = self._context(summary)
        progress = Progress(len(todo) + summary.patients_skipped, self.progress_stream,
                            done=summary.patients_skipped)
        size = self.options.batch_size
        batches = [todo[i:i + size] for i in range(0, len(todo), size)]

        kept: dict[int, list[dict[str, Any]]] = {}

        def charts() -> Iterator[list[dict[str, Any]]]:
            for index, batch in enumerate(batches):
                if self.should_stop():
                    raise ScanStopped("scan stopped on request; the next run resumes it")
                chart = self._chart(spool, batch)
                kept[index] = _kept(chart)
                yield chart

        with ThreadPoolExecutor(1, thread_name_prefix="bulk-charts") as pool:
            ahead = one_ahead(charts(), pool)
            reports = (self.decide_many(ahead) if self.decide_many is not None
                       else ((i, self.evaluate(c)) for i, c in enumerate(ahead)))
            for index, report in reports:
                self._decided(run, batches[index], report, context, summary, kept.pop(index))
                progress.advance(len(batches[index]), sum(summary.decisions.values()),
                                 sum(summary.written.values()))
        progress.close()

    def _followups(self, path: Path, stop: threading.Event) -> int:
        """While the server builds a Group export: the Group's members, then what the export
        cannot hold for them (`signature_searches`, `group_followups`), written to an NDJSON
        file that the spool adds after the export's files. Stops between pages when the run
        stops."""
        members = sorted(self._members())
        count = 0
        with path.open("wb") as out:
            for search in signature_searches(members):
                count += _write(out, self._signatures(search, stop))
            for search in group_followups(members):
                count += _write(out, self._pages(search, FOLLOWUP_PAGE_SIZE, stop))
        log.info("group follow-ups: %d resource(s) for %d patient(s)", count, len(members))
        return count

    def _pages(self, search: Search, page_size: int, stop: threading.Event,
               ) -> Iterator[dict[str, Any]]:
        """A follow-up search's resources, page by page, until the run stops."""
        for resource in self.client.search(search.type, list(search.params),
                                           page_size=page_size):
            if stop.is_set():
                return
            if resource.get("resourceType") != "OperationOutcome":
                yield resource

    def _signatures(self, search: Search, stop: threading.Event) -> list[dict[str, Any]]:
        """The Provenances a signature search brings; by the chained search instead when the
        server says it left some out or may have cut them (`INCLUDE_CAP`)."""
        if stop.is_set():
            return []
        got = list(self.client.search(search.type, list(search.params),
                                      page_size=SIGNED_PAGE_SIZE))
        signed = [r for r in got if r.get("resourceType") == "Provenance"]
        if fhir_search.says_incomplete(got) or len(signed) >= INCLUDE_CAP:
            log.info("signature search: %d Provenances, perhaps cut; searching them chained",
                     len(signed))
            return list(self._pages(chained_signatures(search), FOLLOWUP_PAGE_SIZE, stop))
        return signed

    def _chart(self, spool: Spool, batch: list[str]) -> list[dict[str, Any]]:
        found = {fhir_search.resource_key(r): r for r in spool.chart(batch)}
        fetch_plan.fetch_missing(self.client, found, set(), PAGE_SIZE)
        # Whom the disclosures went to (not exported: the engine reads them by reference
        # only), for the alerts and notes to name: one search per type for the batch.
        fetch_plan.fetch_named(self.client, found, page_size=PAGE_SIZE,
                               wanted=fetch_plan.recipient_references)
        return list(found.values())

    def _incremental(self, run: RunRecord, spool: Spool, summary: ScanSummary) -> None:
        changed = spool.ids(EXPORT_TYPES, since=summary.since)
        patients = set(patients_of(self.client, changed))
        patients |= {p for t, p in changed if t == "Patient"}
        assert summary.since is not None
        signed = [s for s in fetch_plan.changed_patient_searches(summary.since)
                  if s.type == "Provenance"]
        for search in signed:
            patients |= {str(r["id"]) for r in self.client.search(
                search.type, list(search.params), page_size=PAGE_SIZE)
                if r.get("resourceType") == "Patient"}
        if self.group:
            members = self._members()
            patients &= members
        todo = self._todo(run, sorted(patients), summary)
        log.info("incremental bulk: %d changed resource(s), %d patient(s) to re-check",
                 len(changed), len(todo))
        self._scan(run, todo, self._context(summary), summary)

    def _members(self) -> set[str]:
        """The Group's patients (the generic reference walk: a Group references only its
        members' Patients, and what it names besides is not a Patient)."""
        group = self.client.read("Group", str(self.group))
        return {rid for rtype, rid in fhir_search.references(group) if rtype == "Patient"}

    def _known_absent(self, findings: list[Any], resources: list[dict[str, Any]],
                      context: Any) -> set[str]:
        """Our alerts, notes, drafts and notices name the finding's patient as subject, so an
        export (system or Group) holds each one already written for a patient of this chart,
        and the chart has it. What the chart lacks of these types for its own patients is not
        on the server: only the Tasks (outside the patient compartment) and the writes for a
        patient of another chart are looked up. A write that lands after the export is still
        kept from being written twice by its conditional create. Only for charts read from
        the spool: an incremental run fetches its charts as the paging scan does."""
        if not self._charts_from_export:
            return set()
        charted = {f"Patient/{r.get('id')}" for r in resources
                   if r.get("resourceType") == "Patient"}
        return {value for finding in findings if finding.patient in charted
                for rtype, value in planned_values(finding, context.ruleset)
                if rtype in IN_EXPORT}

    def _decided(self, run: RunRecord, batch: list[str], report: Any, context: Any,
                 summary: ScanSummary, kept: list[dict[str, Any]]) -> None:
        """Write back and checkpoint one decided batch (as the paging scan does); `kept`:
        what the write-back reads of its chart (`_kept`)."""
        self._batch(run, batch, kept, context, summary, report=report)

