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

`--rounds R` splits the patients into R rounds, each running all of the above on its share, so
that the load of a shared machine drifts over each run and its baseline alike; the ratios are
of the totals, with the median of the rounds beside them.

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
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
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


@dataclass
class Round:
    """One round's figures: each run against its baseline on the same patients."""

    patients: int = 0
    sweeps: list[float] = field(default_factory=list)  # around the dry run, around the rerun
    sweep_requests: int = 0
    dry: float = 0.0
    real: float = 0.0
    bare: float = 0.0
    rerun: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    written: Counter[str] = field(default_factory=Counter)
    would_write: int = 0
    bare_created: int = 0
    transactions: int = 0
    errors: int = 0
    disclosures: int = 0
    decisions: Counter[str] = field(default_factory=Counter)


def one_round(base: str, patients: list[str], batch_size: int, jurisdiction: str | None,
              state: str) -> Round:
    """Sweep, dry run, sweep, real scan, bare writes of its transactions, sweep, rerun, sweep:
    each run beside its baseline, on the same patients, so that drift in the machine's load
    touches both."""
    batches = [patients[i:i + batch_size] for i in range(0, len(patients), batch_size)]
    out = Round(patients=len(patients))

    def scan(dry_run: bool) -> tuple[float, RecordingClient, ScanSummary]:
        return run_scan(base, patients, batch_size, jurisdiction, dry_run=dry_run, state=state)

    seconds, out.sweep_requests = bare_sweep(base, batches)
    out.sweeps.append(seconds)
    out.dry, dry_client, dry = scan(True)
    out.sweeps.append(bare_sweep(base, batches)[0])
    out.real, real_client, real = scan(False)
    out.bare, out.bare_created = bare_writes(base, real_client.posted, f"x{time.time_ns():x}")
    out.sweeps.append(bare_sweep(base, batches)[0])
    out.rerun, rerun_client, rerun = scan(False)
    out.sweeps.append(bare_sweep(base, batches)[0])
    out.requests = {"dry": dry_client.request_count, "real": real_client.request_count,
                    "rerun": rerun_client.request_count}
    out.written, out.would_write = real.written, len(dry.would_write)
    out.transactions = len(real_client.posted)
    out.errors = len(dry.errors) + len(real.errors) + len(rerun.errors)
    out.disclosures, out.decisions = dry.disclosures, dry.decisions
    if rerun.written:
        print(f"the rerun wrote {dict(rerun.written)}", file=sys.stderr)
        out.errors += 1
    return out


def report(rounds: list[Round], peak: float, before: float) -> bool:
    """Print the figures and ratios; True when every goal is met."""
    n = sum(r.patients for r in rounds)
    sweep_dry = sum(sum(r.sweeps[:2]) / 2 for r in rounds)
    sweep_rerun = sum(sum(r.sweeps[2:]) / 2 for r in rounds)
    dry, real, bare, rerun = (sum(getattr(r, k) for r in rounds)
                              for k in ("dry", "real", "bare", "rerun"))
    written = sum((r.written for r in rounds), Counter())
    decisions = sum((r.decisions for r in rounds), Counter())
    per = {k: sum(r.requests[k] for r in rounds) / n for k in ("dry", "real", "rerun")}
    print(f"patients {n} in {len(rounds)} round(s), disclosures "
          f"{sum(r.disclosures for r in rounds)} (decisions {dict(sorted(decisions.items()))}); "
          f"errors {sum(r.errors for r in rounds)}")
    print("bare paging sweeps (s): " + "; ".join(
        " / ".join(f"{s:.1f}" for s in r.sweeps) for r in rounds)
        + f"; {sum(r.sweep_requests for r in rounds) / n:.2f} requests per patient")
    dry_ratio = dry / sweep_dry
    print(f"dry run: {dry:.1f} s, {per['dry']:.2f} requests per patient, would write "
          f"{sum(r.would_write for r in rounds)}; against the sweep {dry_ratio:.2f} "
          "(goal <= 1.5)")
    print(f"real scan: {real:.1f} s, {per['real']:.2f} requests per patient, "
          f"{sum(r.transactions for r in rounds)} transactions, wrote "
          f"{sum(written.values())} ({dict(sorted(written.items()))})")
    write_ratio = None
    if sum(written.values()):
        write_ratio = real / bare
        paired = median(r.real / r.bare for r in rounds if r.bare)
        print(f"bare writes of the same transactions: {bare:.1f} s, "
              f"{sum(r.bare_created for r in rounds)} created; real scan / bare writes "
              f"{write_ratio:.2f} (median of rounds {paired:.2f}; goal <= 1.3)")
    else:
        print("the real scan wrote nothing (charts scanned before): load a fresh --suffix "
              "to measure it against the bare writes")
    rerun_ratio = rerun / sweep_rerun
    paired = median(r.rerun / (sum(r.sweeps[2:]) / 2) for r in rounds)
    print(f"rerun: {rerun:.1f} s, {per['rerun']:.2f} requests per patient; rerun / sweep "
          f"{rerun_ratio:.2f} (median of rounds {paired:.2f}; goal <= 1.1)")
    would = sum(r.would_write for r in rounds)
    print(f"the dry run would write {would}, the real scan wrote {sum(written.values())}"
          + ("" if would == sum(written.values()) else "  <- they differ"))
    print(f"peak memory (max RSS): {peak:.0f} MiB (before the scans {before:.0f} MiB)")
    return (dry_ratio <= 1.5 and rerun_ratio <= 1.1 and (write_ratio or 0) <= 1.3
            and max(per.values()) <= 3 and not sum(r.errors for r in rounds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fhir-base", default="http://127.0.0.1:8080/fhir")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--per-patient", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--load", action="store_true", help="load the charts first")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1,
                        help="split the patients into this many rounds, each measuring "
                             "every run beside its baseline (on a busy machine)")
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
    size = -(-len(patients) // max(1, args.rounds))
    before = rss_mib()
    with tempfile.TemporaryDirectory() as state:
        rounds = [one_round(base, patients[i:i + size], args.batch_size, args.jurisdiction,
                            state) for i in range(0, len(patients), size)]
    return 0 if report(rounds, rss_mib(), before) else 1


if __name__ == "__main__":
    sys.exit(main())
