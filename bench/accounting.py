#!/usr/bin/env python3
"""Benchmark of the accounting of disclosures: one client with 500 accountable disclosures.

    flock /tmp/cg-bench.lock .venv/bin/python bench/accounting.py [--fhir-base URL]
        [--disclosures 500] [--rounds 7]

Needs HAPI FHIR (sandbox/up). Loads the bench client into HAPI (PUT with fixed ids, so a rerun
replaces it): 500 disclosure AuditEvents over five years to 20 recipients (police, courts,
protective services, lawyers, insurers) for purposes that make them accountable (threats,
abuse reports, court orders, subpoenas, requests), each naming one of 60 labelled records, a
court order for the legal ones. Then measures, alternating over --rounds rounds (the first,
HAPI's warm-up, discarded):

1. the accounting: `consent-gap accounting --fhir-base URL --patient ID --as-of ...` run in
   this process (no interpreter start-up): the Patient read, the fetch plan with the parties
   the disclosures name, `evaluate`, the accounting, the JSON written;
2. the bare reads it needs: the same Patient read and the same fetch plan
   (`fetch_plan.fetch_accounting_chart`), and nothing else;

and prints both medians, the ratio of the medians and the median of each round's own ratio
(goal: at most 1.5); the deciding and accounting alone on the fetched chart (what the ratio
pays for beyond the reads); then the HTML and PDF renderings of the same accounting, once each.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consent_gap.cli import main  # noqa: E402
from consent_gap.fetch_plan import fetch_accounting_chart  # noqa: E402
from consent_gap.fhir import FhirClient  # noqa: E402

from bench.panel import load  # noqa: E402 - PUT with fixed ids, 100 per transaction
from sandbox.data import fhirbuild as fb  # noqa: E402

PATIENT = "bench-acct-p1"
AS_OF = "2026-12-02T00:00:00Z"
#: (purpose, recipient kind, with a court order): each accountable under CONTRACT 1.3.
KINDS = [("THREAT", "Police department", False), ("PUBHLTH", "Protective services", False),
         ("HLEGAL", "Superior court", True), ("HLEGAL", "Law firm", False),
         ("PATRQT", "Insurer", False), ("GOV", "State agency", False)]


def bench_chart(disclosures: int) -> list[dict]:
    start = dt.datetime(2021, 6, 1, tzinfo=dt.UTC)
    resources: list[dict] = [
        fb.patient(PATIENT, "BENCH-ACCT-1", "Benchmark", "Accounting", "female",
                   dt.date(1979, 3, 8), fb.address("CA", "Sacramento", "1 Bench St", "95818")),
        fb.practitioner("bench-acct-pr", "Bench", "Therapist", "LCSW", "B-2"),
        fb.organization("bench-acct-clinic", "Bench Counseling", "prov",
                        fb.address("CA", "Sacramento", "2 Bench St", "95818")),
    ]
    recipients = []
    for i in range(20):
        oid = f"bench-acct-org-{i:02d}"
        recipients.append(oid)
        resources.append(fb.organization(oid, f"{KINDS[i % len(KINDS)][1]} {i}", "other",
                                         fb.address("CA", "Sacramento", f"{i} Civic Way",
                                                    "95814")))
    records = []
    for i in range(60):
        did = f"bench-acct-dr{i:02d}"
        records.append(did)
        resources.append(fb.document(did, PATIENT, start + dt.timedelta(days=25 * i),
                                     fb.concept(fb.LOINC, "11506-3", "Progress note"),
                                     f"Session note {i}", ["MH"], "Practitioner/bench-acct-pr"))
    order = "bench-acct-order"
    resources.append(fb.document(order, PATIENT, start - dt.timedelta(days=1),
                                 fb.concept(fb.LEGAL_INSTRUMENT,
                                            "court-order", "Court order"),
                                 "Order to produce records", [], None))
    for i in range(disclosures):
        when = start + dt.timedelta(hours=87 * i + 9)
        recipient = i % 20
        purpose, _kind, with_order = KINDS[recipient % len(KINDS)]
        entities = [fb.audit_entity(fb.ref(f"Patient/{PATIENT}"), person=True),
                    fb.audit_entity(fb.ref(f"DocumentReference/{records[i % 60]}"))]
        if with_order:
            entities.append(fb.audit_entity(fb.ref(f"DocumentReference/{order}")))
        resources.append(fb.disclosure_event(
            f"bench-acct-ae{i:04d}", when, [fb.concept(fb.ACT_REASON, purpose)],
            "Practitioner/bench-acct-pr", fb.ref(f"Organization/{recipients[recipient]}"),
            entities, "Organization/bench-acct-clinic", "bench"))
    return resources


def accounting_once(fhir_base: str, fmt: str = "json") -> tuple[float, bytes]:
    """Seconds for the whole command (in this process) and what it wrote."""
    out = io.BytesIO()
    wrapper = io.TextIOWrapper(out, encoding="utf-8")
    argv = ["accounting", "--fhir-base", fhir_base, "--auth", "none", "--patient", PATIENT,
            "--as-of", AS_OF, "--format", fmt]
    started = time.perf_counter()
    with contextlib.redirect_stdout(wrapper):
        code = main(argv)
        wrapper.flush()
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"consent-gap accounting exited {code}")
    return elapsed, out.getvalue()


def bare_once(fhir_base: str) -> float:
    """Seconds for the reads the accounting needs, and nothing else."""
    started = time.perf_counter()
    with FhirClient(fhir_base) as client:
        client.read("Patient", PATIENT)
        fetch_accounting_chart(client, PATIENT, extra=[None])
    return time.perf_counter() - started


def processing_once(resources: list[dict]) -> float:
    """Seconds for what the accounting adds to the reads: decide, account, write the JSON."""
    from consent_gap.accounting import account, parse_as_of
    from consent_gap.evaluate import evaluate
    from consent_gap.mappings import load_rules

    rules = load_rules()
    started = time.perf_counter()
    result = account(resources, evaluate(resources, rules=rules), rules, f"Patient/{PATIENT}",
                     parse_as_of(AS_OF))
    json.dumps(result.to_json())
    return time.perf_counter() - started


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fhir-base", default="http://127.0.0.1:8080/fhir")
    parser.add_argument("--disclosures", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    base = args.fhir_base.rstrip("/")

    resources = bench_chart(args.disclosures)
    load(base, resources)
    print(f"loaded Patient/{PATIENT}: {args.disclosures} disclosures, "
          f"{len(resources)} resources")

    _, body = accounting_once(base)  # warm-up (HAPI's caches, imports), discarded
    entries = len(json.loads(body)["entries"])
    bare_once(base)
    accounts, bares = [], []
    for _round in range(args.rounds):
        accounts.append(accounting_once(base)[0])
        bares.append(bare_once(base))
    account, bare = statistics.median(accounts), statistics.median(bares)
    paired = statistics.median(a / b for a, b in zip(accounts, bares, strict=True))
    print(f"accounting ({entries} entries, JSON): median {account * 1000:.0f} ms "
          f"({', '.join(f'{t * 1000:.0f}' for t in accounts)})")
    print(f"bare reads it needs: median {bare * 1000:.0f} ms "
          f"({', '.join(f'{t * 1000:.0f}' for t in bares)})")
    print(f"ratio accounting / bare reads: {account / bare:.2f} of the medians, "
          f"{paired:.2f} median of the paired rounds (goal <= 1.5)")
    with FhirClient(base) as client:
        fetched = fetch_accounting_chart(client, PATIENT)
    alone = statistics.median(processing_once(fetched) for _ in range(args.rounds))
    print(f"of which deciding and accounting alone (no I/O): median {alone * 1000:.0f} ms")
    for fmt in ("html", "pdf"):
        seconds, written = accounting_once(base, fmt)
        print(f"as {fmt}: {seconds * 1000:.0f} ms, {len(written) / 1024:.0f} KiB")


if __name__ == "__main__":
    main_()
