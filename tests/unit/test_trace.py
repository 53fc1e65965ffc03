"""The trace of a decision (Finding.decided_by): the Consent or the 1.3 row that decided, then
what narrowed or turned it, carried into the finding note and the panel, never into the
contract's JSON."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from consent_gap import wording
from consent_gap.evaluate import evaluate
from consent_gap.web.config import PANEL_SCOPES, WebConfig
from consent_gap.web.context import Launch
from consent_gap.web.view import build_view
from consent_gap.writeback import Kind, WriteContext, plan

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"


def findings(name: str, jurisdiction: str | None = "US-CA"):
    bundle = json.loads((EXAMPLES / name).read_text())
    return evaluate(bundle, jurisdiction).findings


def example(number: str) -> Path:
    return next(p for p in EXAMPLES.glob(f"{number}-*.json")
                if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("number,trace", [
    ("01", ("Consent/c-jvance-roi",)),
    ("09", ("exceptions/subpoena-only",)),
    ("10", ("exceptions/court-order",)),
    ("12", ("exceptions/treatment", "narrowing/psychotherapy-notes")),
    ("16", ("exceptions/patient-request", "near-miss")),
    ("17", ("exceptions/payment", "restriction")),
    ("22", ("exceptions/subpoena-only",)),
])
def test_each_finding_names_what_decided_it(number, trace):
    assert findings(example(number).name)[0].decided_by == trace


def test_unresolved_data_keeps_the_covering_consent_in_the_trace():
    (finding,) = findings("01-authorized-lawyer.json")
    bundle = json.loads((EXAMPLES / "01-authorized-lawyer.json").read_text())
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "AuditEvent":
            resource["entity"] = [e for e in resource["entity"]
                                  if e.get("what", {}).get("reference", "").startswith("Pat")]
    (unresolved,) = evaluate(bundle, "US-CA").findings
    assert unresolved.decision == "review"
    assert unresolved.decided_by == (finding.decided_by[0], "data-unresolved")


def test_the_trace_stays_out_of_the_contracts_json():
    for finding in findings(example("12").name):
        assert "decided_by" not in finding.to_json() and finding.decided_by


def test_every_trace_of_the_examples_has_words():
    for path in EXAMPLES.glob("[0-9][0-9]-*.json"):
        if path.name.endswith(".expected.json"):
            continue
        for finding in findings(path.name):
            assert finding.decided_by
            for item in finding.decided_by:
                assert wording.trace(item)
    with pytest.raises(wording.WordingError):
        wording.trace("exceptions/no-such-row")
    with pytest.raises(wording.WordingError):
        wording.trace("something-else")


def test_the_finding_note_and_the_panel_show_the_trace():
    finding = findings("09-subpoena-only.json")[0]
    note = next(w for w in plan(finding, WriteContext()).writes if w.kind is Kind.FINDING_NOTE)
    text = base64.b64decode(note.resource["content"][0]["attachment"]["data"]).decode()
    assert ("- Decided by: rule 'subpoena-only' of exceptions.toml: a legal request with a "
            "subpoena only (`exceptions/subpoena-only`)") in text
    launch = Launch(lid="L", iss="https://ehr.test/fhir", token_endpoint="t",
                    patient=finding.patient.removeprefix("Patient/"), access_token="a",
                    expires_at=0, scope=PANEL_SCOPES)
    bundle = json.loads(example("09").read_text())
    view = build_view(launch, evaluate(bundle, "US-CA"), WebConfig())
    (item,) = [v for v in view.findings if v.finding.disclosure == finding.disclosure]
    assert [(t.code, t.text) for t in item.decided_by] == [
        ("exceptions/subpoena-only", wording.trace("exceptions/subpoena-only"))]
    assert replace(finding, decided_by=()).to_json() == finding.to_json()
