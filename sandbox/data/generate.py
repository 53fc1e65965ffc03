#!/usr/bin/env python3
"""Generate the sandbox's synthetic therapy charts; write them as bundles or load them.

    .venv/bin/python sandbox/data/generate.py --out sandbox/var/data          # transactions
    .venv/bin/python sandbox/data/generate.py --format collection --out x.json
    .venv/bin/python sandbox/data/generate.py --load http://127.0.0.1:8080/fhir

Defaults (seed 1, 24 patients, 6 disclosures each) cover every scenario and load in seconds.
Each output comes with a side table (NDJSON, one line per AuditEvent) of the decision the
contract should give, federal and per state where a state's law changes it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sandbox.data import output
from sandbox.data.charts import (
    DEFAULT_PATIENTS,
    DEFAULT_PER_PATIENT,
    DEFAULT_SEED,
    World,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--patients", type=int, default=DEFAULT_PATIENTS)
    p.add_argument("--per-patient", type=int, default=DEFAULT_PER_PATIENT,
                   help="decided disclosures per patient (default %(default)s)")
    p.add_argument("--format", choices=["transaction", "collection"], default="transaction")
    p.add_argument("--batch", type=int, default=50,
                   help="patients per transaction bundle (default %(default)s)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path,
                       help="a folder (transaction) or a .json file (collection)")
    where.add_argument("--load", metavar="FHIR_BASE", help="POST the transactions to this base")
    p.add_argument("--expected", type=Path,
                   help="where the side table goes when loading (default: not written)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per transaction")
    args = p.parse_args(argv)
    if args.patients < 1 or args.batch < 1 or args.per_patient < 1:
        p.error("--patients, --batch and --per-patient must be at least 1")
    if args.load and args.format == "collection":
        p.error("--load sends transactions; --format collection is for --out")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    world = World(seed=args.seed, patients=args.patients, per_patient=args.per_patient)
    started = time.perf_counter()
    if args.load:
        side = args.expected.open("w") if args.expected else None
        try:
            summary = output.load(world, args.load, args.batch, timeout=args.timeout,
                                  expected=side, progress=sys.stderr)
        except output.LoadError as exc:
            print(f"generate: {exc}", file=sys.stderr)
            return 1
        finally:
            if side:
                side.close()
        what = f"loaded into {args.load}"
    elif args.format == "collection":
        path = args.out / "collection.json" if args.out.is_dir() else args.out
        summary = output.write_collection(world, path)
        what = f"wrote {path} and {output.collection_expected_path(path)}"
    else:
        summary = output.write_transactions(world, args.out, args.batch)
        what = f"wrote {summary.bundles} bundles and expected.ndjson to {args.out}"
    elapsed = time.perf_counter() - started
    print(f"{what}: {summary.patients} patients, {summary.resources} resources, "
          f"{summary.disclosures} AuditEvents in {elapsed:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
