"""What the scan shows a person: the progress bar (or log lines), the summary as text or
JSON, and the last run's status. Ids and counts only: no names, notes or tokens."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from consent_gap.checkpoint import CheckpointStore
from consent_gap.settings import Settings

log = logging.getLogger("consent_gap.scan")

#: Seconds between progress log lines when stderr is not a terminal.
LOG_EVERY = 10.0


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


def summary_text(summary: Any) -> str:
    """A ScanSummary for a person: what was selected, decided and written, and the errors."""
    decisions = ", ".join(f"{k} {v}" for k, v in sorted(summary.decisions.items())) or "none"
    verb = "would write" if summary.dry_run else "written"
    count = len(summary.would_write) if summary.dry_run else sum(summary.written.values())
    lines = [
        f"scan {summary.status}: {summary.fhir_base} ({summary.mode}"
        + (f" since {summary.since}" if summary.since else "")
        + (", dry run" if summary.dry_run else "")
        + (", resumed" if summary.resumed else "") + ")",
        f"  patients: {summary.patients_done} of {summary.patients_selected}"
        + (f" ({summary.patients_skipped} done before resuming)" if summary.patients_skipped
           else ""),
        f"  disclosures: {summary.disclosures}; decisions: {decisions}",
        f"  resources {verb}: {count}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(summary.written.items())) + ")"
           if summary.written and not summary.dry_run else ""),
        f"  unreadable resources: {summary.problems}; errors: {len(summary.errors)}",
        f"  {summary.requests} HTTP requests in {summary.seconds:.1f} s",
    ]
    if summary.dry_run:
        lines += [
            f"  would write {row['resourceType']} ({row['kind']}) for {row['disclosure']}: "
            f"{row['identifier']}"
            for row in summary.would_write
        ]
    lines += [f"  error: {error}" for error in summary.errors]
    return "\n".join(lines) + "\n"


def print_json(record: dict[str, Any], out: TextIO) -> None:
    """``--format json``: indented, one object, a final newline."""
    json.dump(record, out, indent=2)
    out.write("\n")


def print_summary(summary: Any, fmt: str, out: TextIO | None = None) -> None:
    """The run's summary on standard output, as ``--format`` asks."""
    stream = out or sys.stdout
    if fmt == "json":
        print_json(summary.to_json(), stream)
    else:
        stream.write(summary_text(summary))


def print_status(settings: Settings, fmt: str, out: TextIO | None = None) -> None:
    """The last run on this server (or any server when none is configured)."""
    stream = out or sys.stdout
    store = CheckpointStore(settings.database_url)
    try:
        runs = store.last_runs(settings.fhir_base, limit=1)
        last_ok = store.last_success(settings.fhir_base) if settings.fhir_base else None
    finally:
        store.close()
    if not runs:
        print("no scan has run yet" + (f" on {settings.fhir_base}" if settings.fhir_base else ""),
              file=stream)
        return
    record = runs[0].to_json()
    record["last_successful_start"] = last_ok
    if fmt == "json":
        print_json(record, stream)
        return
    print(f"last run {record['run']} on {record['fhir_base']}: {record['status']} "
          f"({record['mode']}{', dry run' if record['dry_run'] else ''})", file=stream)
    print(f"  started {record['started']}, finished {record['finished'] or '-'}", file=stream)
    print(f"  patients {record['patients']['done']}/{record['patients']['total']}, "
          f"disclosures {record['disclosures']}, decisions {record['decisions']}", file=stream)
    print(f"  written {record['written']}, errors {record['errors']['count']}", file=stream)
    for message in record["errors"]["messages"][:10]:
        print(f"  error: {message}", file=stream)
    print(f"  last successful run started {last_ok or 'never'}", file=stream)
