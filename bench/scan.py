#!/usr/bin/env python3
"""Benchmark of the scan on the sandbox: 1,000 patients, 10,000 disclosures (defaults).

    .venv/bin/python bench/scan.py [--fhir-base URL] [--patients 1000] [--per-patient 10]
                                   [--seed 7] [--load] [--batch-size 50] [--jurisdiction US-CA]

Prints: the scan's wall time (dry run: fetch, decide, build and validate the write-back, write
nothing), its HTTP requests per patient, the process's peak memory, and the ratio of the scan's
wall time to a bare paging sweep that runs exactly the same searches with plain `requests`
(following every next link, parsing nothing but what paging needs) in the same run. The sweep
runs before and after the scan and the ratio uses their mean, so HAPI's warm-up counts for
neither. Goals (issue 4): ratio <= 1.5, <= 3 requests per patient.

`--load` first loads the synthetic charts (sandbox/data, the data helper's generator) for that
seed and size; without it they must be on the server from an earlier `--load`. Every id is
given the suffix `--suffix` (default `-b<seed>`), so the bench set never replaces the sandbox's
default charts (the generator's ids do not depend on the seed).
"""

from __future__ import annotations

import argparse
import json
import resource as rusage
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consent_gap import fetch_plan  # noqa: E402
from consent_gap.checkpoint import CheckpointStore  # noqa: E402
from consent_gap.fhir.client import FhirClient  # noqa: E402
from consent_gap.scan import PAGE_SIZE, Scanner, ScanOptions  # noqa: E402

from sandbox.data import output  # noqa: E402
from sandbox.data.charts import World  # noqa: E402


def rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss / 1024


def renamed(value: Any, suffix: str) -> Any:
    """Every relative reference `Type/id` gets the suffix (ids are renamed by the caller)."""
    if isinstance(value, dict):
        return {key: (_suffixed(item, suffix) if key == "reference" and isinstance(item, str)
                      else renamed(item, suffix))
                for key, item in value.items()}
    if isinstance(value, list):
        return [renamed(item, suffix) for item in value]
    return value


def _suffixed(reference: Any, suffix: str) -> Any:
    if not isinstance(reference, str) or "/" not in reference or reference.startswith(
            ("http", "urn:", "#")):
        return reference
    return f"{reference}{suffix}"


def bench_batches(world: World, suffix: str, size: int = 50) -> Iterator[list[dict]]:
    """The generator's transactions' resources, every id and reference suffixed."""
    for batch in output.batches(world, size):
        out = []
        for resource in batch:
            resource = renamed(resource, suffix)
            resource["id"] = f"{resource['id']}{suffix}"
            out.append(resource)
        yield out


def load(world: World, base: str, suffix: str) -> tuple[int, float]:
    http = requests.Session()
    started = time.perf_counter()
    count = 0
    for batch in bench_batches(world, suffix):
        response = http.post(base, data=json.dumps(output.transaction(batch)), timeout=600,
                             headers={"Content-Type": "application/fhir+json",
                                      "Accept": "application/fhir+json"})
        if response.status_code >= 300:
            raise SystemExit(f"load refused: HTTP {response.status_code} {response.text[:300]}")
        count += len(batch)
        print(f"loaded {count} resources", file=sys.stderr)
    return count, time.perf_counter() - started


def patient_ids(world: World, suffix: str) -> list[str]:
    return sorted(f"{chart.pid}{suffix}" for chart in world.charts())


def bare_sweep(base: str, batches: list[list[str]]) -> tuple[float, int]:
    """The scan's searches with plain requests: same parameters, same page size, every page
    followed; JSON parsed only to find the next link and the RelatedPerson ids the notice
    search needs. Returns (seconds, requests)."""
    http = requests.Session()
    headers = {"Accept": "application/fhir+json", "Cache-Control": "no-cache"}
    count = 0
    started = time.perf_counter()

    def pages(rtype: str, params: list[tuple[str, str]]) -> list[dict]:
        nonlocal count
        params = [*params, ("_count", str(PAGE_SIZE))]
        url = f"{base}/{rtype}"
        prepared = requests.Request("GET", url, params=params).prepare().url or url
        if len(prepared) > 2000:
            response = http.post(f"{url}/_search", data=params, headers=headers, timeout=120)
        else:
            response = http.get(url, params=params, headers=headers, timeout=120)
        count += 1
        bundles = [response.json()]
        while True:
            nxt = next((link["url"] for link in bundles[-1].get("link", [])
                        if link.get("relation") == "next"), None)
            if not nxt:
                return bundles
            count += 1
            bundles.append(http.get(nxt, headers=headers, timeout=120).json())

    for batch in batches:
        related: set[str] = set()
        for search in fetch_plan.chart_searches(batch):
            for bundle in pages(search.type, list(search.params)):
                related |= {e["resource"]["id"] for e in bundle.get("entry", [])
                            if e["resource"]["resourceType"] == "RelatedPerson"}
        notice = fetch_plan.notice_search(batch, sorted(related))
        pages(notice.type, list(notice.params))
    http.close()
    return time.perf_counter() - started, count


def dry_scan(base: str, patients: list[str], batch_size: int,
             jurisdiction: str | None) -> tuple[float, int, object]:
    with tempfile.TemporaryDirectory() as state:
        store = CheckpointStore(f"sqlite:///{state}/bench.db")
        client = FhirClient(base)
        scanner = Scanner(client, store, ScanOptions(
            base, patients=tuple(patients), jurisdiction=jurisdiction, dry_run=True,
            batch_size=batch_size), progress_stream=sys.stderr)
        started = time.perf_counter()
        summary = scanner.run()
        seconds = time.perf_counter() - started
        requests_made = client.request_count
        client.close()
        store.close()
    return seconds, requests_made, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fhir-base", default="http://127.0.0.1:8080/fhir")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--per-patient", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--load", action="store_true", help="load the charts first")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--jurisdiction", default="US-CA")
    parser.add_argument("--suffix", help="suffix of every id (default -b<seed>)")
    args = parser.parse_args(argv)
    base = args.fhir_base.rstrip("/")
    suffix = args.suffix or f"-b{args.seed}"

    world = World(seed=args.seed, patients=args.patients, per_patient=args.per_patient)
    if args.load:
        count, seconds = load(world, base, suffix)
        print(f"loaded {count} resources in {seconds:.0f} s")
    patients = patient_ids(world, suffix)
    batches = [patients[i:i + args.batch_size] for i in range(0, len(patients), args.batch_size)]

    before_scan = rss_mib()
    sweep1, sweep_requests = bare_sweep(base, batches)
    scan_seconds, scan_requests, summary = dry_scan(base, patients, args.batch_size,
                                                    args.jurisdiction)
    peak = rss_mib()
    sweep2, _ = bare_sweep(base, batches)
    sweep = (sweep1 + sweep2) / 2

    findings = sum(summary.decisions.values())
    print(f"patients {len(patients)}, disclosures {summary.disclosures} "
          f"(decisions {dict(sorted(summary.decisions.items()))}), "
          f"would write {len(summary.would_write)} resources, errors {len(summary.errors)}")
    print(f"scan (dry run) wall time: {scan_seconds:.1f} s "
          f"({findings / scan_seconds:.0f} disclosures/s)")
    print(f"HTTP requests: scan {scan_requests} = {scan_requests / len(patients):.2f} per "
          f"patient; bare sweep {sweep_requests}")
    print(f"peak memory (max RSS): {peak:.0f} MiB (before the scan {before_scan:.0f} MiB)")
    print(f"bare paging sweep: {sweep1:.1f} s before, {sweep2:.1f} s after the scan")
    print(f"ratio scan / sweep: {scan_seconds / sweep:.2f} (goal <= 1.5)")
    ok = scan_seconds / sweep <= 1.5 and scan_requests / len(patients) <= 3
    return 0 if ok and not summary.errors else 1


if __name__ == "__main__":
    sys.exit(main())
