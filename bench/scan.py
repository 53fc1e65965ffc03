#!/usr/bin/env python3
"""Benchmark of the scan on the sandbox: 1,000 patients, 10,000 disclosures (defaults).

    flock /tmp/cg-bench.lock .venv/bin/python bench/scan.py [--fhir-base URL]
        [--patients 1000] [--per-patient 10] [--seed 7] [--load] [--suffix S]
        [--batch-size 50] [--jurisdiction US-CA]

In one run, against baselines measured in the same run:

1. a dry run (fetch, decide, look up what exists; write nothing) against a bare paging sweep
   that sends exactly the scan's chart searches with plain `requests` (following every next
   link, parsing only what paging needs), swept before and after it (goal: <= 1.5);
2. the real scan (first run: writes every finding) against bare writes: the very transactions
   the scan posted, recorded as it sent them, posted again by a plain `requests` loop with
   their identifier values and Provenance keys salted so that every conditional create
   creates again (the same entries, sizes and server work; goal: <= 1.3);
3. a rerun (writes nothing) against the bare sweep, swept before and after it (goal: <= 1.1).

It prints wall times, HTTP requests per patient, resources written, peak memory and the ratios.
The real scan must find the charts unscanned: load a fresh suffix (`--load --suffix -sN`), or
the ratio of step 2 is left out. The bare writes leave their salted copies in HAPI under the
bench's patients (tagged consent-gap, so the engine ignores them; they never match a scan's
identifiers).

`--load` first loads the synthetic charts (sandbox/data, the data helper's generator) for that
seed and size; without it they must be on the server from an earlier `--load`. Every id is
given the suffix `--suffix` (default `-b<seed>`; `--suffix ''` for the sandbox's own charts,
with the seed and size they were generated with), so the bench set never replaces the
sandbox's default charts (the generator's ids do not depend on the seed).
"""

from __future__ import annotations

import argparse
import json
import resource as rusage
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consent_gap import fetch_plan  # noqa: E402
from consent_gap.checkpoint import CheckpointStore  # noqa: E402
from consent_gap.fhir.client import FhirClient  # noqa: E402
from consent_gap.scan import PAGE_SIZE, Scanner, ScanOptions, ScanSummary  # noqa: E402
from consent_gap.writeback import FINDING_SYSTEM, PROVENANCE_TAG_SYSTEM  # noqa: E402

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


class RecordingClient(FhirClient):
    """The scan's client, keeping each transaction it posts (the bundle itself, no copy)."""

    def __init__(self, base: str) -> None:
        super().__init__(base)
        self.posted: list[dict[str, Any]] = []

    def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        self.posted.append(dict(bundle))
        return super().transaction(bundle)


def run_scan(base: str, patients: list[str], batch_size: int, jurisdiction: str | None,
             *, dry_run: bool, state: str) -> tuple[float, RecordingClient, ScanSummary]:
    """One scan run (its checkpoint in `state`); wall time, its client, its summary."""
    store = CheckpointStore(f"sqlite:///{state}/bench.db")
    client = RecordingClient(base)
    scanner = Scanner(client, store, ScanOptions(
        base, patients=tuple(patients), jurisdiction=jurisdiction, dry_run=dry_run,
        batch_size=batch_size), progress_stream=sys.stderr)
    started = time.perf_counter()
    summary = scanner.run()
    seconds = time.perf_counter() - started
    client.close()
    store.close()
    return seconds, client, summary


def salted(bundle: dict[str, Any], salt: str) -> str:
    """The bundle as JSON with every identifier value and Provenance key given `salt`, so
    that posting it creates what the scan created, not matches it."""
    text = json.dumps(bundle)
    keys = set()
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        keys |= {i["value"] for i in resource.get("identifier", [])
                 if i.get("system") == FINDING_SYSTEM}
        keys |= {t["code"] for t in resource.get("meta", {}).get("tag", [])
                 if t.get("system") == PROVENANCE_TAG_SYSTEM}
    for key in keys:
        text = text.replace(key, key + salt)
    return text


def bare_writes(base: str, bundles: list[dict[str, Any]], salt: str) -> tuple[float, int]:
    """The scan's transactions posted with plain requests; (seconds, resources created)."""
    bodies = [salted(bundle, salt) for bundle in bundles]
    http = requests.Session()
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    created = 0
    started = time.perf_counter()
    for body in bodies:
        response = http.post(base, data=body, headers=headers, timeout=600)
        if response.status_code != 200:
            raise SystemExit(f"bare write refused: HTTP {response.status_code}")
        created += sum(1 for e in response.json().get("entry", [])
                       if str(e.get("response", {}).get("status", "")).startswith("201"))
    seconds = time.perf_counter() - started
    http.close()
    return seconds, created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fhir-base", default="http://127.0.0.1:8080/fhir")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--per-patient", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--load", action="store_true", help="load the charts first")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--jurisdiction", default="US-CA")
    parser.add_argument("--suffix", default=None,
                        help="suffix of every id (default -b<seed>; '' for none)")
    args = parser.parse_args(argv)
    base = args.fhir_base.rstrip("/")
    suffix = f"-b{args.seed}" if args.suffix is None else args.suffix

    world = World(seed=args.seed, patients=args.patients, per_patient=args.per_patient)
    if args.load:
        count, seconds = load(world, base, suffix)
        print(f"loaded {count} resources in {seconds:.0f} s")
    patients = patient_ids(world, suffix)
    batches = [patients[i:i + args.batch_size] for i in range(0, len(patients), args.batch_size)]

    def scan(dry_run: bool, state: str) -> tuple[float, RecordingClient, ScanSummary]:
        return run_scan(base, patients, args.batch_size, args.jurisdiction, dry_run=dry_run,
                        state=state)

    before_scan = rss_mib()
    with tempfile.TemporaryDirectory() as state:
        sweep0, sweep_requests = bare_sweep(base, batches)
        dry_seconds, dry_client, dry = scan(True, state)
        sweep1, _ = bare_sweep(base, batches)
        real_seconds, real_client, real = scan(False, state)
        salt = f"x{time.time_ns():x}"
        bare_seconds, bare_created = bare_writes(base, real_client.posted, salt)
        sweep2, _ = bare_sweep(base, batches)
        rerun_seconds, rerun_client, rerun = scan(False, state)
        sweep3, _ = bare_sweep(base, batches)
    peak = rss_mib()

    n = len(patients)
    written = sum(real.written.values())
    print(f"patients {n}, disclosures {dry.disclosures} "
          f"(decisions {dict(sorted(dry.decisions.items()))}); errors: dry run "
          f"{len(dry.errors)}, scan {len(real.errors)}, rerun {len(rerun.errors)}")
    print(f"bare paging sweep: {sweep0:.1f} / {sweep1:.1f} s around the dry run, "
          f"{sweep2:.1f} / {sweep3:.1f} s around the rerun; {sweep_requests} requests")
    dry_ratio = dry_seconds / ((sweep0 + sweep1) / 2)
    print(f"dry run: {dry_seconds:.1f} s, {dry_client.request_count / n:.2f} requests per "
          f"patient, would write {len(dry.would_write)}; ratio to the sweep {dry_ratio:.2f} "
          "(goal <= 1.5)")
    print(f"real scan: {real_seconds:.1f} s, {real_client.request_count / n:.2f} requests per "
          f"patient, {len(real_client.posted)} transactions, wrote {written} "
          f"({dict(sorted(real.written.items()))})")
    write_ratio = None
    if written:
        write_ratio = real_seconds / bare_seconds
        print(f"bare writes of the same transactions: {bare_seconds:.1f} s, "
              f"{bare_created} created; ratio real scan / bare writes {write_ratio:.2f} "
              "(goal <= 1.3)")
    else:
        print("the real scan wrote nothing (charts scanned before): load a fresh --suffix "
              "to measure it against the bare writes")
    rerun_ratio = rerun_seconds / ((sweep2 + sweep3) / 2)
    print(f"rerun: {rerun_seconds:.1f} s, {rerun_client.request_count / n:.2f} requests per "
          f"patient, wrote {sum(rerun.written.values())}; ratio rerun / sweep "
          f"{rerun_ratio:.2f} (goal <= 1.1)")
    print(f"the dry run would write {len(dry.would_write)}, the real scan wrote {written}"
          + ("" if len(dry.would_write) == written else "  <- they differ"))
    print(f"peak memory (max RSS): {peak:.0f} MiB (before the scans {before_scan:.0f} MiB)")
    ok = (dry_ratio <= 1.5 and rerun_ratio <= 1.1 and (write_ratio or 0) <= 1.3
          and not (dry.errors or real.errors or rerun.errors))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
