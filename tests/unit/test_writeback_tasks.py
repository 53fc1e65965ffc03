"""The privacy office's Task (CONTRACT.md section 7, first paragraph): one per flagged finding,
in the finding's transaction, with the contract's fields and the exact 60-day deadline; a Task
written after its finding (an existing install) is dated at the finding's discovery."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from consent_gap.domain import Decision
from consent_gap.evaluate import evaluate
from consent_gap.writeback import (
    FINDING_SYSTEM,
    Kind,
    WriteContext,
    identifier_value,
    plan,
    transaction,
    urn,
)
from consent_gap.writeback.tasks import Present, anchored, parse_instant, present
from fhir.resources.R4B.task import Task

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "examples"
CASES = sorted(p.name.removesuffix(".expected.json") for p in EXAMPLES.glob("*.expected.json"))
NOW = datetime(2026, 11, 29, 2, 0, 5, tzinfo=UTC)
CONTEXT = WriteContext(privacy_officer="Practitioner/po-1", organization="Organization/org-1",
                       now=NOW)
CODE = {"system": "https://consent-gap.dev/fhir/CodeSystem/task", "code": "review-disclosure"}


def findings(name: str):
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    jurisdiction = json.loads((EXAMPLES / f"{name}.expected.json").read_text()).get(
        "jurisdiction")
    return evaluate(data, jurisdiction).findings


def tasks_of(group):
    return [w for w in group.writes if w.kind == Kind.TASK]


@pytest.mark.parametrize("name", CASES)
def test_every_flagged_finding_of_the_examples_gets_exactly_one_task(name):
    for found in findings(name):
        group = plan(found, CONTEXT)
        flagged = found.decision in (Decision.UNAUTHORIZED, Decision.REVIEW)
        written = tasks_of(group)
        assert len(written) == (1 if flagged else 0), found.disclosure
        if not flagged:
            continue
        (write,) = written
        task = write.resource
        Task.model_validate(task)
        urgent = found.decision == Decision.UNAUTHORIZED
        assert task["identifier"] == [{"system": FINDING_SYSTEM, "value": write.value}]
        assert write.value == identifier_value(found, Kind.TASK)
        assert task["status"] == "requested" and task["intent"] == "order"
        assert task["priority"] == ("urgent" if urgent else "routine")
        alert = next(w for w in group.writes if w.kind == Kind.ALERT).resource
        assert task["priority"] == alert["priority"]  # "as the alert"
        assert {k: task["code"]["coding"][0][k] for k in CODE} == CODE
        assert task["focus"] == {"reference": found.disclosure}
        assert task["for"] == {"reference": found.patient}
        assert task["owner"] == {"reference": "Practitioner/po-1"}
        assert task["authoredOn"] == "2026-11-29T02:00:05Z"
        note = next(w for w in group.writes if w.kind == Kind.FINDING_NOTE)
        assert task["reasonReference"] == {"reference": note.full_url}
        if urgent:
            assert task["restriction"] == {"period": {"end": "2027-01-28T02:00:05Z"}}
        else:
            assert "restriction" not in task
        assert {"code": "consent-gap"}.items() <= task["meta"]["tag"][0].items()


def test_the_task_is_in_the_findings_transaction_with_its_provenance():
    (found,) = findings("02-authorization-expired")
    bundle = transaction([plan(found, CONTEXT)], CONTEXT)
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types.count("Task") == 1
    index = types.index("Task")
    entry, provenance = bundle["entry"][index], bundle["entry"][-1]
    value = entry["resource"]["identifier"][0]["value"]
    assert entry["request"]["ifNoneExist"] == f"identifier={FINDING_SYSTEM}|{value}"
    # the finding's one Provenance (CONTRACT 5) targets the Task among its resources
    assert types.count("Provenance") == 1
    assert {"reference": entry["fullUrl"]} in provenance["resource"]["target"]
    # the note it names is in the same transaction
    assert entry["resource"]["reasonReference"]["reference"] in {
        e["fullUrl"] for e in bundle["entry"]}


def test_no_privacy_officer_configured_means_no_owner():
    (found,) = findings("02-authorization-expired")
    (task,) = tasks_of(plan(found, replace(CONTEXT, privacy_officer=None)))
    assert "owner" not in task.resource


def test_the_deadline_crosses_a_leap_day_and_a_year_exactly():
    (found,) = findings("02-authorization-expired")
    context = replace(CONTEXT, now=datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC))
    (task,) = tasks_of(plan(found, context))
    assert task.resource["restriction"]["period"]["end"] == "2028-02-29T23:59:59Z"


def _existing(group, kinds, when):
    found = {}
    for write in group.writes:
        if write.kind in kinds:
            found[write.value] = Present(f"{write.resource_type}/x-{write.kind}", when)
    return found


def test_a_task_written_after_its_alert_is_dated_at_the_discovery():
    """An install from before Tasks: the alert and note are there (written at discovery),
    the Task is not. The Task takes the earliest of their times, its deadline from it, and
    names the note on the server."""
    (found,) = findings("02-authorization-expired")
    later = replace(CONTEXT, now=datetime(2027, 1, 5, 2, 0, tzinfo=UTC))
    group = plan(found, later)
    discovered = datetime(2026, 11, 2, 2, 0, 1, tzinfo=UTC)
    existing = _existing(group, {Kind.ALERT}, discovered)
    existing.update(_existing(group, {Kind.FINDING_NOTE}, datetime(2026, 11, 2, 2, 0, 3,
                                                                    tzinfo=UTC)))
    left = anchored(group, existing, later)
    assert [w.kind for w in left.writes] == [Kind.TASK]
    task = left.writes[0].resource
    Task.model_validate(task)
    assert task["authoredOn"] == "2026-11-02T02:00:01Z"
    assert task["restriction"]["period"]["end"] == "2027-01-01T02:00:01Z"
    assert task["reasonReference"] == {"reference": "DocumentReference/x-finding-note"}
    assert task["identifier"] == group.writes[-1].resource["identifier"]
    assert left.writes[0].value == group.writes[-1].value


def test_a_task_whose_note_goes_in_the_same_transaction_keeps_the_urn():
    (found,) = findings("02-authorization-expired")
    group = plan(found, CONTEXT)
    discovered = datetime(2026, 11, 2, tzinfo=UTC)
    left = anchored(group, _existing(group, {Kind.ALERT}, discovered), CONTEXT)
    assert [w.kind for w in left.writes] == [Kind.FINDING_NOTE, Kind.TASK]
    task = left.writes[1].resource
    assert task["reasonReference"] == {"reference": left.writes[0].full_url}
    assert task["authoredOn"] == "2026-11-02T00:00:00Z"


def test_nothing_on_the_server_leaves_the_group_as_planned_and_all_there_leaves_nothing():
    (found,) = findings("02-authorization-expired")
    group = plan(found, CONTEXT)
    assert anchored(group, {}, CONTEXT).writes == group.writes
    every = _existing(group, set(Kind), NOW)
    assert not anchored(group, every, CONTEXT)


def test_present_reads_identifier_reference_and_time_of_our_resources():
    value = "abc"
    found = present([
        {"resourceType": "Communication", "id": "8", "sent": "2026-11-02T02:00:01Z",
         "identifier": [{"system": FINDING_SYSTEM, "value": value}]},
        {"resourceType": "DocumentReference", "id": "9", "date": "2026-11-03T02:00:01+02:00",
         "identifier": [{"system": FINDING_SYSTEM, "value": "def"},
                        {"system": "urn:other", "value": "zzz"}]},
        {"resourceType": "Task", "id": "10", "meta": {"lastUpdated": "2026-11-04T00:00:00Z"},
         "identifier": [{"system": FINDING_SYSTEM, "value": "ghi"}]},
        {"resourceType": "OperationOutcome"},
    ])
    assert found == {
        "abc": Present("Communication/8", datetime(2026, 11, 2, 2, 0, 1, tzinfo=UTC)),
        "def": Present("DocumentReference/9", datetime(2026, 11, 3, 0, 0, 1, tzinfo=UTC)),
        "ghi": Present("Task/10", datetime(2026, 11, 4, tzinfo=UTC)),
    }


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-02", datetime(2026, 11, 2, tzinfo=UTC)),
    ("2026-11-02T02:00:01.123Z", datetime(2026, 11, 2, 2, 0, 1, 123000, tzinfo=UTC)),
    ("nonsense", None), (None, None), ("", None),
])
def test_parse_instant(text, expected):
    assert parse_instant(text) == expected


def test_urn_of_the_note_is_what_the_task_names():
    (found,) = findings("02-authorization-expired")
    (task,) = tasks_of(plan(found, CONTEXT))
    note_value = identifier_value(found, Kind.FINDING_NOTE)
    assert task.resource["reasonReference"]["reference"] == urn(f"{FINDING_SYSTEM}|{note_value}")
