#!/usr/bin/env python3
"""How fast `consent-gap evaluate` decides, against the floor of reading the same file.

Generates one collection Bundle (default: 2,000 patients, 10 decided disclosures each, so 20,000
disclosures and about three and a half Consents per patient; deterministic seed), writes it to a
temporary file, then in the same run measures `json.load` on that file and the wall time of the
`consent-gap` console script evaluating it (a subprocess, as a user runs it). Each is run `--runs`
times and the median is kept. Prints disclosures decided per second and the ratio
evaluate / json.load (the goal is at most 3). A benchmark reports; it never asserts a timing.

    .venv/bin/python bench/evaluate.py [--patients 2000] [--per-patient 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.data import output  # noqa: E402
from sandbox.data.charts import World  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--patients", type=int, default=2000)
    p.add_argument("--per-patient", type=int, default=10)
    p.add_argument("--runs", type=int, default=3, help="measurements of each (median kept)")
    p.add_argument("--jurisdiction", help="pass --jurisdiction to evaluate (default: none)")
    p.add_argument("--keep", type=Path, help="write the bundle here and keep it")
    p.add_argument("--consent-gap", default=str(ROOT / ".venv" / "bin" / "consent-gap"),
                   help="the console script to time (default: the repo's .venv)")
    return p.parse_args(argv)


def time_json_load(path: Path, *, collect: bool = True) -> float:
    """json.load as a plain program runs it (collect=True), or with the cyclic GC paused, which
    is what a loader that knows it builds no cycles can do (the strictest floor)."""
    gc.collect()
    was_enabled = gc.isenabled()
    if not collect:
        gc.disable()
    try:
        started = time.perf_counter()
        with path.open("rb") as fh:
            data = json.load(fh)
        elapsed = time.perf_counter() - started
    finally:
        if was_enabled:
            gc.enable()
    del data
    gc.collect()
    return elapsed


def time_evaluate(command: list[str]) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"bench: {' '.join(command)} exited {done.returncode}: "
                 f"{done.stderr.decode(errors='replace').strip()[-500:]}")
    return elapsed, done.stdout


def run(args: argparse.Namespace, path: Path) -> None:
    world = World(seed=args.seed, patients=args.patients, per_patient=args.per_patient)
    started = time.perf_counter()
    summary = output.write_collection(world, path, path.with_suffix(".expected.ndjson"))
    generated = time.perf_counter() - started
    consents = sum(1 for line in path.read_text().split('"resourceType":"Consent"')) - 1
    size_mb = path.stat().st_size / 1e6
    print(f"bundle: {summary.patients} patients, {summary.resources} resources, "
          f"{consents / summary.patients:.1f} Consents per patient, {size_mb:.1f} MB "
          f"(generated in {generated:.1f}s, seed {args.seed})")

    command = [args.consent_gap, "evaluate", str(path), "--format", "json"]
    if args.jurisdiction:
        command += ["--jurisdiction", args.jurisdiction]
    loads, bare, evals, findings = [], [], [], 0
    for _ in range(args.runs):
        loads.append(time_json_load(path))
        bare.append(time_json_load(path, collect=False))
        elapsed, stdout = time_evaluate(command)
        evals.append(elapsed)
        findings = len(json.loads(stdout)["findings"])
    load_s, bare_s, eval_s = (statistics.median(x) for x in (loads, bare, evals))
    for name, runs, median in (("json.load", loads, load_s), ("json.load, GC paused", bare, bare_s),
                               ("consent-gap evaluate", evals, eval_s)):
        print(f"{name + ':':22}median {median:.3f}s of {args.runs} "
              f"({', '.join(f'{x:.3f}' for x in runs)})")
    print(f"disclosures decided:  {findings} ({findings / eval_s:,.0f} per second)")
    print(f"ratio evaluate / json.load: {eval_s / load_s:.2f} (goal <= 3)")
    print(f"ratio evaluate / json.load with the GC paused: {eval_s / bare_s:.2f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.consent_gap).exists():
        print(f"bench: {args.consent_gap} not found; run `make venv` first", file=sys.stderr)
        return 2
    if args.keep:
        run(args, args.keep)
        return 0
    fd, name = tempfile.mkstemp(prefix="consent-gap-bench-", suffix=".json")
    os.close(fd)
    path = Path(name)
    try:
        run(args, path)
    finally:
        path.unlink(missing_ok=True)
        path.with_suffix(".expected.ndjson").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
