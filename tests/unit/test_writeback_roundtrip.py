"""What the write-back writes never counts as the documentation or the client notice it asks
for (CONTRACT 1.4): a scan that ran once must find the same gaps the next night, until a person
writes the real note or tells the client. Checked through the real engine."""

import json
from pathlib import Path

from consent_gap.evaluate import evaluate
from consent_gap.writeback import Kind, WriteContext, plan

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "examples"
CONTEXT = WriteContext(privacy_officer="Practitioner/po-1", organization="Organization/org-1",
                       device="Device/app-1")


def example(name: str) -> tuple[dict, str | None]:
    bundle = json.loads((EXAMPLES / f"{name}.json").read_text())
    expected = json.loads((EXAMPLES / f"{name}.expected.json").read_text())
    return bundle, expected.get("jurisdiction")


def with_writes(bundle: dict, findings) -> tuple[dict, set[Kind]]:
    """The bundle plus every resource the write-back would create for these findings, as the
    server would store them (with ids; Provenance targets resolved)."""
    entries = list(bundle["entry"])
    kinds: set[Kind] = set()
    for finding in findings:
        group = plan(finding, CONTEXT)
        if not group:
            continue
        targets = []
        for n, write in enumerate(group.writes):
            rid = f"cg-{write.value[:12]}-{n}"
            entries.append({"resource": {**write.resource, "id": rid}})
            targets.append({"reference": f"{write.resource_type}/{rid}"})
            kinds.add(write.kind)
        entries.append({"resource": {**group.provenance(CONTEXT),
                                     "id": f"cg-{group.provenance_key[:12]}",
                                     "target": targets}})
    return {**bundle, "entry": entries}, kinds


def decided(report):
    return [f.to_json() for f in report.findings]


def test_our_draft_does_not_count_as_documentation():
    bundle, jurisdiction = example("07-duty-to-warn-tx")
    before = evaluate(bundle, jurisdiction)
    assert any(f.documentation == "missing" for f in before.findings)
    after_bundle, kinds = with_writes(bundle, before.findings)
    assert Kind.DOCUMENTATION_DRAFT in kinds
    after = evaluate(after_bundle, jurisdiction)
    assert decided(after) == decided(before)
    assert after.problems == before.problems


def test_our_reminder_does_not_count_as_client_notice():
    bundle, jurisdiction = example("06-duty-to-warn-ca")
    bundle["entry"] = [e for e in bundle["entry"]
                       if e["resource"]["resourceType"] != "Communication"]
    before = evaluate(bundle, jurisdiction)
    assert {f.client_notice for f in before.findings} == {"missing"}
    after_bundle, kinds = with_writes(bundle, before.findings)
    assert Kind.NOTICE_REMINDER in kinds
    assert decided(evaluate(after_bundle, jurisdiction)) == decided(before)


def test_our_alerts_and_notes_change_no_decision():
    for path in sorted(EXAMPLES.glob("[0-9][0-9]-*.json")):
        if path.name.endswith(".expected.json"):
            continue
        bundle, jurisdiction = example(path.stem)
        before = evaluate(bundle, jurisdiction)
        after_bundle, _ = with_writes(bundle, before.findings)
        assert decided(evaluate(after_bundle, jurisdiction)) == decided(before), path.name
