"""Write-back: the resources CONTRACT.md section 5 asks for, deterministic and R4-valid."""

import base64
import hashlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from consent_gap.domain import ClientNotice, Decision, Documentation, Finding
from consent_gap.writeback import (
    FINDING_SYSTEM,
    PROVENANCE_TAG_SYSTEM,
    TAG,
    TO_COMPLETE,
    EntryResult,
    Kind,
    WritebackError,
    WriteContext,
    WriteStatus,
    existing_searches,
    identifier_value,
    kinds_for,
    plan,
    planned_values,
    preview,
    provenance_key,
    read_response,
    transaction,
    validate,
    without,
    written_values,
)
from consent_gap.writeback.tasks import Present

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
CONTEXT = WriteContext(
    privacy_officer="Practitioner/po-1", organization="Organization/org-1", now=NOW
)


def finding(**changes) -> Finding:
    base = Finding(
        disclosure="AuditEvent/ae-1",
        patient="Patient/p-1",
        occurred="2025-04-02T10:00:00Z",
        recipient="Organization/police-1",
        purposes=("HLEGAL",),
        decision=Decision.UNAUTHORIZED,
        basis=None,
        reasons=("subpoena-without-court-order", "authorization-expired"),
        accountable=True,
        documentation=Documentation.NOT_REQUIRED,
        client_notice=ClientNotice.NOT_REQUIRED,
        explanation="A subpoena alone does not permit this disclosure.",
        consents_checked=(("Consent/c-1", "authorization-expired"),),
        notify=("Practitioner/pr-1",),
        disclosed=("DocumentReference/note-1",),
        instruments=("DocumentReference/subpoena-1",),
    )
    return replace(base, **changes)


def text_of(document: dict) -> str:
    return base64.b64decode(document["content"][0]["attachment"]["data"]).decode()


def by_kind(writes) -> dict:
    return {write.kind: write for write in writes.writes}


@pytest.mark.parametrize(
    ("changes", "kinds"),
    [
        ({}, [Kind.ALERT, Kind.FINDING_NOTE, Kind.TASK]),
        ({"decision": Decision.REVIEW}, [Kind.ALERT, Kind.FINDING_NOTE, Kind.TASK]),
        ({"decision": Decision.AUTHORIZED, "reasons": ()}, []),
        ({"decision": Decision.PERMITTED, "reasons": ()}, []),
        ({"decision": Decision.REQUIRED, "reasons": (), "documentation": Documentation.PRESENT,
          "client_notice": ClientNotice.SENT}, []),
        ({"decision": Decision.REQUIRED, "reasons": (), "documentation": Documentation.MISSING,
          "client_notice": ClientNotice.WITHHELD}, [Kind.DOCUMENTATION_DRAFT]),
        ({"decision": Decision.PERMITTED, "reasons": (), "documentation": Documentation.PRESENT,
          "client_notice": ClientNotice.MISSING}, [Kind.NOTICE_REMINDER]),
        ({"decision": Decision.REQUIRED, "reasons": (), "documentation": Documentation.MISSING,
          "client_notice": ClientNotice.MISSING},
         [Kind.DOCUMENTATION_DRAFT, Kind.NOTICE_REMINDER]),
    ],
)
def test_kinds_follow_the_contract_table(changes, kinds):
    item = finding(**changes)
    assert kinds_for(item) == kinds
    assert [write.kind for write in plan(item, CONTEXT).writes] == kinds


def test_nothing_to_write_gives_no_transaction():
    item = finding(decision=Decision.AUTHORIZED, reasons=(), basis="Consent/c-1")
    writes = plan(item, CONTEXT)
    assert not writes
    assert transaction([writes], CONTEXT) is None


def test_identifiers_are_deterministic_and_distinct():
    item = finding()
    first = [write.value for write in plan(item, CONTEXT).writes]
    later = WriteContext(privacy_officer="Practitioner/po-2", now=datetime(2030, 1, 1, tzinfo=UTC))
    assert [write.value for write in plan(item, later).writes] == first
    assert len(set(first)) == len(first)
    assert identifier_value(item, Kind.ALERT) != identifier_value(
        replace(item, decision=Decision.REVIEW), Kind.ALERT
    )
    assert identifier_value(item, Kind.ALERT) != identifier_value(
        replace(item, disclosure="AuditEvent/ae-2"), Kind.ALERT
    )
    # CONTRACT 5: not the ruleset; a new release re-alerts nothing whose decision is the same
    newer = replace(CONTEXT, ruleset="2099.1")
    assert [w.value for w in plan(item, newer).writes] == first
    assert [w.full_url for w in plan(item, newer).writes] == [
        w.full_url for w in plan(item, CONTEXT).writes]
    assert plan(item, newer).provenance(newer)["policy"] != plan(
        item, CONTEXT).provenance(CONTEXT)["policy"]  # the ruleset still shows where it is
    assert plan(item, newer).provenance_key == plan(item, CONTEXT).provenance_key
    # timestamps differ between runs; identifiers and fullUrls must not:
    urls = [e["fullUrl"] for e in transaction([plan(item, CONTEXT)], CONTEXT)["entry"]]
    again = [e["fullUrl"] for e in transaction([plan(item, later)], later)["entry"]]
    assert urls == again


def test_identifier_values_are_stable_across_releases():
    """The values already in charts: a change here re-alerts every finding once."""
    item = finding()
    assert identifier_value(item, Kind.ALERT) == hashlib.sha256(
        b"AuditEvent/ae-1\nalert\nunauthorized").hexdigest()[:32]
    assert identifier_value(item, Kind.ALERT) == "bf82627825099a379271f166ed2c3332"


def test_every_resource_is_labelled_tagged_identified_and_about_the_patient():
    item = finding(documentation=Documentation.MISSING, client_notice=ClientNotice.MISSING)
    writes = plan(item, CONTEXT)
    assert len(writes.writes) == 5  # alert, note, draft, reminder, Task (CONTRACT 5 and 7)
    for write in writes.writes:
        resource = write.resource
        assert TAG["code"] in [t["code"] for t in resource["meta"]["tag"]]
        labels = resource["meta"]["security"]
        security = {(s["system"].rsplit("/", 1)[1], s["code"]) for s in labels}
        assert security == {("v3-Confidentiality", "R"), ("v3-ActCode", "PSY")}
        assert resource["identifier"] == [{"system": FINDING_SYSTEM, "value": write.value}]
        # a Task names the patient in `for` (it has no subject)
        about = resource["for"] if write.kind == Kind.TASK else resource["subject"]
        assert about == {"reference": "Patient/p-1"}
        validate(resource)
    validate(writes.provenance(CONTEXT))


def test_one_provenance_per_finding_targets_every_resource_and_is_conditional():
    """CONTRACT 5: one Provenance per finding's transaction, targeting every resource it
    creates, conditional on a key from the finding and those resources."""
    writes = plan(finding(documentation=Documentation.MISSING), CONTEXT)
    bundle = transaction([writes], CONTEXT)
    entries = bundle["entry"]
    assert bundle["type"] == "transaction"
    device = entries[0]
    assert device["resource"]["resourceType"] == "Device"
    assert device["request"]["ifNoneExist"].startswith("identifier=")
    resources = [e for e in entries[1:] if e["resource"]["resourceType"] != "Provenance"]
    (provenance,) = [e for e in entries[1:] if e["resource"]["resourceType"] == "Provenance"]
    assert entries[-1] is provenance
    assert len(resources) == 4  # alert, note, draft, Task
    for resource in resources:
        value = resource["resource"]["identifier"][0]["value"]
        assert resource["request"] == {
            "method": "POST",
            "url": resource["resource"]["resourceType"],
            "ifNoneExist": f"identifier={FINDING_SYSTEM}|{value}",
        }
        assert resource["fullUrl"].startswith("urn:uuid:")
    # every resource it creates, then the patient (R4's patient compartment: a strict EHR)
    assert provenance["resource"]["target"] == [{"reference": r["fullUrl"]} for r in resources] + [
        {"reference": resources[0]["resource"]["subject"]["reference"]}]
    key = provenance_key("AuditEvent/ae-1", [w.value for w in writes.writes])
    assert key == writes.provenance_key
    assert provenance["request"]["ifNoneExist"] == f"_tag={PROVENANCE_TAG_SYSTEM}|{key}"
    assert {"system": PROVENANCE_TAG_SYSTEM, "code": key} in provenance["resource"]["meta"]["tag"]
    # not the key of any one resource, so an install's per-resource Provenances never match
    assert key not in {w.value for w in writes.writes}
    agent = provenance["resource"]["agent"][0]
    assert agent["who"] == {"reference": device["fullUrl"]}
    assert agent["onBehalfOf"] == {"reference": "Organization/org-1"}
    full_urls = [e["fullUrl"] for e in entries]
    assert len(set(full_urls)) == len(full_urls)


def test_the_provenance_key_follows_what_the_transaction_writes():
    """The same writes give the same key whatever their order or time (a retry, a rerun, a
    resumed scan match it); a subset (the panel's draft alone, or what is left once the rest
    is on the server) gets a key of its own, so its resources are never left without one."""
    item = finding(documentation=Documentation.MISSING)
    group = plan(item, CONTEXT)
    later = plan(item, replace(CONTEXT, now=datetime(2027, 1, 1, tzinfo=UTC)))
    assert later.provenance_key == group.provenance_key
    assert replace(group, writes=group.writes[::-1]).provenance_key == group.provenance_key
    draft = without(group, {w.value for w in group.writes if w.kind != Kind.DOCUMENTATION_DRAFT})
    assert [w.kind for w in draft.writes] == [Kind.DOCUMENTATION_DRAFT]
    assert draft.provenance_key != group.provenance_key
    other = plan(replace(item, disclosure="AuditEvent/ae-2"), CONTEXT)
    assert other.provenance_key != group.provenance_key


def test_only_what_the_server_lacks_is_built_and_sent():
    """The look-up searches only what the fetch did not show (`known`), 200 identifiers a
    search; `plan` builds only what is missing, so each Provenance targets what is sent."""
    items = [finding(disclosure=f"AuditEvent/ae-{n}", documentation=Documentation.MISSING)
             for n in range(3)]
    full = [plan(item, CONTEXT) for item in items]
    on_server = {w.value for w in full[0].writes} | {full[1].writes[0].value}
    known = {full[0].writes[1].value: Present("DocumentReference/seen", None)}
    asked = []

    def search(rtype, params):
        asked.append(rtype)
        tokens = dict(params)["identifier"].split(",")
        assert dict(params)["_count"] == "200" and len(tokens) <= 200
        wanted = {t.split("|")[1] for t in tokens}
        assert not wanted & set(known)
        return [{"resourceType": rtype, "id": v[:4],
                 "identifier": [{"system": FINDING_SYSTEM, "value": v}]}
                for v in wanted & on_server]

    wanted = [pair for item in items for pair in planned_values(item)]
    present = written_values(wanted, search, known)
    assert sorted(asked) == ["Communication", "DocumentReference", "Task"]
    assert set(present) == on_server
    assert present[full[0].writes[1].value].reference == "DocumentReference/seen"
    left = [group for group in (plan(item, CONTEXT, present) for item in items) if group]
    assert [g.finding.disclosure for g in left] == ["AuditEvent/ae-1", "AuditEvent/ae-2"]
    assert [w.kind for w in left[0].writes] == [Kind.FINDING_NOTE, Kind.DOCUMENTATION_DRAFT,
                                                Kind.TASK]
    assert left[1] == full[2]
    assert left[0] == without(full[1], present)
    bundle = transaction(left, CONTEXT)
    provenances = [e["resource"] for e in bundle["entry"]
                   if e["resource"]["resourceType"] == "Provenance"]
    assert [len(p["target"]) for p in provenances] == [3 + 1, 4 + 1]  # and the patient


def test_known_device_is_referenced_not_created():
    context = replace(CONTEXT, device="Device/app-1")
    bundle = transaction([plan(finding(), context)], context)
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "Device" not in types
    alert = bundle["entry"][0]["resource"]
    assert alert["sender"] == {"reference": "Device/app-1"}


def test_alert_priority_recipients_and_about():
    alerts = {
        decision: by_kind(plan(finding(decision=decision), CONTEXT))[Kind.ALERT].resource
        for decision in (Decision.UNAUTHORIZED, Decision.REVIEW)
    }
    assert alerts[Decision.UNAUTHORIZED]["priority"] == "urgent"
    assert alerts[Decision.REVIEW]["priority"] == "routine"
    alert = alerts[Decision.UNAUTHORIZED]
    assert alert["status"] == "completed"
    assert alert["category"][0]["coding"][0]["code"] == "alert"
    assert alert["about"] == [{"reference": "AuditEvent/ae-1"}]
    assert alert["recipient"] == [
        {"reference": "Practitioner/po-1"},
        {"reference": "Practitioner/pr-1"},
    ]


def test_the_alert_names_the_recipient_says_the_next_step_and_links_the_finding_note():
    from dataclasses import replace

    from consent_gap.wording import notes
    from consent_gap.writeback import FINDING_SYSTEM, identifier_value

    found = finding()
    named = replace(CONTEXT, names={found.recipient: "Harbor Legal Group"})
    writes = by_kind(plan(found, named))
    alert = writes[Kind.ALERT].resource
    text = alert["payload"][0]["contentString"]
    assert "to Harbor Legal Group" in text and notes.ALERT_NEXT_STEP in text
    link = alert["payload"][1]["contentReference"]
    assert link["identifier"] == {"system": FINDING_SYSTEM,
                                  "value": identifier_value(found, Kind.FINDING_NOTE)}
    assert writes[Kind.FINDING_NOTE].resource["identifier"][0] == link["identifier"]
    import base64
    note = base64.b64decode(
        writes[Kind.FINDING_NOTE].resource["content"][0]["attachment"]["data"]).decode()
    assert "Recipient: Harbor Legal Group\n" in note
    assert found.recipient not in note and found.recipient not in text
    # without the names, the alert says so in words, never by id and never nobody
    plain = by_kind(plan(found, CONTEXT))[Kind.ALERT].resource["payload"][0]["contentString"]
    assert "to a recipient the record does not name" in plain
    assert found.recipient not in plain


def test_finding_note_explains_each_consent_and_next_steps():
    note = by_kind(plan(finding(), CONTEXT))[Kind.FINDING_NOTE].resource
    assert note["status"] == "current"
    assert note["docStatus"] == "final"
    assert note["type"]["coding"][0] == {
        "system": "https://consent-gap.dev/fhir/CodeSystem/document-type",
        "code": "finding-note",
        "display": "consent-gap finding note",
    }
    assert note["context"]["related"] == [
        {"reference": "AuditEvent/ae-1"},
        {"reference": "Consent/c-1"},
    ]
    assert note["custodian"] == {"reference": "Organization/org-1"}
    text = text_of(note)
    assert "an authorization on file: the authorization had expired (`authorization-expired`)" \
        in text
    assert "a record the disclosure log does not describe" in text
    assert "a recipient the record does not name" in text
    for reference in ("Consent/c-1", "DocumentReference/note-1", "Organization/police-1",
                      "AuditEvent/ae-1", "Patient/"):
        assert reference not in text  # the ids are in context.related, not the prose
    named = text_of(by_kind(plan(finding(), replace(CONTEXT, names={
        "Consent/c-1": "the authorization signed on 2025-01-02",
        "DocumentReference/note-1": "Progress note: Session 3",
        "Organization/police-1": "Alden Valley Police"})))[Kind.FINDING_NOTE].resource)
    assert ("the authorization signed on 2025-01-02: the authorization had expired "
            "(`authorization-expired`)") in named
    assert "- Progress note: Session 3" in named
    assert "sent to Alden Valley Police on" in named
    assert "breach risk assessment" in text
    assert "164.402" in text
    assert "A subpoena alone does not permit this disclosure." in text


def test_finding_note_without_consents_says_so():
    note = by_kind(plan(finding(consents_checked=(), disclosed=()), CONTEXT))[Kind.FINDING_NOTE]
    text = text_of(note.resource)
    assert "none: no Consent on file" in text
    assert "not recorded in the disclosure log" in text


def test_draft_holds_the_five_elements_and_marks_what_to_complete():
    item = finding(
        decision=Decision.REQUIRED,
        basis="duty-to-warn-or-protect",
        reasons=(),
        purposes=("THREAT",),
        documentation=Documentation.MISSING,
        client_notice=ClientNotice.SENT,
    )
    draft = by_kind(plan(item, CONTEXT))[Kind.DOCUMENTATION_DRAFT].resource
    assert draft["docStatus"] == "preliminary"
    assert draft["status"] == "current"
    assert draft["type"]["coding"][0]["system"] == "http://loinc.org"
    assert draft["type"]["coding"][0]["code"] == "11506-3"
    assert draft["context"]["related"] == [{"reference": "AuditEvent/ae-1"}]
    text = text_of(draft)
    for heading in (
        "Nature of the threat or situation",
        "Who was informed and why",
        "How the client responded",
        "Supporting evidence or consultations",
        "Steps taken to minimise harm",
    ):
        assert heading in text
    assert text.count(TO_COMPLETE) >= 5
    assert "to prevent or lessen a serious threat" in text  # THREAT in words
    assert "state law imposes a duty to warn or protect" in text  # the basis in words
    assert "a recipient the record does not name" in text
    assert "the client was told" in text
    assert "Legal instrument: a legal request on file" in text
    for code_or_id in ("THREAT", "duty-to-warn-or-protect", "Organization/", "AuditEvent/",
                       "DocumentReference/", "Consent/"):
        assert code_or_id not in text
    named = text_of(by_kind(plan(item, replace(CONTEXT, names={
        "Organization/police-1": "Alden Valley Police",
        "DocumentReference/subpoena-1": "Subpoena: Smith v. Jones"})))[
            Kind.DOCUMENTATION_DRAFT].resource)
    assert "Recipient: Alden Valley Police;" in named
    assert "Legal instrument: Subpoena: Smith v. Jones" in named


def test_reminder_goes_to_the_people_to_notify_or_the_privacy_officer():
    item = finding(decision=Decision.PERMITTED, reasons=(), client_notice=ClientNotice.MISSING)
    reminder = by_kind(plan(item, CONTEXT))[Kind.NOTICE_REMINDER].resource
    assert reminder["category"][0]["coding"][0]["code"] == "reminder"
    assert reminder["status"] == "completed"
    assert reminder["about"] == [{"reference": "AuditEvent/ae-1"}]
    assert reminder["recipient"] == [{"reference": "Practitioner/pr-1"}]
    nobody = by_kind(plan(replace(item, notify=()), CONTEXT))[Kind.NOTICE_REMINDER].resource
    assert nobody["recipient"] == [{"reference": "Practitioner/po-1"}]


def test_no_patient_means_no_subject_and_still_valid():
    writes = plan(finding(patient=None), WriteContext(now=NOW))
    for write in writes.writes:
        assert "subject" not in write.resource
        assert "custodian" not in write.resource


def test_invalid_resource_is_refused():
    with pytest.raises(WritebackError, match="Communication does not validate"):
        validate({"resourceType": "Communication", "status": "completed", "bogus": 1})
    with pytest.raises(WritebackError, match="no model"):
        validate({"resourceType": "Patient"})


def test_several_findings_share_one_device_entry():
    groups = [plan(finding(disclosure=f"AuditEvent/ae-{n}"), CONTEXT) for n in range(3)]
    bundle = transaction(groups, CONTEXT)
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types.count("Device") == 1
    assert types.count("Provenance") == 3
    assert len(types) == 1 + 3 * 3 + 3  # per finding: alert, note, Task and one Provenance


def _answers(*statuses: tuple[str, str]) -> dict:
    return {"resourceType": "Bundle", "type": "transaction-response",
            "entry": [{"response": {"status": status, "location": location}}
                      for status, location in statuses]}


def test_read_response_says_per_write_what_was_created_and_what_existed():
    groups = [plan(finding(), WriteContext(now=NOW))]  # alert + finding note, Device inline
    response = _answers(
        ("200 OK", "Device/7/_history/1"),
        ("201 Created", "Communication/8/_history/1"),
        ("200 OK", "DocumentReference/5/_history/2"),
        ("201 Created", "Task/4/_history/1"),
        ("201 Created", "http://ehr.example/fhir/Provenance/9/_history/1"),
    )
    outcome = read_response(response, groups, WriteContext(now=NOW))
    assert [(r.write.kind, r.status, r.reference) for r in outcome.writes] == [
        (Kind.ALERT, WriteStatus.CREATED, "Communication/8"),
        (Kind.FINDING_NOTE, WriteStatus.EXISTING, "DocumentReference/5"),
        (Kind.TASK, WriteStatus.CREATED, "Task/4"),
    ]
    assert {w.provenance.reference for w in outcome.writes} == {"Provenance/9"}
    assert outcome.device == EntryResult("Device", WriteStatus.EXISTING, "Device/7")
    assert outcome.created == {"Communication": 1, "Provenance": 1, "Task": 1}
    assert outcome.matched == {"Device": 1, "DocumentReference": 1}
    assert outcome.created_total == 3 and outcome.failed == {}


def test_read_response_without_inline_device_and_with_failures():
    """With the Device ensured by the caller the writes start at the first entry; an error
    status, or an entry the server did not answer, is a failed write."""
    context = WriteContext(device="Device/app", now=NOW)
    groups = [plan(finding(), context)]
    response = _answers(("201 Created", "Communication/8"),
                        ("201 Created", "DocumentReference/5"),
                        ("422 Unprocessable Entity", ""))
    outcome = read_response(response, groups, context)
    assert outcome.device is None
    alert, note, task = outcome.writes
    assert task.status == WriteStatus.FAILED  # not answered
    assert alert.resource.status == WriteStatus.CREATED
    assert alert.status == WriteStatus.FAILED  # its Provenance was refused
    assert note.reference == "DocumentReference/5"
    assert note.provenance == EntryResult("Provenance", WriteStatus.FAILED)
    assert note.status == WriteStatus.FAILED
    assert outcome.failed == {"Provenance": 1, "Task": 1}

    short = read_response(_answers(("201 Created", "Communication/8")), groups, context)
    assert [w.status for w in short.writes] == [WriteStatus.FAILED] * 3  # no answer: failed


def test_read_response_reads_the_layout_transaction_wrote():
    """The reader and the builder agree on the Bundle's layout for several findings."""
    groups = [plan(finding(disclosure=f"AuditEvent/ae-{n}"), CONTEXT) for n in range(3)]
    bundle = transaction(groups, CONTEXT)
    response = _answers(*[("201 Created", f"{e['request']['url']}/{n}")
                          for n, e in enumerate(bundle["entry"])])
    outcome = read_response(response, groups, CONTEXT)
    expected = [f"{e['request']['url']}/{n}" for n, e in enumerate(bundle["entry"])]
    got = [outcome.device.reference]
    for group in groups:
        results = [w for w in outcome.writes if w.write in group.writes]
        got += [w.reference for w in results] + [results[0].provenance.reference]
    assert got == expected
    assert [p.reference for p in outcome.provenances] == [
        ref for ref in expected if ref.startswith("Provenance/")]
    assert [w.write for w in outcome.writes] == [w for g in groups for w in g.writes]


@pytest.mark.parametrize(
    "changes",
    [{}, {"decision": Decision.REVIEW},
     {"decision": Decision.REQUIRED, "documentation": Documentation.MISSING,
      "client_notice": ClientNotice.MISSING},
     {"decision": Decision.AUTHORIZED, "reasons": ()}],
)
def test_preview_is_what_plan_would_write(changes):
    item = finding(**changes)
    assert preview(item) == plan(item, CONTEXT).describe()
    assert preview(item, "2030.1") == plan(item, replace(CONTEXT, ruleset="2030.1")).describe()
    assert preview(item, "2030.1") == preview(item)


def test_describe_lists_identifiers_without_text():
    rows = plan(finding(), CONTEXT).describe()
    assert [row["kind"] for row in rows] == ["alert", "finding-note", "task", "provenance"]
    assert all(row["identifier"].startswith(FINDING_SYSTEM + "|") for row in rows[:3])
    key = plan(finding(), CONTEXT).provenance_key
    assert rows[3]["identifier"] == f"{PROVENANCE_TAG_SYSTEM}|{key}"
    assert "subpoena" not in str(rows)


def test_preview_leaves_out_what_is_on_the_server():
    """The dry run lists what the real run would write: nothing already there, and the
    Provenance over the rest."""
    item = finding(documentation=Documentation.MISSING)
    group = plan(item, CONTEXT)
    on_server = {group.writes[0].value}
    assert preview(item, present=on_server) == without(group, on_server).describe()
    assert preview(item, present={w.value for w in group.writes}) == []


def test_look_ups_name_the_patient_when_asked():
    """The panel's token is patient-scoped: its searches must name the launch patient."""
    ((rtype, params),) = existing_searches([("Communication", "v1")], patient="Patient/p-1")
    assert rtype == "Communication" and ("patient", "Patient/p-1") in params
    assert "_elements" not in dict(params)  # the server checks the compartment of each
    ((_, params),) = existing_searches([("Communication", "v1")])
    assert all(name != "patient" for name, _ in params)
    assert ("_elements", "identifier,sent") in params


def test_nothing_sent_reads_as_nothing_done():
    """When everything was on the server already, transaction() sends nothing; reading the
    (absent) answer says nothing was created and nothing failed."""
    empty = without(plan(finding(), CONTEXT), {w.value for w in plan(finding(), CONTEXT).writes})
    assert transaction([empty], CONTEXT) is None
    outcome = read_response({}, [empty], CONTEXT)
    assert outcome.writes == () and outcome.failed == {} and outcome.created == {}
