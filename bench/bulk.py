#!/usr/bin/env python3
"""Benchmark of `scan --bulk` on the sandbox: 2,000 patients (defaults), in one run:

    .venv/bin/python bench/bulk.py [--fhir-base URL] [--patients 2000] [--per-patient 6]
                                   [--seed 11] [--load] [--delete] [--sizes 500,1000,2000]
                                   [--batch-size 50] [--jurisdiction US-CA]
                                   [--baseline-src DIR]

Prints, for the Group of all the patients:
- the bare `$export` (kick-off to the last file downloaded, plain `requests`, same polling
  cadence as the scan: at most 1 s between polls), measured before and after the scans;
- `scan --bulk --dry-run` (export, spool, index, decide, nothing written) and its ratio to the
  bare export (goal <= 1.2);
- the paging `scan --dry-run` of the same patients, and its ratio to the bulk scan;
- the peak memory (max RSS) of the bulk scan's process at each size of `--sizes` (goal: flat
  in the number of patients), and of the paging scan;
- the decide step (the bulk scan's time after the export) in process and on Dask with 1 and 2
  local workers (the workers' own memory is not in the scan's RSS).

Each scan runs in a child process of its own so its peak memory is its own. `--load` first loads
the synthetic charts (sandbox/data) under the suffix `-k<seed>`, as bench/scan.py does;
`--delete` deletes them and the Groups at the end (else a later run reuses them).
`--baseline-src DIR` (a checkout of an earlier revision, e.g. `git worktree add --detach DIR
REV`) also runs that revision's bulk scan of all the patients, right after this tree's. Each
scan's requests are counted by kind (method, type, search parameter names) and the largest
kinds printed.
Run it on a HAPI of your own, under `flock /tmp/cg-bench.lock`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource as rusage
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scan import bench_batches, load, patient_ids  # noqa: E402
from sandbox.data.charts import World  # noqa: E402

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
POLL = 1.0


def put_group(base: str, group: str, patients: list[str]) -> None:
    response = requests.put(f"{base}/Group/{group}", headers=FHIR_JSON, timeout=300, json={
        "resourceType": "Group", "id": group, "type": "person", "actual": True,
        "member": [{"entity": {"reference": f"Patient/{p}"}} for p in patients]})
    if response.status_code >= 300:
        raise SystemExit(f"Group refused: HTTP {response.status_code} {response.text[:300]}")


def delete(world: World, base: str, suffix: str, groups: list[str]) -> int:
    """Delete what `--load` loaded (and the Groups), charts in the reverse order of the load
    so the shared directory goes last and no delete leaves a dangling reference."""
    http = requests.Session()
    count = 0
    batches = [[("Group", g) for g in groups],
               *reversed([[(r["resourceType"], r["id"]) for r in batch]
                          for batch in bench_batches(world, suffix)])]
    for batch in batches:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "DELETE", "url": f"{rtype}/{rid}"}} for rtype, rid in batch]}
        response = http.post(base, json=bundle, headers=FHIR_JSON, timeout=600)
        if response.status_code >= 300:
            raise SystemExit(f"delete refused: HTTP {response.status_code} "
                             f"{response.text[:300]}")
        count += len(batch)
    return count


def bare_export(base: str, group: str, types: str, type_filter: str) -> tuple[float, int]:
    """Kick-off to the last byte of the last file, nothing parsed. Returns (seconds, bytes)."""
    http = requests.Session()
    started = time.perf_counter()
    kick = http.get(f"{base}/Group/{group}/$export", timeout=300,
                    params={"_type": types, "_typeFilter": type_filter},
                    headers={"Accept": "application/fhir+json", "Prefer": "respond-async"})
    if kick.status_code != 202:
        raise SystemExit(f"bare export refused: HTTP {kick.status_code} {kick.text[:300]}")
    status = kick.headers["Content-Location"]
    while True:
        poll = http.get(status, timeout=300, headers={"Accept": "application/json"})
        if poll.status_code == 200:
            break
        if poll.status_code != 202:
            raise SystemExit(f"bare export failed: HTTP {poll.status_code}")
        time.sleep(min(POLL, float(poll.headers.get("Retry-After") or POLL)))
    size = 0
    for output in poll.json()["output"]:
        with http.get(output["url"], stream=True, timeout=300,
                      headers={"Accept": "application/fhir+ndjson"}) as response:
            for chunk in response.iter_content(1 << 16):
                size += len(chunk)
    seconds = time.perf_counter() - started
    http.delete(status, timeout=60)
    http.close()
    return seconds, size


# ---- the child: one scan, its figures as JSON on stdout ------------------------------------------

def request_kind(response: requests.Response) -> str:
    """A request's kind for the profile: method, resource type or operation, and the names
    of its search parameters (values left out); a paging link is `page`."""
    request = response.request
    parts = urlsplit(request.url or "")
    path = parts.path.split("/fhir", 1)[-1].strip("/")
    if "_getpages" in parts.query:
        return f"{request.method} page"
    body = request.body if isinstance(request.body, str) else (request.body or b"").decode()
    names = sorted({name for name, _ in parse_qsl(parts.query or body)} - {"_count"})
    segments = path.split("/")
    head = "/".join([segments[0], *(p for p in segments[1:] if p[:1] in "$_")])
    return f"{request.method} {head or '(base)'}" + (f" ?{','.join(names)}" if names else "")


def count_requests(session: requests.Session) -> Counter[str]:
    """Counts each response the session gets, by `request_kind`, and its seconds under the
    key kind + ' s' (time to the response's headers)."""
    kinds: Counter[str] = Counter()

    def hook(response: requests.Response, *_args: Any, **_kw: Any) -> None:
        kind = request_kind(response)
        kinds[kind] += 1
        kinds[f"{kind} s"] += response.elapsed.total_seconds()

    session.hooks["response"].append(hook)
    return kinds


def child(args: argparse.Namespace) -> int:
    from consent_gap.checkpoint import CheckpointStore
    from consent_gap.fhir.client import FhirClient
    from consent_gap.scan import Scanner, ScanOptions
    from consent_gap.scan.bulk import BulkScanner
    from consent_gap.scan.wiring import bound_evaluator
    from consent_gap.settings import Settings

    with tempfile.TemporaryDirectory() as state:
        settings = Settings(fhir_base=args.fhir_base, jurisdiction=args.jurisdiction,
                            state_dir=Path(state), batch_size=args.batch_size)
        store = CheckpointStore(settings.database_url)
        client = FhirClient(args.fhir_base)
        kinds = count_requests(client.session)
        evaluate = bound_evaluator(settings)
        patients = tuple(json.loads(Path(args.patients_file).read_text())) \
            if args.patients_file else ()
        options = ScanOptions(args.fhir_base, patients=patients, full=True,
                              jurisdiction=args.jurisdiction, dry_run=True,
                              batch_size=args.batch_size)
        started = time.perf_counter()
        export_seconds = 0.0
        if args.child == "paging":
            summary = Scanner(client, store, options, evaluator=evaluate).run()
        elif args.workers:
            from consent_gap.scan.distributed import dask_decider

            with dask_decider(evaluate, workers=args.workers) as decide:
                ready = time.perf_counter()
                scanner = BulkScanner(client, store, options, group=args.group,
                                      database_url=settings.database_url, max_wait=POLL,
                                      evaluator=evaluate, decide_many=decide)
                summary = scanner.run()
                started = ready  # the cluster's start-up is reported apart
                export_seconds = scanner.export_seconds
        else:
            scanner = BulkScanner(client, store, options, group=args.group,
                                  database_url=settings.database_url, max_wait=POLL,
                                  evaluator=evaluate)
            summary = scanner.run()
            export_seconds = scanner.export_seconds
        seconds = time.perf_counter() - started
        client.close()
        store.close()
    figures = {
        "kind": args.child, "group": args.group, "workers": args.workers,
        "seconds": seconds, "export_seconds": export_seconds,
        "decide_seconds": seconds - export_seconds if export_seconds else None,
        "rss_mib": rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss / 1024,
        "would_write_mib": rows_size(summary.would_write) / 2**20,
        "status": summary.status, "patients": summary.patients_done,
        "disclosures": summary.disclosures, "would_write": len(summary.would_write),
        "requests": summary.requests, "errors": summary.errors[:3],
        "by_kind": {k: round(v, 2) for k, v in kinds.most_common() if not k.endswith(" s")},
        "seconds_by_kind": {k[:-2]: round(v, 2) for k, v in kinds.items() if k.endswith(" s")}}
    # Each child's figures also go to a file as they come, so a long run shows its progress.
    with (Path(tempfile.gettempdir()) / "bench-bulk-children.jsonl").open("a") as log:
        log.write(json.dumps(figures) + "\n")
    print(json.dumps(figures))
    return 0


def rows_size(rows: list[dict[str, str]]) -> int:
    """Bytes held by the dry run's list of what it would write (the list, its dicts, their
    strings): the part of the scan's memory that is its answer, not its working set."""
    return sys.getsizeof(rows) + sum(
        sys.getsizeof(row) + sum(sys.getsizeof(v) for v in row.values()) for row in rows)


def run_child(base: str, kind: str, *, group: str | None = None,
              patients_file: str | None = None, workers: int | None = None,
              batch_size: int = 50, jurisdiction: str = "US-CA",
              source: str | None = None) -> dict[str, Any]:
    """One scan in a child process; `source`: a checkout whose plugin/ the child imports
    instead of this tree's (the baseline)."""
    env = {**os.environ, "PYTHONPATH": str(Path(source) / "plugin")} if source else None
    command = [sys.executable, __file__, "--child", kind, "--fhir-base", base,
               "--batch-size", str(batch_size), "--jurisdiction", jurisdiction]
    if group:
        command += ["--group", group]
    if patients_file:
        command += ["--patients-file", patients_file]
    if workers:
        command += ["--workers", str(workers)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=7200, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    if figures["status"] != "ok":
        raise SystemExit(f"{kind}: status {figures['status']}: {figures['errors']}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fhir-base", default="http://127.0.0.1:8080/fhir")
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--per-patient", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--load", action="store_true", help="load the charts first")
    parser.add_argument("--delete", action="store_true",
                        help="delete the charts and Groups after the run (as --load loads them)")
    parser.add_argument("--sizes", default="500,1000,2000")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--jurisdiction", default="US-CA")
    parser.add_argument("--baseline-src", metavar="DIR",
                        help="a checkout of an earlier revision: its bulk scan of all the "
                             "patients is measured too, in the same run")
    parser.add_argument("--rounds", type=int, default=1,
                        help="paired rounds of the ratio: bare export, bulk scan (and the "
                             "baseline's), ..., bare export")
    parser.add_argument("--ratio-only", action="store_true",
                        help="only the paired rounds (no other sizes, paging scan or Dask)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--patients-file", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.fhir_base = args.fhir_base.rstrip("/")
    if args.child:
        return child(args)

    from consent_gap.scan.bulk import EXPORT_TYPES, type_filters

    base = args.fhir_base
    suffix = f"-k{args.seed}"
    world = World(seed=args.seed, patients=args.patients, per_patient=args.per_patient)
    if args.load:
        count, seconds = load(world, base, suffix)
        print(f"loaded {count} resources in {seconds:.0f} s")
    patients = patient_ids(world, suffix)
    sizes = sorted({min(int(s), len(patients)) for s in args.sizes.split(",")} | {len(patients)})
    groups = {}
    for size in sizes:
        groups[size] = f"bulk-bench-{size}{suffix}"
        put_group(base, groups[size], patients[:size])
    whole = groups[len(patients)]
    types, type_filter = ",".join(EXPORT_TYPES), type_filters()[0]
    common = {"batch_size": args.batch_size, "jurisdiction": args.jurisdiction}

    # Paired rounds: a bare export before and after each bulk scan of all the patients (and
    # the baseline's), so each ratio compares runs minutes apart on a shared server.
    bares, size_bytes = [], 0
    tops: list[dict[str, Any]] = []
    olds: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        seconds, size_bytes = bare_export(base, whole, types, type_filter)
        bares.append(seconds)
        tops.append(run_child(base, "bulk", group=whole, **common))
        if args.baseline_src:
            olds.append(run_child(base, "bulk", group=whole, source=args.baseline_src,
                                  **common))
    bares.append(bare_export(base, whole, types, type_filter)[0])

    def paired(runs: list[dict[str, Any]]) -> list[float]:
        return [run["seconds"] / ((bares[i] + bares[i + 1]) / 2) for i, run in enumerate(runs)]

    ratios, old_ratios = paired(tops), paired(olds)
    top = tops[ratios.index(sorted(ratios)[(len(ratios) - 1) // 2])]  # the median round's
    print(f"bare $export of {len(patients)} patients: "
          f"{', '.join(f'{b:.1f}' for b in bares)} s, {size_bytes / 1e6:.1f} MB of NDJSON")
    for index, run in enumerate(tops):
        print(f"round {index + 1}: scan --bulk --dry-run {run['seconds']:.1f} s (export and "
              f"spool {run['export_seconds']:.1f} s, decide {run['decide_seconds']:.1f} s), "
              f"{run['requests']} requests; ratio to the bare exports around it "
              f"{ratios[index]:.2f}")
        if olds:
            old = olds[index]
            print(f"round {index + 1}: baseline ({args.baseline_src}) {old['seconds']:.1f} s "
                  f"(export and spool {old['export_seconds']:.1f} s, decide "
                  f"{old['decide_seconds']:.1f} s), {old['requests']} requests, would write "
                  f"{old['would_write']}; ratio {old_ratios[index]:.2f}")
    print(f"ratio bulk / bare export, median of {len(ratios)} paired round(s): "
          f"{statistics.median(ratios):.2f} (goal <= 1.2)"
          + (f"; baseline {statistics.median(old_ratios):.2f}" if olds else ""))
    for name, figures in (("bulk", top), *((("baseline", olds[0]),) if olds else ())):
        print(f"requests of the {name} scan by kind: {by_kind(figures)}")
    if not args.ratio_only:
        others(base, groups, patients, top, common)
    if args.delete:
        print(f"deleted {delete(world, base, suffix, list(groups.values()))} resources")
    return 0 if statistics.median(ratios) <= 1.2 else 1


def by_kind(figures: dict[str, Any], top: int = 8) -> str:
    return ", ".join(f"{kind} {count} ({figures['seconds_by_kind'][kind]:.0f} s)"
                     for kind, count in list(figures["by_kind"].items())[:top])


def others(base: str, groups: dict[int, str], patients: list[str],
           top: dict[str, Any], common: dict[str, Any]) -> None:
    """The figures besides the ratio: peak memory by size, the paging scan, Dask."""
    whole = groups[len(patients)]
    bulk = {size: run_child(base, "bulk", group=group, **common)
            for size, group in groups.items() if size != len(patients)}
    bulk[len(patients)] = top
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(patients, handle)
    paging = run_child(base, "paging", patients_file=handle.name, **common)
    Path(handle.name).unlink()
    dask = {n: run_child(base, "bulk", group=whole, workers=n, **common) for n in (1, 2)}
    print(f"patients {top['patients']}, disclosures {top['disclosures']}, would write "
          f"{top['would_write']} resources (paging: {paging['disclosures']} disclosures, "
          f"{paging['would_write']} resources)")
    print(f"paging scan --dry-run: {paging['seconds']:.1f} s, {paging['requests']} requests; "
          f"ratio paging / bulk {paging['seconds'] / top['seconds']:.2f}")
    print(f"requests of the paging scan by kind: {by_kind(paging)}")
    for size in sorted(bulk):
        print(f"peak memory, bulk scan of {size} patients: {bulk[size]['rss_mib']:.0f} MiB "
              f"(of which the dry run's list of {bulk[size]['would_write']} rows "
              f"{bulk[size]['would_write_mib']:.1f} MiB)")
    print(f"peak memory, paging scan of {len(patients)} patients: {paging['rss_mib']:.0f} MiB")
    print(f"decide step: in process {top['decide_seconds']:.1f} s; Dask 1 worker "
          f"{dask[1]['decide_seconds']:.1f} s; Dask 2 workers {dask[2]['decide_seconds']:.1f} s "
          f"(ratio 1/2 workers {dask[1]['decide_seconds'] / dask[2]['decide_seconds']:.2f})")


if __name__ == "__main__":
    sys.exit(main())
