"""The scan against a FHIR server mocked with `responses`: batching, write-back, isolation of a
rejected write, dry run, resume, the checkpoint, token renewal.

The engine is replaced by a stub that calls every disclosure AuditEvent `unauthorized` (the
engine's own decisions are tested elsewhere); what is under test is the scan's HTTP behaviour.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from consent_gap.checkpoint import CheckpointStore
from consent_gap.domain import ClientNotice, Decision, Documentation, Finding
from consent_gap.fhir import FhirClient, RetryPolicy
from consent_gap.scan import (
    SCAN_REQUIREMENTS,
    Scanner,
    ScanOptions,
    preflight,
)
from consent_gap.settings import Settings
from consent_gap.writeback import FINDING_SYSTEM

BASE = "http://fhir.test/fhir"


# ----------------------------------------------------------------- a small fake FHIR server

def capability_statement() -> dict:
    resources = []
    for rtype, need in SCAN_REQUIREMENTS.items():
        resources.append({
            "type": rtype,
            "interaction": [{"code": c} for c in ("read", "search-type", "create")],
            "searchParam": [{"name": n, "type": "token"} for n in need.get("search", [])]
            + [{"name": "identifier", "type": "token"}],
            "searchInclude": need.get("include", []),
            "searchRevInclude": need.get("revinclude", []),
        })
    return {"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1",
            "rest": [{"mode": "server", "resource": resources}]}


def _patient_of(resource: dict) -> str | None:
    if resource["resourceType"] == "AuditEvent":
        for entity in resource.get("entity", []):
            ref = entity.get("what", {}).get("reference", "")
            if ref.startswith("Patient/"):
                return ref
    for key in ("patient", "subject"):
        if isinstance(resource.get(key), dict):
            return resource[key].get("reference")
    return None


@dataclass
class FakeFhir:
    """In-memory FHIR server: searches by the parameters the scan uses, paging, conditional
    create by identifier or _tag in transactions (atomic), and injectable rejections."""

    store: dict[str, dict[str, dict]] = field(default_factory=dict)
    next_id: int = 1000
    page_size: int = 3
    reject: Any = None  # callable(resource) -> str | None: the reason to reject a transaction
    calls: list[tuple[str, str]] = field(default_factory=list)
    auth_check: Any = None  # callable(headers) -> bool
    unsearchable: tuple[str, ...] = ()  # types whose search is refused (403), as scopes do

    def add(self, *resources: dict) -> None:
        for resource in resources:
            self.store.setdefault(resource["resourceType"], {})[resource["id"]] = resource

    def of_type(self, rtype: str) -> list[dict]:
        return list(self.store.get(rtype, {}).values())

    def install(self, mocked: responses.RequestsMock) -> None:
        pattern = re.compile(re.escape(BASE) + r"(/.*)?(\?.*)?$")
        for method in ("GET", "POST"):
            mocked.add_callback(method, pattern, callback=self.handle)

    # -- dispatch
    def handle(self, request) -> tuple[int, dict, str]:
        url = urlsplit(request.url)
        path = url.path[len(urlsplit(BASE).path):].strip("/")
        self.calls.append((request.method, path))
        if self.auth_check and not self.auth_check(request.headers):
            return self._json(401, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "login", "diagnostics": "token expired"}]})
        params = parse_qsl(url.query)
        if request.method == "POST" and path.endswith("_search"):
            params += parse_qsl(request.body if isinstance(request.body, str)
                                else request.body.decode())
            path = path[: -len("/_search")]
        if path == "metadata":
            return self._json(200, capability_statement())
        if request.method == "POST" and path == "":
            return self.transaction(json.loads(request.body))
        if request.method == "POST":
            resource = json.loads(request.body)
            condition = request.headers.get("If-None-Exist")
            match = self._match(resource["resourceType"], condition) if condition else None
            if match:
                return self._json(200, match)
            return self._json(201, self._create(resource))
        parts = path.split("/")
        if len(parts) == 2:
            found = self.store.get(parts[0], {}).get(parts[1])
            return self._json(200, found) if found else self._json(404, {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-found"}]})
        return self.search(parts[0], params)

    @staticmethod
    def _json(status: int, body: dict) -> tuple[int, dict, str]:
        return status, {"Content-Type": "application/fhir+json"}, json.dumps(body)

    # -- search
    def search(self, rtype: str, params: list[tuple[str, str]]) -> tuple[int, dict, str]:
        if rtype in self.unsearchable:
            return self._json(403, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "forbidden"}]})
        values: dict[str, list[str]] = {}
        for name, value in params:
            values.setdefault(name, []).append(value)
        matches = self.of_type(rtype)
        if "_tag" in values:
            tokens = {tuple(t.split("|")) for t in values["_tag"][0].split(",")}
            matches = [r for r in matches if tokens & {
                (t.get("system"), t.get("code")) for t in r.get("meta", {}).get("tag", [])}]
        if "_id" in values:
            ids = values["_id"][0].split(",")
            matches = [r for r in matches if r["id"] in ids]
        if "patient" in values:
            patients = values["patient"][0].split(",")
            matches = [r for r in matches if _patient_of(r) in patients]
        if "recipient" in values:
            wanted = set(values["recipient"][0].split(","))
            matches = [r for r in matches
                       if wanted & {x.get("reference") for x in r.get("recipient", [])}]
        if "identifier" in values:
            tokens = values["identifier"][0].split(",")
            matches = [r for r in matches if any(self._has_identifier(r, t) for t in tokens)]
        if "_tag:not" in values:
            system, code = values["_tag:not"][0].split("|")
            matches = [r for r in matches
                       if {"system": system, "code": code} not in
                       [{"system": t.get("system"), "code": t.get("code")}
                        for t in r.get("meta", {}).get("tag", [])]]
        if "_lastUpdated" in values:
            since = values["_lastUpdated"][0].removeprefix("ge")
            matches = [r for r in matches if r.get("meta", {}).get("lastUpdated", "") >= since]
        offset = int(values.get("_offset", ["0"])[0])
        page = matches[offset: offset + self.page_size]
        included = self._includes(page, values)
        links = [{"relation": "self", "url": f"{BASE}/{rtype}"}]
        if offset + self.page_size < len(matches):
            query = [(n, v) for n, v in params if n != "_offset"]
            query.append(("_offset", str(offset + self.page_size)))
            nxt = "&".join(f"{n}={v}" for n, v in query)
            links.append({"relation": "next", "url": f"{BASE}/{rtype}?{nxt}"})
        entries = [{"resource": r, "search": {"mode": "match"}} for r in page]
        entries += [{"resource": r, "search": {"mode": "include"}} for r in included]
        return self._json(200, {"resourceType": "Bundle", "type": "searchset", "link": links,
                                "entry": entries})

    def _includes(self, page: list[dict], values: dict[str, list[str]]) -> list[dict]:
        refs = {f"{r['resourceType']}/{r['id']}" for r in page}
        out: list[dict] = []
        for spec in values.get("_revinclude", []):
            source = spec.split(":")[0]
            for resource in self.of_type(source):
                text = json.dumps(resource)
                if any(f'"reference": "{ref}"' in text for ref in refs):
                    out.append(resource)
        if values.get("_include"):
            for resource in page:
                for entity in resource.get("entity", []):
                    rtype, _, rid = entity.get("what", {}).get("reference", "").partition("/")
                    found = self.store.get(rtype, {}).get(rid)
                    if found:
                        out.append(found)
        return out

    @staticmethod
    def _has_identifier(resource: dict, token: str) -> bool:
        system, value = token.split("|")
        return any(i.get("system") == system and i.get("value") == value
                   for i in resource.get("identifier", []))

    def _match(self, rtype: str, condition: str) -> dict | None:
        name, _, token = condition.partition("=")
        for resource in self.of_type(rtype):
            if name == "identifier" and self._has_identifier(resource, token):
                return resource
            if name == "_tag":
                system, code = token.split("|")
                if any(t.get("system") == system and t.get("code") == code
                       for t in resource.get("meta", {}).get("tag", [])):
                    return resource
        return None

    def _create(self, resource: dict) -> dict:
        self.next_id += 1
        resource = {**resource, "id": str(self.next_id)}
        resource.setdefault("meta", {})["lastUpdated"] = "2026-11-29T02:00:00Z"
        self.add(resource)
        return resource

    # -- transaction (all or nothing)
    def transaction(self, bundle: dict) -> tuple[int, dict, str]:
        for entry in bundle["entry"]:
            reason = self.reject(entry["resource"]) if self.reject else None
            if reason:
                return self._json(422, {"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "processing", "diagnostics": reason}]})
        resolved: dict[str, str] = {}
        answers = []
        created = []
        for entry in bundle["entry"]:
            resource = entry["resource"]
            match = self._match(resource["resourceType"], entry["request"]["ifNoneExist"])
            if match is None:
                text = json.dumps(resource)
                for urn, ref in resolved.items():
                    text = text.replace(urn, ref)
                match = self._create(json.loads(text))
                created.append(match)
                status = "201 Created"
            else:
                status = "200 OK"
            resolved[entry["fullUrl"]] = f"{match['resourceType']}/{match['id']}"
            answers.append({"response": {"status": status,
                                         "location": f"{resolved[entry['fullUrl']]}/_history/1"}})
        return self._json(200, {"resourceType": "Bundle", "type": "transaction-response",
                                "entry": answers})

    def written(self, rtype: str) -> list[dict]:
        return [r for r in self.of_type(rtype)
                if any(i.get("system") == FINDING_SYSTEM for i in r.get("identifier", []))
                or rtype == "Provenance"]


# ----------------------------------------------------------------- data and the stub engine

def chart(n: int) -> list[dict]:
    pid = f"p{n}"
    return [
        {"resourceType": "Patient", "id": pid, "birthDate": "1980-01-01"},
        {"resourceType": "AuditEvent", "id": f"ae{n}", "type": {"code": "110106"},
         "recorded": "2025-01-01T00:00:00Z",
         "entity": [{"what": {"reference": f"Patient/{pid}"}}]},
        {"resourceType": "Consent", "id": f"c{n}", "status": "active",
         "patient": {"reference": f"Patient/{pid}"}},
    ]


class StubReport:
    def __init__(self, findings):
        self.findings = findings
        self.problems = []


def stub_evaluate(resources):
    """Every AuditEvent is an unauthorized, undocumented disclosure of its patient."""
    findings = []
    for resource in resources:
        if resource["resourceType"] != "AuditEvent":
            continue
        patient = next(e["what"]["reference"] for e in resource["entity"])
        consents = tuple((f"Consent/{r['id']}", "authorization-expired") for r in resources
                         if r["resourceType"] == "Consent"
                         and r["patient"]["reference"] == patient)
        findings.append(Finding(
            disclosure=f"AuditEvent/{resource['id']}", patient=patient,
            occurred=resource["recorded"], recipient=None, purposes=(),
            decision=Decision.UNAUTHORIZED, basis=None,
            reasons=("purpose-missing", "authorization-expired"), accountable=True,
            documentation=Documentation.NOT_REQUIRED, client_notice=ClientNotice.NOT_REQUIRED,
            explanation="No purpose recorded.", consents_checked=consents))
    return StubReport(sorted(findings, key=lambda f: f.disclosure))


@pytest.fixture
def fake():
    server = FakeFhir()
    for n in range(1, 8):
        server.add(*chart(n))
    server.add({"resourceType": "Practitioner", "id": "po-1"})
    return server


@pytest.fixture
def store(tmp_path):
    store = CheckpointStore(f"sqlite:///{tmp_path / 'cp.db'}")
    yield store
    store.close()


def make_client(auth=None) -> FhirClient:
    policy = RetryPolicy(max_attempts=3, backoff_base=0.0, max_delay=1, max_total_wait=1)
    return FhirClient(BASE, auth=auth, retries=policy, sleep=lambda s: None)


def scan(store, *, client=None, **options):
    options.setdefault("batch_size", 3)
    client = client or make_client()
    scanner = Scanner(client, store, ScanOptions(fhir_base=BASE, **options),
                      privacy_officer="Practitioner/po-1", evaluator=stub_evaluate)
    return scanner.run(), client


# ----------------------------------------------------------------- the tests

def test_full_scan_writes_every_finding_once_with_few_requests(fake, store):
    fake.page_size = 100  # (the other tests page by 3 to exercise paging)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        summary, _ = scan(store, full=True, batch_size=7)
    assert summary.status == "ok", summary.errors
    assert summary.patients_selected == summary.patients_done == 7
    assert summary.disclosures == 7
    assert summary.decisions == {"unauthorized": 7}
    assert len(fake.written("Communication")) == 7
    assert len(fake.written("DocumentReference")) == 7
    assert len(fake.written("Task")) == 7  # CONTRACT 7: one Task per flagged finding
    # one Provenance per finding, targeting each of its resources (CONTRACT 5)
    provenances = fake.of_type("Provenance")
    assert len(provenances) == 7
    assert sorted(t["reference"].split("/")[0] for p in provenances for t in p["target"]) == (
        ["Communication"] * 7 + ["DocumentReference"] * 7 + ["Patient"] * 7
        + ["Task"] * 7)
    assert len(fake.of_type("Device")) == 1
    assert summary.written == {"Communication": 7, "Device": 1, "DocumentReference": 7,
                               "Provenance": 7, "Task": 7}
    # one batch: 4 searches, 3 existence checks, 1 transaction; the device; the selection
    assert summary.requests / 7 <= 3
    writes = [c for c in fake.calls if c == ("POST", "")]
    assert len(writes) == 1
    for alert in fake.written("Communication"):
        assert {"reference": "Practitioner/po-1"} in alert["recipient"]


def test_second_scan_writes_nothing(fake, store):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        scan(store, full=True)
        count = sum(len(v) for v in fake.store.values())
        fake.calls.clear()
        summary, _ = scan(store, full=True)
    assert summary.status == "ok"
    assert summary.written == {}
    assert sum(len(v) for v in fake.store.values()) == count
    # what exists is found by identifier searches: no transaction is even sent
    assert ("POST", "") not in fake.calls


def test_a_resource_deleted_since_is_written_again(fake, store):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        scan(store, full=True)
        note = fake.written("DocumentReference")[0]
        del fake.store["DocumentReference"][note["id"]]
        # a server with referential integrity (HAPI) deletes the Provenance first
        provenance = next(p for p in fake.of_type("Provenance")
                          if {"reference": f"DocumentReference/{note['id']}"} in p["target"])
        del fake.store["Provenance"][provenance["id"]]
        summary, _ = scan(store, full=True)
    assert summary.written == {"DocumentReference": 1, "Provenance": 1}
    assert len(fake.written("DocumentReference")) == 7


def test_rejected_resource_is_reported_and_the_rest_written(fake, store):
    def reject(resource):
        about = [a.get("reference") for a in resource.get("about", [])]
        related = [r.get("reference") for r in resource.get("context", {}).get("related", [])]
        if "AuditEvent/ae4" in about + related:
            return "HAPI-0000: rejected for the test"
        return None

    fake.reject = reject
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        summary, _ = scan(store, full=True)
    assert summary.status == "errors"
    assert len(summary.errors) == 1
    assert summary.errors[0].startswith(
        "AuditEvent/ae4: write of alert, finding-note, task rejected")
    assert "rejected for the test" in summary.errors[0]
    written_about = {c["about"][0]["reference"] for c in fake.written("Communication")}
    assert written_about == {f"AuditEvent/ae{n}" for n in range(1, 8)} - {"AuditEvent/ae4"}
    record = store.last_runs(BASE)[0]
    assert record.status == "errors" and record.error_count == 1
    # an errored run does not move the incremental starting point
    assert store.last_success(BASE) is None


def test_dry_run_makes_no_write_call(fake, store):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        summary, _ = scan(store, full=True, dry_run=True)
    assert [c for c in fake.calls if c[0] == "POST" and not c[1].endswith("_search")] == []
    assert summary.written == {}
    assert len(summary.would_write) == 21 + 7 + 1
    assert {row["kind"] for row in summary.would_write} == {"alert", "finding-note", "task",
                                                             "provenance", "device"}
    assert store.last_success(BASE) is None


def test_dry_run_says_what_the_real_run_then_writes(fake, store):
    """A truthful dry run (issue 12): it looks up what exists as the real run does, so
    what it would write is what the real run writes, on a fresh server, on one where some
    resources are there, and on a rerun (nothing)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        scan(store, patients=("p1", "p2", "p3"))
        note = fake.written("DocumentReference")[0]
        provenance = next(p for p in fake.of_type("Provenance")
                          if {"reference": f"DocumentReference/{note['id']}"} in p["target"])
        del fake.store["Provenance"][provenance["id"]]
        del fake.store["DocumentReference"][note["id"]]
        for _ in range(2):
            dry, _ = scan(store, full=True, dry_run=True)
            real, _ = scan(store, full=True)
            assert real.status == "ok", real.errors
            counted = Counter(row["resourceType"] for row in dry.would_write)
            assert counted == real.written
        assert real.written == {}
    assert len(fake.written("DocumentReference")) == 7


def test_killed_scan_resumes_with_the_patients_not_done(fake, store):
    calls = {"n": 0}

    def evaluate_then_die(resources):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed while deciding the second batch
        return stub_evaluate(resources)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        scanner = Scanner(make_client(), store, ScanOptions(BASE, full=True, batch_size=3),
                          privacy_officer="Practitioner/po-1", evaluator=evaluate_then_die)
        with pytest.raises(KeyboardInterrupt):
            scanner.run()
        assert len(fake.written("Communication")) == 3
        summary, _ = scan(store, full=True)
    assert summary.resumed
    assert summary.patients_skipped == 3
    assert summary.patients_done == 4
    assert summary.status == "ok"
    # exactly the resources of an uninterrupted run: one of each per disclosure
    identifiers = [r["identifier"][0]["value"]
                   for t in ("Communication", "DocumentReference", "Task")
                   for r in fake.written(t)]
    assert len(identifiers) == len(set(identifiers)) == 21
    assert len(fake.of_type("Provenance")) == 7
    record = store.run(summary.run)
    assert record.patients_done == 7 and record.status == "ok"


def test_incremental_scan_takes_changed_patients_since_the_last_good_run(fake, store):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        first, _ = scan(store)  # no good run yet: full
        assert first.mode == "full"
        fake.add({**chart(9)[0]},
                 {**chart(9)[1], "meta": {"lastUpdated": "2999-01-01T00:00:00Z"}})
        second, _ = scan(store, since="2998-12-31")
    assert second.mode == "incremental"
    assert second.since == "2998-12-31T00:00:00Z"
    assert second.patients_selected == 1
    assert second.written["Communication"] == 1


def test_explicit_patients_only(fake, store):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        summary, _ = scan(store, patients=("Patient/p2", "p5"))
    assert summary.mode == "patients"
    assert summary.patients_done == 2
    about = {c["about"][0]["reference"] for c in fake.written("Communication")}
    assert about == {"AuditEvent/ae2", "AuditEvent/ae5"}


def test_expired_token_is_renewed_mid_scan(fake, store):
    """SMART Backend Services for real (private_key_jwt against a mocked token endpoint): the
    server stops accepting the first token half-way through the scan (it expired); the auth
    renews it on the 401 and the scan finishes with everything written."""
    from consent_gap.smart.backend import BackendServicesAuth
    from consent_gap.smart.keys import generate_signing_key

    token_url = "https://auth.test/token"
    issued: list[str] = []

    def token_endpoint(request):
        form = dict(parse_qsl(request.body))
        assert form["grant_type"] == "client_credentials"
        assert form["client_assertion_type"].endswith("jwt-bearer")
        issued.append(f"token-{len(issued) + 1}")
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"access_token": issued[-1], "token_type": "bearer", "expires_in": 3600,
             "scope": "system/*.rs"})

    seen = {"requests": 0}

    def accepts(headers):
        seen["requests"] += 1
        current = issued[-1] if seen["requests"] < 8 else "token-2"  # token-1 expires
        return headers.get("Authorization") == f"Bearer {current}"

    fake.auth_check = accepts
    auth = BackendServicesAuth(token_url, "consent-gap-scan", scope="system/Consent.rs",
                               key=generate_signing_key("RS384"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback("POST", token_url, callback=token_endpoint)
        fake.install(mocked)
        summary, _ = scan(store, full=True, client=make_client(auth))
    assert summary.status == "ok", summary.errors
    assert issued == ["token-1", "token-2"]
    assert len(fake.written("Communication")) == 7
    assert len(fake.of_type("Provenance")) == 7


def test_preflight_names_what_is_missing(fake):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        client = make_client()
        preflight(client, Settings(fhir_base=BASE, privacy_officer="Practitioner/po-1"))
        from consent_gap.commands.base import UsageError

        with pytest.raises(UsageError, match="CONSENT_GAP_PRIVACY_OFFICER: Practitioner/nobody"):
            preflight(client, Settings(fhir_base=BASE, privacy_officer="Practitioner/nobody"))


def test_a_stop_request_ends_the_run_between_batches_and_it_resumes(fake, store):
    asked = {"n": 0}

    def stop_after_first_batch():
        asked["n"] += 1
        return asked["n"] >= 2

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        scanner = Scanner(make_client(), store, ScanOptions(BASE, full=True, batch_size=3),
                          privacy_officer="Practitioner/po-1", evaluator=stub_evaluate,
                          should_stop=stop_after_first_batch)
        stopped = scanner.run()
        assert stopped.status == "failed"
        assert stopped.patients_done == 3
        assert "stopped on request" in stopped.errors[-1]
        resumed, _ = scan(store, full=True)
    assert resumed.resumed and resumed.run == stopped.run
    assert resumed.patients_done == 4
    assert len(fake.written("Communication")) == 7


def test_unknown_jurisdiction_is_a_usage_error_before_any_request(tmp_path):
    from consent_gap.commands.base import UsageError
    from consent_gap.scan import run_scan

    with (
        responses.RequestsMock(assert_all_requests_are_fired=False),  # no request allowed
        pytest.raises(UsageError, match="unknown jurisdiction 'US-ZZ'"),
    ):
        run_scan(Settings(fhir_base=BASE, jurisdiction="US-ZZ", state_dir=tmp_path))


def test_a_server_refusing_task_search_gets_nothing_twice_on_a_rerun(fake, store):
    """DESIGN grants the scan system/Task.cru, no search: the Task is known to be there from
    the Provenance of the transaction that wrote it, so a rerun sends nothing (before, it
    sent the Task again, which matched, under a new Provenance, which did not)."""
    fake.unsearchable = ("Task",)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        fake.install(mocked)
        first, _ = scan(store, full=True)
        count = sum(len(v) for v in fake.store.values())
        fake.calls.clear()
        dry, _ = scan(store, full=True, dry_run=True)
        second, _ = scan(store, full=True)
    assert first.status == second.status == "ok", second.errors
    assert first.written["Task"] == 7 and first.written["Provenance"] == 7
    assert dry.would_write == [] and second.written == {}
    assert sum(len(v) for v in fake.store.values()) == count
    assert ("POST", "") not in fake.calls
