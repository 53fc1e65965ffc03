#!/usr/bin/env python3
"""How fast `consent-gap evaluate` decides, against the floor of reading the same file.

For each size (default 1k, 20k and 100k disclosures: 10 decided disclosures per patient from the
sandbox's chart generator, about 3.7 Consents per patient, seed 2026) it writes one collection
Bundle and the same resources as NDJSON to a temporary folder, then, in the same run and in fresh
processes each:

- the strict floor: `json.load` of the Bundle with the cyclic collector paused, CPU time and peak
  resident memory (the parsed input's footprint, the figure memory is held to);
- `consent-gap evaluate BUNDLE` and `consent-gap evaluate NDJSON` of this tree, CPU time (user +
  system of the child) and peak resident memory;
- with `--baseline REV`, the same evaluate of another commit (checked out with `git worktree`),
  so before and after are measured side by side.

Children run as an installed command does: from compiled bytecode (pip compiles it at install
time; a shell with PYTHONDONTWRITEBYTECODE would otherwise make every child compile the package
again, about 0.07 CPU s of each run). The bytecode goes to a folder of the run
(PYTHONPYCACHEPREFIX), written by one warm-up run of each command, never into the trees.

Each measurement runs `--runs` times (median kept), alternating. Prints the ratios evaluate /
floor (goal: at most 2 at 20k and 100k) and peak memory / floor's (goal: at most 1.5 for a
Bundle; flat in the file size for NDJSON). A benchmark reports; it never asserts a timing.

    flock /tmp/cg-bench.lock .venv/bin/python bench/evaluate.py [--sizes 1000 20000 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.data import output  # noqa: E402
from sandbox.data.charts import World  # noqa: E402

FLOOR = """
import gc, json, resource, sys, time
gc.disable()
started = time.process_time()
with open(sys.argv[1], "rb") as fh:
    data = json.load(fh)
cpu = time.process_time() - started
print(json.dumps({"cpu": cpu, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

CLI = ("import sys; sys.argv[0] = \"consent-gap\"; from consent_gap.cli import main; "
       "sys.exit(main())")  # argv[0] as the console script has it


def measure(command: list[str], env: dict | None = None) -> tuple[float, float, bytes]:
    """(CPU seconds, peak RSS in MB, stdout) of one child process, as GNU time reports them.

    Through /usr/bin/time: a child started straight from this process would report this
    process's own peak (Linux keeps the peak across vfork and exec), which holds the generator.
    `env` holds PYCACHE (`compiled`): the child reads bytecode as an installed command does."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        done = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", report.name,
                               *command], capture_output=True, env=full_env, check=False)
        figures = report.read().split()
    if done.returncode != 0:
        sys.exit(f"bench: {' '.join(command)} exited {done.returncode}: "
                 f"{done.stderr.decode(errors='replace').strip()[-800:]}")
    user, system, peak_kb = (float(x) for x in figures[-3:])
    return user + system, peak_kb / 1024, done.stdout


def compiled(temp: Path) -> dict:
    """The environment that keeps children's bytecode in `temp` (see the module's note)."""
    return {"PYTHONPYCACHEPREFIX": str(temp / "pycache")}


def write_inputs(folder: Path, seed: int, disclosures: int) -> tuple[Path, Path, str]:
    """The Bundle and the same resources as NDJSON; a one-line description of them."""
    world = World(seed=seed, patients=max(1, disclosures // 10), per_patient=10)
    bundle = folder / f"bundle-{disclosures}.json"
    summary = output.write_collection(world, bundle, folder / f"expected-{disclosures}.ndjson")
    ndjson = folder / f"bundle-{disclosures}.ndjson"
    with bundle.open("rb") as fh:
        data = json.load(fh)
    with ndjson.open("w") as out:
        for entry in data["entry"]:
            out.write(json.dumps(entry["resource"], separators=(",", ":")) + "\n")
    del data
    size = bundle.stat().st_size / 1e6
    return bundle, ndjson, (f"{summary.patients} patients, {summary.resources} resources, "
                            f"{size:.1f} MB")


def tree_env(tree: Path, temp: Path) -> dict:
    """A child running the evaluate of `tree` (its package and its tables)."""
    return {"PYTHONPATH": str(tree / "plugin"), "CONSENT_GAP_MAPPINGS": str(tree / "mappings"),
            **compiled(temp)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000, 100000])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--baseline", help="also measure the evaluate of this commit")
    p.add_argument("--no-ndjson", action="store_true")
    args = p.parse_args(argv)
    if not Path("/usr/bin/time").exists():
        print("bench: needs GNU time (/usr/bin/time; Debian package time)", file=sys.stderr)
        return 2
    temp = Path(tempfile.mkdtemp(prefix="consent-gap-bench-evaluate-"))
    trees = [("this tree", ROOT)]
    try:
        if args.baseline:
            base = temp / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                            str(base), args.baseline], check=True)
            trees.insert(0, (f"baseline {args.baseline}", base))
        print(f"seed {args.seed}; sizes {args.sizes} disclosures; {args.runs} runs each "
              f"(median); CPU time = user + system of the child; RSS = its peak; children run "
              f"from compiled bytecode, as installed")
        small, _ndjson, _described = write_inputs(temp, args.seed, 10)
        measure([sys.executable, "-c", FLOOR, str(small)], compiled(temp))  # warm-up
        for _name, tree in trees:
            measure([sys.executable, "-c", CLI, "evaluate", str(small)], tree_env(tree, temp))
        for size in args.sizes:
            bundle, ndjson, described = write_inputs(temp, args.seed, size)
            print(f"\n{size:,} disclosures: {described}")
            figures: dict[str, list[tuple[float, float]]] = {}
            findings: dict[str, int] = {}
            for _ in range(args.runs):
                cpu, rss, out = measure([sys.executable, "-c", FLOOR, str(bundle)],
                                        compiled(temp))
                figures.setdefault("json.load, GC paused (floor)", []).append((cpu, rss))
                for name, tree in trees:
                    env = tree_env(tree, temp)
                    inputs = [("Bundle", bundle)] + ([] if args.no_ndjson
                                                     else [("NDJSON", ndjson)])
                    for kind, path in inputs:
                        label = f"evaluate {kind}, {name}"
                        cpu, rss, out = measure([sys.executable, "-c", CLI, "evaluate",
                                                 str(path)], env)
                        figures.setdefault(label, []).append((cpu, rss))
                        findings[label] = len(json.loads(out)["findings"])
            floor_cpu = statistics.median(c for c, _r in figures[
                "json.load, GC paused (floor)"])
            floor_rss = statistics.median(r for _c, r in figures[
                "json.load, GC paused (floor)"])
            for label, runs in figures.items():
                cpu = statistics.median(c for c, _r in runs)
                rss = statistics.median(r for _c, r in runs)
                count = findings.get(label)
                rate = f", {count / cpu:,.0f} disclosures/CPU s" if count else ""
                print(f"  {label:44} CPU {cpu:7.2f} s ({cpu / floor_cpu:4.2f}x floor), "
                      f"peak {rss:7.0f} MB ({rss / floor_rss:4.2f}x floor){rate}")
            bundle.unlink()
            ndjson.unlink()
    finally:
        if args.baseline:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(temp / "baseline")], check=False)
        shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
