"""The scan against the live sandbox (HAPI FHIR): what it writes matches what `evaluate` finds
on the same data, a rerun writes nothing, a killed scan resumes to exactly the same resources,
and a write the server rejects is reported while the rest are written.

Each test loads the example charts (tests/fixtures/examples) under ids of its own (a suffix per
test), so it sees only its own patients whatever else the sandbox holds, and scans them with
``--patient``.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from consent_gap.checkpoint import CheckpointStore
from consent_gap.evaluate import evaluate
from consent_gap.fhir.client import FhirClient
from consent_gap.mappings import load_rules
from consent_gap.scan import Scanner, ScanOptions, run_scan
from consent_gap.settings import Settings
from consent_gap.writeback import (
    FINDING_SYSTEM,
    PROVENANCE_TAG_SYSTEM,
    TAG,
    WriteContext,
    plan,
)
from support.fhir import renamed as _renamed

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "examples"
JURISDICTION = "US-CA"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


class Charts:
    """The example charts loaded under one suffix, plus a privacy officer."""

    def __init__(self, base: str, suffix: str) -> None:
        self.base = base
        self.suffix = suffix
        self.privacy_officer = f"Practitioner/po-{suffix}"
        self.bundles: list[list[dict]] = []
        entries = [{"resource": {"resourceType": "Practitioner", "id": f"po-{suffix}"},
                    "request": {"method": "PUT", "url": f"Practitioner/po-{suffix}"}}]
        for path in sorted(EXAMPLES.glob("[0-9][0-9]-*.json")):
            if path.name.endswith(".expected.json"):
                continue
            # Each example is a chart of its own: two examples may use the same ids (09 and 22
            # share a client), so each gets its own suffix and never sees the other's resources.
            own = f"{suffix}x{path.name[:2]}"
            resources = []
            for entry in json.loads(path.read_text())["entry"]:
                resource = _renamed(entry["resource"], own)
                resource["id"] = f"{resource['id']}-{own}"
                resources.append(resource)
            self.bundles.append(resources)
        unique = {(r["resourceType"], r["id"]): r for b in self.bundles for r in b}
        entries += [{"resource": r, "request": {"method": "PUT", "url": f"{t}/{i}"}}
                    for (t, i), r in unique.items()]
        response = requests.post(base, json={"resourceType": "Bundle", "type": "transaction",
                                             "entry": entries}, headers=FHIR_JSON, timeout=300)
        assert response.status_code == 200, response.text[:1000]
        self.patients = sorted(r["id"] for b in self.bundles for r in b
                               if r["resourceType"] == "Patient")

    def expected(self) -> dict[str, str]:
        """identifier value -> resource type, from `evaluate` on the charts as loaded."""
        context = WriteContext(privacy_officer=self.privacy_officer)
        values: dict[str, str] = {}
        for resources in self.bundles:
            for finding in evaluate(resources, JURISDICTION).findings:
                for write in plan(finding, context).writes:
                    assert write.value not in values
                    values[write.value] = write.resource_type
        return values

    def settings(self, state: Path, **changes: Any) -> Settings:
        values = {"fhir_base": self.base, "privacy_officer": self.privacy_officer,
                  "jurisdiction": JURISDICTION, "state_dir": state, "batch_size": 4}
        values.update(changes)
        return Settings(**values)

    def written(self) -> dict[str, list[str]]:
        """identifier values of our resources about these patients, per type (duplicates
        kept), and the tag codes of the Provenance written with them."""
        client = FhirClient(self.base)
        subjects = ",".join(f"Patient/{p}" for p in self.patients)
        found: dict[str, list[str]] = {"Communication": [], "DocumentReference": [],
                                       "Task": [], "Provenance": []}
        for rtype in ("Communication", "DocumentReference", "Task"):
            for resource in client.search(rtype, [("subject", subjects),
                                                  ("_tag", f"{TAG['system']}|{TAG['code']}")]):
                if resource["resourceType"] != rtype:
                    continue
                found[rtype] += [i["value"] for i in resource.get("identifier", [])
                                 if i.get("system") == FINDING_SYSTEM]
        values = found["Communication"] + found["DocumentReference"] + found["Task"]
        for start in range(0, len(values), 50):
            tags = ",".join(f"{PROVENANCE_TAG_SYSTEM}|{v}" for v in values[start:start + 50])
            for resource in client.search("Provenance", [("_tag", tags)]):
                found["Provenance"] += [t["code"] for t in resource["meta"]["tag"]
                                        if t.get("system") == PROVENANCE_TAG_SYSTEM]
        client.close()
        return found


def load(fhir_base: str) -> Charts:
    return Charts(fhir_base, "sc" + uuid.uuid4().hex[:8])


def assert_exactly(charts: Charts, expected: dict[str, str]) -> None:
    found = charts.written()
    for rtype in ("Communication", "DocumentReference", "Task"):
        wanted = sorted(v for v, t in expected.items() if t == rtype)
        assert sorted(found[rtype]) == wanted, rtype
    assert sorted(found["Provenance"]) == sorted(expected)


def test_scan_writes_what_evaluate_finds_and_a_rerun_writes_nothing(fhir_base, tmp_path):
    charts = load(fhir_base)
    expected = charts.expected()
    assert len(expected) >= 10  # the examples hold unauthorized, review and missing cases
    settings = charts.settings(tmp_path)

    first = run_scan(settings, patients=charts.patients)
    assert first.status == "ok", first.errors
    assert first.patients_done == len(charts.patients) == len(charts.bundles)
    offline = [f for b in charts.bundles for f in evaluate(b, JURISDICTION).findings]
    assert first.disclosures == len(offline)
    assert sum(first.decisions.values()) == len(offline)
    assert first.written["Provenance"] == len(expected)
    assert (first.written["Communication"] + first.written["DocumentReference"]
            + first.written["Task"]) == len(expected)
    assert_exactly(charts, expected)
    assert first.requests / len(charts.patients) <= 3

    second = run_scan(settings, patients=charts.patients)
    assert second.status == "ok"
    assert second.written == {}
    assert_exactly(charts, expected)


def test_killed_scan_resumes_to_exactly_the_resources_of_an_uninterrupted_run(
        fhir_base, tmp_path):
    charts = load(fhir_base)
    expected = charts.expected()
    settings = charts.settings(tmp_path, batch_size=1)
    env = {**os.environ, "CONSENT_GAP_FHIR_BASE": fhir_base,
           "CONSENT_GAP_PRIVACY_OFFICER": charts.privacy_officer,
           "CONSENT_GAP_JURISDICTION": JURISDICTION, "CONSENT_GAP_STATE_DIR": str(tmp_path),
           "CONSENT_GAP_BATCH_SIZE": "1"}
    env.pop("CONSENT_GAP_CONFIG", None)
    command = [sys.executable, "-m", "consent_gap.cli", "scan", "--format", "json"]
    for patient in charts.patients:
        command += ["--patient", patient]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    store = CheckpointStore(settings.database_url)
    done = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        runs = store.last_runs(fhir_base)
        done = runs[0].patients_done if runs else 0
        if done >= 5:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the scan ended before it could be killed"
    killed = store.last_runs(fhir_base)[0]
    assert killed.status == "running"
    assert 5 <= killed.patients_done < len(charts.patients)
    store.close()

    resumed = run_scan(settings, patients=charts.patients)
    assert resumed.status == "ok", resumed.errors
    assert resumed.resumed
    assert resumed.run == killed.id
    assert resumed.patients_skipped == killed.patients_done
    assert resumed.patients_done == len(charts.patients) - killed.patients_done
    assert_exactly(charts, expected)


class RejectingClient(FhirClient):
    """Sends one finding's alert with a recipient the server does not have, so HAPI rejects
    that transaction (HAPI-1094) for real; everything else goes out untouched."""

    def __init__(self, base: str, disclosure: str) -> None:
        super().__init__(base)
        self.disclosure = disclosure

    def transaction(self, bundle: dict) -> dict:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if {"reference": self.disclosure} in resource.get("about", []):
                resource.setdefault("recipient", []).append(
                    {"reference": "Practitioner/no-such-practitioner-" + uuid.uuid4().hex})
        return super().transaction(bundle)


def test_a_rejected_write_is_reported_and_the_rest_written(fhir_base, tmp_path):
    charts = load(fhir_base)
    expected = charts.expected()
    findings = [f for b in charts.bundles for f in evaluate(b, JURISDICTION).findings]
    victim = next(f for f in findings if f.decision == "unauthorized")
    context = WriteContext(privacy_officer=charts.privacy_officer)
    lost = {write.value for write in plan(victim, context).writes}

    client = RejectingClient(fhir_base, victim.disclosure)
    store = CheckpointStore(charts.settings(tmp_path).database_url)
    scanner = Scanner(client, store,
                      ScanOptions(fhir_base, patients=tuple(charts.patients),
                                  jurisdiction=JURISDICTION, batch_size=20),
                      privacy_officer=charts.privacy_officer)
    summary = scanner.run()
    store.close()
    client.close()

    assert summary.status == "errors"
    assert len(summary.errors) == 1
    assert summary.errors[0].startswith(f"{victim.disclosure}: write of alert, finding-note")
    assert "HTTP 4" in summary.errors[0]
    assert_exactly(charts, {v: t for v, t in expected.items() if v not in lost})


@pytest.mark.parametrize("fmt", ["json"])
def test_dry_run_on_the_command_line_writes_nothing(fhir_base, tmp_path, fmt):
    charts = load(fhir_base)
    env = {**os.environ, "CONSENT_GAP_STATE_DIR": str(tmp_path),
           "CONSENT_GAP_PRIVACY_OFFICER": charts.privacy_officer}
    env.pop("CONSENT_GAP_CONFIG", None)
    command = [sys.executable, "-m", "consent_gap.cli", "scan", "--fhir-base", fhir_base,
               "--jurisdiction", JURISDICTION, "--dry-run", "--format", fmt]
    for patient in charts.patients:
        command += ["--patient", patient]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is True
    assert len(summary["would_write"]) == len(charts.expected())
    assert {row["identifier"].split("|")[1] for row in summary["would_write"]} == set(
        charts.expected())
    assert charts.written() == {"Communication": [], "DocumentReference": [], "Task": [],
                                "Provenance": []}


def test_backend_services_scan_through_the_launcher(fhir_base, proxy_base, tmp_path):
    """SMART Backend Services for real: discovery on the proxy's base, a private_key_jwt
    assertion with the key the launcher registered, system/ scopes enforced by the proxy."""
    key = Path(__file__).parents[2] / "sandbox" / "var" / "keys" / "consent-gap-scan.pem"
    if not key.exists():
        pytest.fail(f"{key} is missing: the launcher creates it on its first start")
    charts = load(fhir_base)
    expected = charts.expected()
    settings = charts.settings(tmp_path, fhir_base=proxy_base, auth="backend",
                               private_key=key, client_id="consent-gap-scan")
    summary = run_scan(settings, patients=charts.patients)
    assert summary.status == "ok", summary.errors
    assert summary.written["Provenance"] == len(expected)
    assert_exactly(charts, expected)


def test_a_new_ruleset_rewrites_nothing_whose_decision_is_the_same(fhir_base, tmp_path):
    """CONTRACT 5: the identifier is the disclosure, the kind and the decision, not the
    ruleset; so after an upgrade of the rules (here: the tables with their `[meta] ruleset`
    renamed, as a release or a practice's own tables would name it) a scan of unchanged charts
    writes nothing."""
    charts = load(fhir_base)
    expected = charts.expected()
    settings = charts.settings(tmp_path)
    first = run_scan(settings, patients=charts.patients)
    assert first.status == "ok", first.errors

    tables = tmp_path / "next-release"
    shutil.copytree(Path(str(importlib.resources.files("consent_gap.mappings_data"))), tables,
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    states = tables / "jurisdictions" / "us-states.toml"
    text = states.read_text()
    assert 'ruleset = "2026.3"' in text
    states.write_text(text.replace('ruleset = "2026.3"', 'ruleset = "2099.1-next"', 1))
    assert load_rules(tables).ruleset == "2099.1-next"

    second = run_scan(charts.settings(tmp_path, mappings=tables), patients=charts.patients)
    assert second.status == "ok", second.errors
    assert second.disclosures == first.disclosures
    assert second.written == {}
    assert_exactly(charts, expected)
