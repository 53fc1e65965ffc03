"""CONTRACT 6 acceptance: every disclosure of every example, its AuditEvent taken out and made
a proposal at its time, is decided by `check` exactly as `evaluate` decides the recorded one,
with 6.2's documentation, notice and steps. The two disclosures recorded as Communications
(examples 21 and 22) are taken out and proposed the same way."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from consent_gap.evaluate import evaluator
from consent_gap.mappings import load_rules
from consent_gap.proposal import check, read_proposal, step_codes

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "examples"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _tail(ref: str) -> str:
    parts = ref.rstrip("/").split("/")
    return "/".join(parts[-2:]) if ref.startswith("http") else ref


def as_proposal(event: dict) -> dict:
    """The proposal a recorded AuditEvent would have been, at its time."""
    proposal: dict = {"at": (event.get("period") or {}).get("start") or event["recorded"],
                      "purposes": [c["code"] for p in event.get("purposeOfEvent", [])
                                   for c in p.get("coding", []) if c.get("system", "").endswith(
                                       "v3-ActReason")],
                      "data": []}
    for agent in event.get("agent", []):
        codes = {(c.get("system"), c.get("code")) for c in agent.get("type", {}).get("coding", [])}
        if (DCM, "110152") in codes and "recipient" not in proposal:
            who = agent.get("who", {})
            proposal["recipient"] = {k: who[k] for k in ("reference", "identifier") if k in who}
    for entity in event.get("entity", []):
        ref = entity.get("what", {}).get("reference")
        if ref and _tail(ref).startswith("Patient/") and "patient" not in proposal:
            proposal["patient"] = ref
            continue
        item: dict = {}
        if ref:
            item["reference"] = ref
        if entity.get("securityLabel"):
            item["labels"] = [{"system": c["system"], "code": c["code"]}
                              for c in entity["securityLabel"]]
        proposal["data"].append(item)
    return proposal


def communication_as_proposal(sent: dict) -> dict:
    """The proposal a disclosure Communication (1.1) would have been, at its time."""
    proposal: dict = {"at": sent["sent"], "patient": sent["subject"]["reference"],
                      "purposes": [c["code"] for p in sent.get("reasonCode", [])
                                   for c in p.get("coding", [])
                                   if c.get("system", "").endswith("v3-ActReason")],
                      "recipient": {k: v for k, v in sent["recipient"][0].items()
                                    if k in ("reference", "identifier")},
                      "data": [], "instruments": []}
    for based in sent.get("basedOn", []):
        proposal["instruments"].append(based["reference"])
    for item in sent.get("payload", []):
        if "contentReference" in item:
            proposal["data"].append({"reference": item["contentReference"]["reference"]})
        elif "contentAttachment" in item:
            proposal["data"].append({})
    if not proposal["data"] and any("contentString" in p for p in sent.get("payload", [])):
        proposal["data"].append({})
    return proposal


def cases():
    for path in sorted(EXAMPLES.glob("*.json")):
        if path.name.endswith(".expected.json"):
            continue
        bundle = json.loads(path.read_text())
        expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())
        jurisdiction = expected.get("jurisdiction")
        decided = {f["disclosure"] for f in expected["findings"]}
        for index, entry in enumerate(bundle["entry"]):
            resource = entry["resource"]
            if f"{resource['resourceType']}/{resource.get('id')}" in decided:
                yield pytest.param(path.name, index, jurisdiction,
                                   id=f"{path.stem}:{resource['id']}")


@pytest.mark.parametrize(("name", "index", "jurisdiction"), list(cases()))
def test_check_decides_as_evaluate_decides_the_recorded_disclosure(name, index, jurisdiction):
    bundle = json.loads((EXAMPLES / name).read_text())
    rules = load_rules()
    decide = evaluator(jurisdiction, rules=rules)
    event = bundle["entry"][index]["resource"]
    recorded = next(f for f in decide(bundle).findings
                    if f.disclosure == f"{event['resourceType']}/{event['id']}")
    chart = copy.deepcopy(bundle)
    del chart["entry"][index]
    convert = as_proposal if event["resourceType"] == "AuditEvent" else communication_as_proposal
    proposal = read_proposal(convert(event), rules, now=NOW)
    answer = check(chart, proposal, decide, rules=rules, place=decide.place)
    got = answer.to_json()["finding"]
    for key in ("decision", "basis", "reasons", "accountable", "occurred", "purposes",
                "recipient", "patient"):
        assert got[key] == recorded.to_json()[key], key
    assert got["disclosure"] is None
    owed = recorded.documentation != "not-required"
    assert got["documentation"] == ("missing" if owed else "not-required")
    notice_owed = recorded.client_notice != "not-required"
    assert got["client_notice"] == ("missing" if notice_owed else "not-required")
    assert answer.step_codes == step_codes(rules.guide, answer.finding,
                                           answer.can_draft_authorization)
    assert ("document" in answer.step_codes) == owed
    assert ("inform-client" in answer.step_codes) == notice_owed


def test_every_example_disclosure_is_covered():
    assert len(list(cases())) == 26  # 24 AuditEvents and the two disclosure Communications
