"""Write-back for a disclosure sent as a Communication (CONTRACT 1.1, 1.4, 5): every alert,
note, draft and reminder points at the Communication, validates with fhir.resources.R4B, and
what it writes changes no decision on the next run; a clinician's notice recorded in the panel
is the client notice 1.4 counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from consent_gap.evaluate import evaluate
from consent_gap.writeback import Kind, WriteContext, client_notice_record, plan
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.task import Task
from support.fhir import bundle, document, organization, patient, practitioner, sent_disclosure

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "examples"
CONTEXT = WriteContext(privacy_officer="Practitioner/po-1", organization="Organization/org-1",
                       device="Device/app-1")
CM = "Communication/cm1"
MODELS = {"Communication": Communication, "DocumentReference": DocumentReference, "Task": Task}


def threat_bundle() -> dict:
    """A THREAT disclosure sent as a letter in California: required, nothing documented."""
    return bundle(patient(), practitioner(), organization(), document(),
                  sent_disclosure(purposes=("THREAT",)))


def writes_of(data: dict, jurisdiction: str | None) -> dict[Kind, object]:
    (found,) = evaluate(data, jurisdiction).findings
    return {write.kind: write for write in plan(found, CONTEXT).writes}


def test_the_subpoena_letter_is_alerted_about_the_communication():
    data = json.loads((EXAMPLES / "22-communication-subpoena-only.json").read_text())
    writes = writes_of(data, "US-CA")
    assert set(writes) == {Kind.ALERT, Kind.FINDING_NOTE, Kind.TASK}
    assert writes[Kind.TASK].resource["focus"] == {"reference": "Communication/cm-ae-equillon-1"}
    alert = writes[Kind.ALERT].resource
    assert alert["about"] == [{"reference": "Communication/cm-ae-equillon-1"}]
    assert alert["priority"] == "urgent"
    # the sender (a Practitioner) is among the people alerted, beside the privacy officer
    assert {"reference": "Practitioner/pr-oakfield"} in alert["recipient"]
    note = writes[Kind.FINDING_NOTE].resource
    assert note["context"]["related"][0] == {"reference": "Communication/cm-ae-equillon-1"}


def test_documentation_draft_and_reminder_point_at_the_communication():
    writes = writes_of(threat_bundle(), "US-CA")
    assert set(writes) == {Kind.DOCUMENTATION_DRAFT, Kind.NOTICE_REMINDER}
    assert writes[Kind.DOCUMENTATION_DRAFT].resource["context"]["related"] == [
        {"reference": CM}]
    assert writes[Kind.NOTICE_REMINDER].resource["about"] == [{"reference": CM}]


@pytest.mark.parametrize(("name", "jurisdiction"), [
    ("22-communication-subpoena-only", "US-CA"), ("threat", "US-CA")])
def test_every_resource_written_validates_with_r4b(name, jurisdiction):
    data = (threat_bundle() if name == "threat"
            else json.loads((EXAMPLES / f"{name}.json").read_text()))
    writes = writes_of(data, jurisdiction)
    assert writes
    for write in writes.values():
        MODELS[write.resource_type].model_validate(write.resource)


def stored(data: dict, group) -> dict:
    """The bundle plus the written resources and their one Provenance as the server would
    keep them (with ids, the Provenance's targets resolved)."""
    entries = list(data["entry"])
    targets = []
    for n, write in enumerate(group.writes):
        rid = f"cg-{write.value[:12]}-{n}"
        entries.append({"resource": {**write.resource, "id": rid}})
        targets.append({"reference": f"{write.resource_type}/{rid}"})
    entries.append({"resource": {**group.provenance(CONTEXT), "id": "cg-prov",
                                 "target": targets}})
    return {**data, "entry": entries}


def test_what_is_written_is_neither_a_disclosure_nor_its_documentation():
    data = threat_bundle()
    before = evaluate(data, "US-CA")
    (found,) = before.findings
    group = plan(found, CONTEXT)
    provenance = Provenance.model_validate(group.provenance(CONTEXT))
    assert [e.what.reference for e in provenance.entity] == [found.disclosure]
    after = evaluate(stored(data, group), "US-CA")
    assert [f.to_json() for f in after.findings] == [f.to_json() for f in before.findings]
    assert after.problems == []


@pytest.mark.parametrize(("sent", "expected"), [(True, "sent"), (False, "withheld")])
def test_the_notice_recorded_in_the_panel_counts_for_the_communication(sent, expected):
    data = threat_bundle()
    (found,) = evaluate(data, "US-CA").findings
    assert found.client_notice == "missing"
    record = client_notice_record(found, CONTEXT, sent=sent, reason=None if sent else "unsafe",
                                  author="Practitioner/pr-src")
    (write,) = record.writes
    Communication.model_validate(write.resource)
    assert write.resource["about"] == [{"reference": CM}]
    agents = Provenance.model_validate(record.provenance(CONTEXT)).agent
    assert [(a.who.reference, a.type.coding[0].code) for a in agents] == [
        ("Practitioner/pr-src", "author"), (CONTEXT.device, "assembler")]
    (again,) = evaluate(stored(data, record), "US-CA").findings
    assert again.disclosure == CM
    assert again.client_notice == expected
