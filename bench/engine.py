#!/usr/bin/env python3
"""How fast the pure engine decides: decisions per CPU second, 3 and 30 Consents per patient.

The workload is fixed (a seeded generator below, printed at the start): N patients, each with
K Consents of every kind the contract reads (authorizations with recipients, purposes, periods,
labels, nested denies, deny roots with nested permits; restrictions; revoked, unsigned, notice
Consents) and D disclosures to a pool of recipients for mixed purposes and data. Each patient's
resources are normalized outside the timed region; the timed region is the engine alone:
preparing the patient's Consents and deciding each of its disclosures (`engine.decide`, no
wording), with the cyclic collector paused as `evaluate` runs it, in CPU time.

Baseline, measured in the same run: the same workload decided by the engine of another commit
(default BASELINE, the engine before issue 13's rewrite), checked out with `git worktree` into
a temporary folder and run in its own process, alternating rounds with this tree's engine so a
busy machine slows both alike; each figure is the best pass of all rounds (the least
disturbed: on a shared machine other jobs only ever add time). Two baselines: the old engine as
`evaluate` ran it (one `Prepared` per run, so a chart's Consents were prepared once), and, with
`--uncached`, the old engine called per decision with no cache (every Consent re-prepared for
each decision), which is how issue 13 measured "today's figure" against LEAP-CDS. The
decisions are compared too: the digest of (disclosure, decision, basis, reasons, accountable)
per revision, and how many differ (the contract's clarifications change some on purpose).
A benchmark reports; it never asserts a timing.

    flock /tmp/cg-bench.lock .venv/bin/python bench/engine.py [--patients 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "f94ff7e"  # main before issue 13's engine work; see --baseline

ACTREASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACTCODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
POLICY = "http://terminology.hl7.org/CodeSystem/consentpolicycodes"
SCOPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                     "code": "patient-privacy"}]}
IRCP = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                     "code": "IRCP"}]}]
DISCLOSE = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                         "code": "disclose"}]}]
PURPOSES = ["TREAT", "COC", "HPAYMT", "HOPERAT", "PATRQT", "FAMRQT", "THREAT", "PUBHLTH",
            "HLEGAL", "ETREAT", "CLMATTCH", "TRAIN", "HRESCH", "GOV"]
CONSENT_PURPOSES = ["TREAT", "HPAYMT", "HOPERAT", "PATRQT", "PUBHLTH", "COC", "FAMRQT"]
LABELS = ["PSYTHPN", "42CFRPart2", "ADOL", "ETH", "HIV"]
RECIPIENTS = [f"Organization/org-{i}" for i in range(8)] + \
             [f"Practitioner/pr-{i}" for i in range(4)] + ["RelatedPerson/friend"]


# --------------------------------------------------------------------------------------------
# The workload (deterministic)
# --------------------------------------------------------------------------------------------


def _coded(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def _day(rnd: random.Random, first: int = 2023, last: int = 2026) -> str:
    return f"{rnd.randint(first, last)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"


def _permit(rnd: random.Random) -> dict:
    node: dict = {"type": "permit"}
    start = _day(rnd, 2022, 2024)
    node["period"] = {"start": start, "end": f"{int(start[:4]) + rnd.choice((1, 2, 3))}"
                                                f"{start[4:]}"}
    if rnd.random() < 0.9:
        node["actor"] = [{"role": IRCP[0], "reference": {"reference": rnd.choice(RECIPIENTS)}}
                         for _ in range(rnd.choice((1, 1, 2)))]
    if rnd.random() < 0.9:
        node["purpose"] = [{"system": ACTREASON, "code": c}
                           for c in rnd.sample(CONSENT_PURPOSES, rnd.choice((1, 1, 2)))]
    if rnd.random() < 0.8:
        node["action"] = DISCLOSE
    if rnd.random() < 0.2:
        node["securityLabel"] = [{"system": ACTCODE, "code": rnd.choice(LABELS[:3])}]
    return node


def _deny(rnd: random.Random) -> dict:
    kind = rnd.choice(("purpose", "actor", "label"))
    if kind == "purpose":
        return {"type": "deny", "purpose": [{"system": ACTREASON,
                                             "code": rnd.choice(PURPOSES)}]}
    if kind == "actor":
        return {"type": "deny", "actor": [{"role": IRCP[0], "reference": {
            "reference": rnd.choice(RECIPIENTS)}}]}
    return {"type": "deny", "securityLabel": [{"system": ACTCODE, "code": rnd.choice(LABELS)}]}


def _consent(rnd: random.Random, cid: str, patient: str) -> tuple[dict, dict | None]:
    """A Consent of a random kind and the Provenance that signs it (None when unsigned)."""
    kind = rnd.choices(("auth", "deny-root", "restriction", "revoked", "unsigned", "npp"),
                       (55, 10, 10, 10, 10, 5))[0]
    signed = _day(rnd, 2022, 2024)
    consent: dict = {"resourceType": "Consent", "id": cid, "status": "active", "scope": SCOPE,
                     "patient": {"reference": patient}, "dateTime": signed,
                     "performer": [{"reference": patient}],
                     "category": [_coded("http://loinc.org", "64292-6")],
                     "policyRule": _coded(POLICY, "hipaa-auth")}
    if kind in ("auth", "revoked", "unsigned"):
        consent["provision"] = _permit(rnd)
        if rnd.random() < 0.4:
            consent["provision"]["provision"] = [_deny(rnd)]
    elif kind == "deny-root":
        consent["provision"] = {"type": "deny", "provision": [_permit(rnd), _permit(rnd)]}
    elif kind == "restriction":
        consent["policyRule"] = _coded(POLICY, "hipaa-restrictions")
        consent["category"] = [_coded(ACTCODE, "IDSCL")]
        consent["provision"] = {"type": "permit", "provision": [_deny(rnd)]}
    else:
        consent["policyRule"] = _coded(POLICY, "hipaa-npp")
        consent["provision"] = {"type": "permit"}
    if kind == "revoked":
        consent["status"] = "inactive"
        consent["meta"] = {"lastUpdated": f"{_day(rnd, 2024, 2026)}T00:00:00Z"}
    if rnd.random() < 0.1:  # a parent signs instead
        consent["performer"] = [{"reference": "RelatedPerson/parent"}]
    if kind == "unsigned":
        return consent, None
    return consent, {"resourceType": "Provenance", "id": f"prov-{cid}",
                     "target": [{"reference": f"Consent/{cid}"}],
                     "recorded": f"{signed}T00:00:00Z",
                     "signature": [{"type": [{"system": "urn:iso-astm:E1762-95:2013",
                                              "code": "1.2.840.10065.1.12.1.7"}],
                                    "when": f"{signed}T00:00:00Z",
                                    "who": {"reference": patient}}]}


def _disclosure(rnd: random.Random, aid: str, patient: str, docs: list[str]) -> dict:
    recipient = rnd.choice([*RECIPIENTS, patient])
    purposes = rnd.sample(PURPOSES, rnd.choice((1, 1, 1, 2)))
    return {
        "resourceType": "AuditEvent", "id": aid,
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110106"},
        "subtype": [{"system": "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle",
                     "code": "disclose"}],
        "recorded": f"{_day(rnd, 2023, 2026)}T10:00:00Z",
        "purposeOfEvent": [_coded(ACTREASON, p) for p in purposes],
        "agent": [{"type": _coded("http://dicom.nema.org/resources/ontology/DCM", "110152"),
                   "who": {"reference": recipient}, "requestor": False}],
        "entity": [{"what": {"reference": patient}}] + [
            {"what": {"reference": doc}} for doc in rnd.sample(docs, rnd.choice((1, 1, 2)))],
    }


def patient_bundle(seed: int, index: int, consents: int, disclosures: int) -> dict:
    """One patient's chart as a collection Bundle: the same for a seed, whatever the revision."""
    rnd = random.Random(f"{seed}-{index}-{consents}")
    patient = f"Patient/p{index}"
    minor = rnd.random() < 0.15
    resources: list[dict] = [
        {"resourceType": "Patient", "id": f"p{index}",
         "birthDate": "2012-05-01" if minor else "1980-05-01"},
        {"resourceType": "RelatedPerson", "id": "parent", "patient": {"reference": patient},
         "relationship": [_coded("http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                 rnd.choice(("MTH", "GUARD")))]},
    ]
    docs = []
    for i in range(4):
        doc: dict = {"resourceType": "DocumentReference", "id": f"doc{index}-{i}",
                     "status": "current", "subject": {"reference": patient}}
        if rnd.random() < 0.3:
            doc["meta"] = {"security": [{"system": ACTCODE, "code": rnd.choice(LABELS)}]}
        resources.append(doc)
        docs.append(f"DocumentReference/{doc['id']}")
    for i in range(consents):
        consent, provenance = _consent(rnd, f"c{index}-{i}", patient)
        resources.append(consent)
        if provenance is not None:
            resources.append(provenance)
    for i in range(disclosures):
        resources.append(_disclosure(rnd, f"ae{index}-{i}", patient, docs))
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in resources]}


# --------------------------------------------------------------------------------------------
# The worker: runs inside the revision being measured
# --------------------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    """Decide the workload with the engine importable here; print one JSON line of figures."""
    from consent_gap import engine
    from consent_gap.mappings import load_rules
    from consent_gap.normalize import normalize

    rules = load_rules(args.mappings)
    place = rules.jurisdiction(args.jurisdiction) if args.jurisdiction else None
    charts = []
    for i in range(args.patients):
        dataset = normalize(patient_bundle(args.seed, i, args.consents, args.per_patient), rules)
        patient = f"Patient/p{i}"
        ds = sorted(dataset.disclosures, key=lambda d: (d.occurred, d.reference))
        charts.append((dataset.charts[patient], ds))
    decisions = sum(len(ds) for _c, ds in charts)

    def once(cached: bool) -> tuple[float, list]:
        out = []
        gc.disable()
        started = time.process_time()
        prepared = engine.Prepared(rules) if cached else None
        for chart, ds in charts:
            for d in ds:
                out.append(engine.decide(rules, d, chart, place, prepared=prepared))
        elapsed = time.process_time() - started
        gc.enable()
        return elapsed, out

    once(not args.uncached)  # warm up (imports, caches of the rules)
    times = []
    outcomes: list = []
    for _ in range(args.repeat):
        elapsed, outcomes = once(not args.uncached)
        times.append(elapsed)
    flat = [d for _c, ds in charts for d in ds]
    rows = [(d.reference, str(o.decision), o.basis, list(o.reasons), o.accountable)
            for d, o in zip(flat, outcomes, strict=True)]
    print(json.dumps({"decisions": decisions, "cpu": min(times),
                      "engine": engine.__file__, "rows": rows}))


# --------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------


def run_worker(root: Path, args: argparse.Namespace, consents: int,
               uncached: bool = False) -> dict:
    command = [sys.executable, str(ROOT / "bench" / "engine.py"), "--worker",
               "--mappings", str(root / "mappings"), "--seed", str(args.seed),
               "--patients", str(args.patients), "--per-patient", str(args.per_patient),
               "--consents", str(consents), "--repeat", str(args.repeat)]
    if args.jurisdiction:
        command += ["--jurisdiction", args.jurisdiction]
    if uncached:
        command.append("--uncached")
    env = {"PYTHONPATH": str(root / "plugin"), "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"bench: worker in {root} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def digest(rows: list) -> str:
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:12]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--patients", type=int, default=300)
    p.add_argument("--per-patient", type=int, default=10, help="disclosures per patient")
    p.add_argument("--consents", type=int, nargs="*", default=[3, 30])
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (best kept)")
    p.add_argument("--repeat", type=int, default=3, help="timed passes inside each round")
    p.add_argument("--baseline", default=BASELINE,
                   help=f"the commit whose engine is the baseline (default {BASELINE})")
    p.add_argument("--uncached", action="store_true",
                   help="also time the baseline engine with no per-chart cache")
    p.add_argument("--jurisdiction")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mappings", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        args.consents = args.consents[0]
        worker(args)
        return 0
    print(f"workload: seed {args.seed}, {args.patients} patients x {args.per_patient} "
          f"disclosures, Consents per patient {args.consents}; {args.rounds} rounds x "
          f"{args.repeat} passes; CPU time, collector paused; baseline {args.baseline}")
    temp = Path(tempfile.mkdtemp(prefix="consent-gap-bench-engine-"))
    base = temp / "baseline"
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                        str(base), args.baseline], check=True)
        for consents in args.consents:
            old_rates, new_rates = [], []
            old = new = None
            for _ in range(args.rounds):
                old = run_worker(base, args, consents)
                new = run_worker(ROOT, args, consents)
                old_rates.append(old["decisions"] / old["cpu"])
                new_rates.append(new["decisions"] / new["cpu"])
            assert old is not None and new is not None
            old_rate, new_rate = max(old_rates), max(new_rates)
            differ = sum(a != b for a, b in zip(old["rows"], new["rows"], strict=True))
            print(f"   engines: {old['engine']} / {new['engine']}")
            print(f"{consents:>2} Consents/patient: {new['decisions']} decisions; "
                  f"baseline {old_rate:,.0f}/CPU s, this tree {new_rate:,.0f}/CPU s, "
                  f"ratio {new_rate / old_rate:.2f}x; decisions differ: {differ} "
                  f"(digests {digest(old['rows'])} / {digest(new['rows'])})")
            if args.uncached:
                bare = run_worker(base, args, consents, uncached=True)
                print(f"   baseline with no per-chart cache: "
                      f"{bare['decisions'] / bare['cpu']:,.0f}/CPU s")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                       check=False)
        shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
