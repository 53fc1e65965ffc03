"""Write a `World` as FHIR bundles, or load it into a FHIR server, one batch at a time.

Transactions PUT every resource at its client-assigned id, so loading the same seed twice leaves
the server as it was. The directory (shared organizations and practitioners) goes first, in its
own transaction, because every batch of patients references it. Nothing holds more than one batch
in memory, which is what lets 10,000 patients stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

from . import fhirbuild as fb
from .charts import World

Json = fb.Json


@dataclass
class Summary:
    bundles: int = 0
    patients: int = 0
    resources: int = 0
    disclosures: int = 0


def transaction(resources: list[Json]) -> Json:
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r, "request": {"method": "PUT",
                                                  "url": f"{r['resourceType']}/{r['id']}"}}
                      for r in resources]}


def batches(world: World, size: int, expected: IO[str] | None = None,
            summary: Summary | None = None) -> Iterator[list[Json]]:
    """The directory, then the patients `size` charts at a time; side table lines as they go."""
    summary = summary if summary is not None else Summary()
    yield world.directory_resources()
    batch: list[Json] = []
    count = 0
    for chart in world.charts():
        batch.extend(chart.resources)
        count += 1
        summary.patients += 1
        summary.disclosures += sum(1 for r in chart.resources if r["resourceType"] == "AuditEvent")
        if expected is not None:
            for record in world.expectations(chart):
                expected.write(json.dumps(record, separators=(",", ":")) + "\n")
        if count == size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


def write_transactions(world: World, out_dir: Path, size: int) -> Summary:
    """`out_dir/bundle-0000.json` (directory), `bundle-0001.json`..., `expected.ndjson`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    with (out_dir / "expected.ndjson").open("w") as expected:
        for n, batch in enumerate(batches(world, size, expected, summary)):
            path = out_dir / f"bundle-{n:04d}.json"
            path.write_text(json.dumps(transaction(batch), separators=(",", ":")))
            summary.bundles += 1
            summary.resources += len(batch)
    return summary


def write_collection(world: World, path: Path, expected_path: Path | None = None) -> Summary:
    """One `collection` Bundle for `consent-gap evaluate`, written entry by entry."""
    summary = Summary()
    path.parent.mkdir(parents=True, exist_ok=True)
    expected_path = expected_path or collection_expected_path(path)
    with path.open("w") as out, expected_path.open("w") as expected:
        head = {"resourceType": "Bundle", "id": f"sandbox-seed-{world.seed}",
                "type": "collection", "timestamp": "2026-06-30T12:00:00Z"}
        out.write(json.dumps(head, separators=(",", ":"))[:-1] + ',"entry":[')
        first = True
        for batch in batches(world, 50, expected, summary):
            for resource in batch:
                entry = {"fullUrl": f"{fb.EHR}/{resource['resourceType']}/{resource['id']}",
                         "resource": resource}
                out.write(("" if first else ",") + json.dumps(entry, separators=(",", ":")))
                first = False
                summary.resources += 1
        out.write("]}")
    summary.bundles = 1
    return summary


def collection_expected_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".json") + ".expected.ndjson")


class LoadError(RuntimeError):
    """A transaction the server refused; the message carries its OperationOutcome text."""


def outcome_text(response: requests.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:500].strip() or response.reason
    issues = body.get("issue", []) if isinstance(body, dict) else []
    texts = [i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code", "")
             for i in issues]
    return "; ".join(t for t in texts if t) or response.reason


def load(world: World, base: str, size: int, *, timeout: float = 600.0,
         session: requests.Session | None = None, expected: IO[str] | None = None,
         progress: IO[str] | None = None) -> Summary:
    """POST every batch as a transaction to `base`; stop at the first refusal."""
    http = session or requests.Session()
    url = base.rstrip("/")
    summary = Summary()
    for n, batch in enumerate(batches(world, size, expected, summary)):
        body = json.dumps(transaction(batch), separators=(",", ":"))
        try:
            response = http.post(url, data=body, timeout=timeout,
                                 headers={"Content-Type": "application/fhir+json",
                                          "Accept": "application/fhir+json"})
        except requests.RequestException as exc:
            raise LoadError(f"cannot reach {url}: {exc}") from exc
        if response.status_code >= 300:
            raise LoadError(f"transaction {n} ({len(batch)} resources) refused with HTTP "
                            f"{response.status_code}: {outcome_text(response)}")
        summary.bundles += 1
        summary.resources += len(batch)
        if progress is not None:
            _progress(progress, summary, world.patients)
    if progress is not None and progress.isatty():
        progress.write("\n")
    return summary


def _progress(stream: IO[str], summary: Summary, total: int) -> None:
    line = (f"loaded {summary.bundles} transactions: {summary.patients}/{total} patients, "
            f"{summary.resources} resources")
    if stream.isatty():
        stream.write("\r" + line)
        stream.flush()
    elif summary.patients in (0, total) or summary.bundles % 20 == 0:
        print(line, file=stream)
