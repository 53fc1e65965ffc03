"""The scan against the live sandbox (HAPI FHIR): what it writes matches what `evaluate` finds
on the same data, a rerun writes nothing, a killed scan resumes to exactly the same resources,
and a write the server rejects is reported while the rest are written.

Each test loads the example charts (tests/fixtures/examples) under ids of its own (a suffix per
test), so it sees only its own patients whatever else the sandbox holds, and scans them with
``--patient``.
"""

from __future__ import annotations

import base64
import importlib.resources
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
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
    FindingWrites,
    Kind,
    WriteContext,
    device_entry,
    plan,
    transaction,
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

    def groups(self) -> list[FindingWrites]:
        """What the write-back plans for every finding of `evaluate` on the charts as loaded."""
        context = WriteContext(privacy_officer=self.privacy_officer)
        return [group for resources in self.bundles
                for group in (plan(f, context) for f in evaluate(resources, JURISDICTION).findings)
                if group]

    def expected(self) -> dict[str, str]:
        """identifier value -> resource type, and each finding's Provenance key -> "Provenance"
        (one per finding's transaction, CONTRACT 5)."""
        values: dict[str, str] = {}
        for group in self.groups():
            for write in group.writes:
                assert write.value not in values
                values[write.value] = write.resource_type
            values[group.provenance_key] = "Provenance"
        return values

    def settings(self, state: Path, **changes: Any) -> Settings:
        values = {"fhir_base": self.base, "privacy_officer": self.privacy_officer,
                  "jurisdiction": JURISDICTION, "state_dir": state, "batch_size": 4}
        values.update(changes)
        return Settings(**values)

    def written(self) -> dict[str, list[str]]:
        """identifier values of our resources about these patients, per type (duplicates
        kept); the tag codes of every Provenance that targets one of them (each once); and
        under "targeted", per resource, how many of those Provenances target it."""
        client = FhirClient(self.base)
        subjects = ",".join(f"Patient/{p}" for p in self.patients)
        found: dict[str, list[str]] = {"Communication": [], "DocumentReference": [],
                                       "Task": [], "Provenance": [], "targeted": []}
        references: dict[str, str] = {}
        for rtype in ("Communication", "DocumentReference", "Task"):
            for resource in client.search(rtype, [("subject", subjects),
                                                  ("_tag", f"{TAG['system']}|{TAG['code']}")]):
                if resource["resourceType"] != rtype:
                    continue
                values = [i["value"] for i in resource.get("identifier", [])
                          if i.get("system") == FINDING_SYSTEM]
                found[rtype] += values
                references[f"{rtype}/{resource['id']}"] = values[0]
        provenances: dict[str, dict] = {}
        refs = sorted(references)
        for start in range(0, len(refs), 50):
            for resource in client.search("Provenance",
                                          [("target", ",".join(refs[start:start + 50]))]):
                provenances[resource["id"]] = resource
        client.close()
        for provenance in provenances.values():
            found["Provenance"] += [t["code"] for t in provenance["meta"]["tag"]
                                    if t.get("system") == PROVENANCE_TAG_SYSTEM]
        targeted = [t["reference"] for p in provenances.values() for t in p["target"]]
        found["targeted"] = sorted(str(targeted.count(ref)) for ref in references)
        return found


def load(fhir_base: str) -> Charts:
    return Charts(fhir_base, "sc" + uuid.uuid4().hex[:8])


def assert_exactly(charts: Charts, expected: dict[str, str]) -> None:
    """Every expected resource once, one Provenance per finding, each resource the target of
    exactly one Provenance, nothing else."""
    found = charts.written()
    for rtype in ("Communication", "DocumentReference", "Task", "Provenance"):
        wanted = sorted(v for v, t in expected.items() if t == rtype)
        assert sorted(found[rtype]) == wanted, rtype
    resources = sum(1 for t in expected.values() if t != "Provenance")
    assert found["targeted"] == ["1"] * resources


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
    provenances = sum(1 for t in expected.values() if t == "Provenance")
    assert first.written["Provenance"] == provenances == len(charts.groups())
    assert (first.written["Communication"] + first.written["DocumentReference"]
            + first.written["Task"]) == len(expected) - provenances
    assert_exactly(charts, expected)
    # each batch (4 patients) also fetches whom its disclosures went to, one search per type
    # (Organization, Practitioner), so that the alerts and notes name them (issue 12)
    assert first.requests / len(charts.patients) <= 3.5

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
    group = plan(victim, context)
    lost = {write.value for write in group.writes} | {group.provenance_key}

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
    rows = [row for row in summary["would_write"] if row["kind"] != "device"]
    assert len(rows) == len(charts.expected())
    assert {row["identifier"].split("|")[1] for row in rows} == set(charts.expected())
    assert charts.written() == {"Communication": [], "DocumentReference": [], "Task": [],
                                "Provenance": [], "targeted": []}


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
    assert summary.written["Provenance"] == len(charts.groups())
    assert_exactly(charts, expected)


def _old_style_transaction(group: FindingWrites, context: WriteContext) -> dict:
    """A finding's transaction as installs before one-Provenance-per-finding wrote it: each
    resource with a Provenance of its own, tagged with that resource's identifier value."""
    entries = [device_entry()]
    for write in group.writes:
        provenance = group.provenance(context)
        provenance["target"] = [{"reference": write.full_url}]
        provenance["meta"]["tag"] = [t if t.get("system") != PROVENANCE_TAG_SYSTEM
                                     else {**t, "code": write.value}
                                     for t in provenance["meta"]["tag"]]
        entries += [write.entry(), {
            "resource": provenance,
            "request": {"method": "POST", "url": "Provenance",
                        "ifNoneExist": f"_tag={PROVENANCE_TAG_SYSTEM}|{write.value}"}}]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def test_an_install_with_per_resource_provenances_gets_no_duplicates(fhir_base, tmp_path):
    """Upgrading: what an older version wrote (one Provenance per resource) is found by
    identifier; the dry run and the scan write nothing, and no resource gets a second
    Provenance."""
    charts = load(fhir_base)
    context = WriteContext(privacy_officer=charts.privacy_officer)
    client = FhirClient(fhir_base)
    for group in charts.groups():
        client.transaction(_old_style_transaction(group, context))
    client.close()
    settings = charts.settings(tmp_path)

    dry = run_scan(settings, patients=charts.patients, dry_run=True)
    assert dry.would_write == []
    summary = run_scan(settings, patients=charts.patients)
    assert summary.status == "ok", summary.errors
    assert summary.written == {}
    found = charts.written()
    wanted = {v: t for v, t in charts.expected().items() if t != "Provenance"}
    for rtype in ("Communication", "DocumentReference", "Task"):
        assert sorted(found[rtype]) == sorted(v for v, t in wanted.items() if t == rtype)
    assert sorted(found["Provenance"]) == sorted(wanted)  # the old ones, each once
    assert found["targeted"] == ["1"] * len(wanted)


def test_dry_run_says_what_the_real_run_writes(fhir_base, tmp_path):
    """Issue 12: the dry run looks up what exists as the real run does."""
    charts = load(fhir_base)
    settings = charts.settings(tmp_path)
    half = charts.patients[: len(charts.patients) // 2]
    run_scan(settings, patients=half)
    dry = run_scan(settings, patients=charts.patients, dry_run=True)
    real = run_scan(settings, patients=charts.patients)
    assert real.status == "ok", real.errors
    assert real.written  # the other half
    assert Counter(row["resourceType"] for row in dry.would_write) == real.written
    assert run_scan(settings, patients=charts.patients, dry_run=True).would_write == []
    assert_exactly(charts, charts.expected())
# ---------------------------------------------------------------- CONTRACT 7: the Tasks

def _ours(base: str, rtype: str, patients: list[str]) -> list[dict]:
    client = FhirClient(base)
    subjects = ",".join(f"Patient/{p}" for p in patients)
    found = [r for r in client.search(rtype, [("subject", subjects),
                                              ("_tag", f"{TAG['system']}|{TAG['code']}")])
             if r["resourceType"] == rtype]
    client.close()
    return found


def _by_about(resources: list[dict], kind: str) -> dict[str, dict]:
    """disclosure -> our resource of this kind (alert: Communication about; note: the
    finding-note DocumentReference; task: Task focus)."""
    out: dict[str, dict] = {}
    for resource in resources:
        if kind == "task":
            key = resource["focus"]["reference"]
        elif kind == "alert":
            if resource["category"][0]["coding"][0]["code"] != "alert":
                continue
            key = resource["about"][0]["reference"]
        else:
            if resource["type"]["coding"][0]["code"] != "finding-note":
                continue
            key = resource["context"]["related"][0]["reference"]
        assert key not in out, f"two {kind}s for {key}"
        out[key] = resource
    return out


def _check_tasks(charts: Charts, discovered: dict[str, str] | None = None) -> int:
    """Every flagged finding has exactly one Task with CONTRACT 7's fields; none other has.
    ``discovered``: disclosure -> the authoredOn expected (default: its alert's `sent`)."""
    findings = {f.disclosure: f for b in charts.bundles for f in evaluate(b, JURISDICTION).findings}
    tasks = _by_about(_ours(charts.base, "Task", charts.patients), "task")
    alerts = _by_about(_ours(charts.base, "Communication", charts.patients), "alert")
    notes = _by_about(_ours(charts.base, "DocumentReference", charts.patients), "note")
    flagged = {d for d, f in findings.items() if f.decision in ("unauthorized", "review")}
    assert set(tasks) == flagged
    for disclosure in flagged:
        found, task, alert = findings[disclosure], tasks[disclosure], alerts[disclosure]
        urgent = found.decision == "unauthorized"
        assert task["status"] == "requested" and task["intent"] == "order"
        assert task["priority"] == alert["priority"] == ("urgent" if urgent else "routine")
        assert task["code"]["coding"][0]["system"] == (
            "https://consent-gap.dev/fhir/CodeSystem/task")
        assert task["code"]["coding"][0]["code"] == "review-disclosure"
        assert task["for"] == {"reference": found.patient}
        assert task["owner"] == {"reference": charts.privacy_officer}
        assert task["reasonReference"] == {
            "reference": f"DocumentReference/{notes[disclosure]['id']}"}
        authored = (discovered or {}).get(disclosure) or alert["sent"]
        assert _instant(task["authoredOn"]) == _instant(authored)
        if urgent:
            end = _instant(task["restriction"]["period"]["end"])
            assert end - _instant(task["authoredOn"]) == timedelta(days=60)
        else:
            assert "restriction" not in task
    return len(flagged)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_each_flagged_finding_gets_one_task_with_the_contracts_fields(fhir_base, tmp_path):
    charts = load(fhir_base)
    settings = charts.settings(tmp_path)
    first = run_scan(settings, patients=charts.patients)
    assert first.status == "ok", first.errors
    flagged = _check_tasks(charts)
    assert flagged >= 8 and first.written["Task"] == flagged
    again = run_scan(settings, patients=charts.patients)
    assert again.written == {}
    assert _check_tasks(charts) == flagged


def write_as_before_tasks(base: str, charts: Charts, now: datetime) -> int:
    """What an install from before Tasks wrote at `now`: every finding's alert, note and
    reminder, in one transaction, and no Task; how many findings had something written."""
    context = WriteContext(privacy_officer=charts.privacy_officer, now=now)
    groups = []
    for resources in charts.bundles:
        for finding in evaluate(resources, JURISDICTION).findings:
            group = plan(finding, context)
            old = FindingWrites(finding, tuple(w for w in group.writes if w.kind != Kind.TASK))
            if old:
                groups.append(old)
    with FhirClient(base) as client:
        client.transaction(transaction(groups, context))
    return len(groups)


def test_an_existing_install_gets_its_tasks_dated_at_discovery(fhir_base, tmp_path):
    """Alerts and notes written before Tasks existed (a month ago): the next scan writes the
    Tasks, each dated at its alert, once; a rerun writes nothing."""
    charts = load(fhir_base)
    month_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    written = write_as_before_tasks(fhir_base, charts, month_ago)
    assert charts.written()["Task"] == []

    scanned = run_scan(charts.settings(tmp_path), patients=charts.patients)
    assert scanned.status == "ok", scanned.errors
    assert set(scanned.written) == {"Task", "Provenance"}
    assert scanned.written["Task"] == scanned.written["Provenance"]
    stamp = month_ago.isoformat().replace("+00:00", "Z")
    flagged = _check_tasks(charts, {d: stamp for d in _by_about(
        _ours(fhir_base, "Communication", charts.patients), "alert")})
    assert scanned.written["Task"] == flagged
    # every resource once, each the target of exactly one Provenance: the old transaction's
    # over the alert and note, the new one's over the Task written later (CONTRACT 5)
    found = charts.written()
    wanted = {v: t for v, t in charts.expected().items() if t != "Provenance"}
    for rtype in ("Communication", "DocumentReference", "Task"):
        assert sorted(found[rtype]) == sorted(v for v, t in wanted.items() if t == rtype)
    assert len(found["Provenance"]) == written + flagged
    assert found["targeted"] == ["1"] * len(wanted)
    assert run_scan(charts.settings(tmp_path), patients=charts.patients).written == {}


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


# ---------------------------------------------------------------- names, never ids (issue 12)

def test_the_scans_alert_and_note_name_the_recipient_never_by_id(fhir_base, tmp_path):
    """The scan fetches whom the disclosures went to (one search per type for the batch) so
    that its alert and finding note say "to Whitcombe Legal Group", not its reference."""
    charts = load(fhir_base)
    summary = run_scan(charts.settings(tmp_path), patients=charts.patients)
    assert summary.status == "ok", summary.errors
    alerts = _by_about(_ours(fhir_base, "Communication", charts.patients), "alert")
    notes = _by_about(_ours(fhir_base, "DocumentReference", charts.patients), "note")
    expired = next(key for key in alerts if key.startswith("AuditEvent/ae-pnholt-1-"))
    text = alerts[expired]["payload"][0]["contentString"]
    assert "to Whitcombe Legal Group on" in text, text
    note = base64.b64decode(notes[expired]["content"][0]["attachment"]["data"]).decode()
    assert "Recipient: Whitcombe Legal Group" in note
    assert "the authorization signed on" in note  # the Consent checked, by kind and day
    pattern = re.compile(r"\b(Organization|Practitioner|PractitionerRole|RelatedPerson|"
                         r"Consent|AuditEvent|DocumentReference|Patient)/\S")
    for resource in [*alerts.values(), *notes.values()]:
        prose = (resource["payload"][0]["contentString"] if resource["resourceType"] ==
                 "Communication" else base64.b64decode(
                     resource["content"][0]["attachment"]["data"]).decode())
        assert not pattern.search(prose), prose
    # the ids are in the structured elements
    assert alerts[expired]["about"] == [{"reference": expired}]
    assert {"reference": expired} in notes[expired]["context"]["related"]
    for task in _ours(fhir_base, "Task", charts.patients):
        assert not pattern.search(task["description"]), task["description"]
