"""CONTRACT 6.3 and 6.5: what recording a proposal and drafting / signing an authorization
write; every resource valid R4 (fhir.resources.R4B), the AuditEvent shaped as BALP
PrivacyDisclosure.Source fixes it, and the chart decided afterwards as the check said."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime

import pytest
from consent_gap import writeback
from consent_gap.evaluate import evaluator
from consent_gap.mappings import load_rules
from consent_gap.proposal import Recipient, check, read_proposal
from consent_gap.writeback import urn
from consent_gap.writeback.consents import (
    SIGNATURE_TYPE,
    default_expiry,
    draft_consent,
    draft_transaction,
    sign,
    signature_png,
)
from consent_gap.writeback.records import (
    PROPOSAL_SYSTEM,
    RecordError,
    RecordRequest,
    plan_record,
    read_record_response,
    recipient_reference,
    record_transaction,
)
from support.fhir import DATA, PATIENT, RECIPIENT, bundle, instrument, world

RULES = load_rules()
NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
CLINICIAN = "Practitioner/pr-src"
PID = "0b9e7c5e-2f51-4b7e-8a55-0f3c1d0e9a11"
FIVE = {"nature": "Threat to harm a neighbour, with a plan.",
        "informed": "Police and the neighbour, to protect her.",
        "client_response": "Angry, then agreed to a safety plan.",
        "evidence": "Risk assessment; consulted the supervisor.",
        "harm_minimised": "Told only the threat; safety plan; follow-up tomorrow."}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def checked(proposal: dict, *extra, jurisdiction=None):
    decide = evaluator(jurisdiction, rules=RULES)
    chart = bundle(world(*extra))
    read = read_proposal({"patient": PATIENT, "at": "2025-06-01T10:00:00Z",
                          "recipient": {"reference": RECIPIENT},
                          "data": [{"reference": DATA}], **proposal}, RULES, now=NOW)
    return chart, read, check(chart, read, decide, rules=RULES, place=decide.place), decide


def planned(answer, read, **request):
    req = RecordRequest(proposal=read, proposal_id=PID, **request)
    return plan_record(req, answer.finding, answer.step_codes, now=NOW, clinician=CLINICIAN,
                       privacy_officer="Practitioner/po-1")


def applied(chart: dict, transaction: dict) -> dict:
    """What a server holds after the transaction: each entry given an id, urn references
    rewritten to them (as FHIR transaction processing does)."""
    ids = {}
    for i, entry in enumerate(transaction["entry"]):
        resource = entry["resource"]
        if entry["request"]["method"] == "POST":
            ids[entry["fullUrl"]] = f"{resource['resourceType']}/w{i}"
    text = json.dumps([e["resource"] for e in transaction["entry"]])
    for url, ref in ids.items():
        text = text.replace(url, ref)
    written = json.loads(text)
    for (_url, ref), resource in zip(ids.items(), written, strict=False):
        resource["id"] = ref.split("/")[1]
    out = copy.deepcopy(chart)
    out["entry"] += [{"resource": r} for r in written]
    return out


def test_the_audit_event_has_what_balp_privacy_disclosure_source_fixes():
    _, read, answer, _ = checked({"scenario": "threat-to-person"}, jurisdiction="US-CA")
    writes = planned(answer, read, documentation=FIVE, notice="sent")
    event = writes[0].resource
    assert event["resourceType"] == "AuditEvent"
    assert event["type"] == {"system": "http://dicom.nema.org/resources/ontology/DCM",
                             "code": "110106", "display": "Export"}
    assert {"system": "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle",
            "code": "disclose", "display": "Disclose"} in event["subtype"]
    assert event["action"] == "R" and event["outcome"] == "0"
    assert event["period"]["start"] == "2025-06-01T10:00:00Z"
    assert event["recorded"] == "2025-06-01T12:00:00Z"
    roles = {a["type"]["coding"][0]["code"]: a for a in event["agent"]}
    assert roles["110152"]["who"] == {"reference": RECIPIENT}
    assert roles["110152"]["requestor"] is False
    assert roles["110153"]["who"] == {"reference": CLINICIAN}
    assert roles["110153"]["requestor"] is True
    assert event["source"]["observer"]["reference"].startswith("urn:uuid:")
    patient = event["entity"][0]
    assert patient["what"] == {"reference": PATIENT}
    assert patient["type"]["code"] == "1" and patient["role"]["code"] == "1"
    assert event["entity"][1]["what"] == {"reference": DATA}
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "THREAT"
    from fhir.resources.R4B.auditevent import AuditEvent
    AuditEvent.model_validate(event)


def test_a_threat_in_california_records_five_elements_and_notice_then_evaluates_present_sent():
    chart, read, answer, decide = checked({"scenario": "threat-to-person"},
                                          jurisdiction="US-CA")
    writes = planned(answer, read, documentation=FIVE, notice="sent")
    assert [w.kind for w in writes] == ["audit-event", "documentation", "client-notice"]
    note = writes[1].resource
    assert note["docStatus"] == "final" and note["type"]["coding"][0]["code"] == "11506-3"
    assert note["meta"]["tag"] == [{"system": "https://consent-gap.dev/fhir/tag",
                                    "code": "recorded-by-clinician",
                                    "display": "recorded by a clinician with consent-gap"}]
    assert note["content"][0]["attachment"]["contentType"] == "text/plain"
    assert note["author"] == [{"reference": CLINICIAN}]
    assert note["context"]["related"] == [{"reference": writes[0].full_url}]
    assert note["status"] == "current" and note["subject"] == {"reference": PATIENT}
    notice = writes[2].resource
    assert (notice["status"], notice["recipient"], notice["about"]) == (
        "completed", [{"reference": PATIENT}], [{"reference": writes[0].full_url}])
    assert "sent" in notice and notice["payload"][0]["contentString"]
    text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
    for heading in ("Nature of the threat or situation", "Who was informed and why",
                    "How the client responded", "Supporting evidence or consultations",
                    "Steps taken to minimise harm"):
        assert heading in text
    assert FIVE["harm_minimised"] in text
    for w in writes:
        # the record, then the patient: a strict EHR's patient compartment
        assert w.provenance["target"] == [{"reference": w.full_url}, {"reference": PATIENT}]
        assert w.provenance["activity"]["coding"][0]["code"] == "CREATE"
        codes = [a["type"]["coding"][0]["code"] for a in w.provenance["agent"]]
        assert codes == ["author", "assembler"]
    after = applied(chart, record_transaction(writes))
    findings = [f for f in decide(after).findings if f.disclosure == "AuditEvent/w1"]
    assert len(findings) == 1
    got = findings[0]
    assert (got.decision, got.basis) == (answer.finding.decision, answer.finding.basis)
    assert got.reasons == answer.finding.reasons
    assert (got.documentation, got.client_notice) == ("present", "sent")


@pytest.mark.parametrize(("notice", "reason", "want"),
                         [("withheld", "He would be at risk.", "withheld"), ("later", None,
                                                                               "missing")])
def test_a_withheld_or_later_notice(notice, reason, want):
    chart, read, answer, decide = checked({"scenario": "threat-to-person"},
                                          jurisdiction="US-CA")
    writes = planned(answer, read, documentation=FIVE, notice=notice, notice_reason=reason)
    after = applied(chart, record_transaction(writes))
    got = next(f for f in decide(after).findings if f.disclosure == "AuditEvent/w1")
    assert got.client_notice == want


def test_a_withheld_notice_needs_its_reason():
    _, read, answer, _ = checked({"scenario": "threat-to-person"}, jurisdiction="US-CA")
    with pytest.raises(RecordError, match=r"^client_notice.reason"):
        planned(answer, read, documentation=FIVE, notice="withheld")


@pytest.mark.parametrize("missing", [["nature"], ["evidence", "harm_minimised"], list(FIVE)])
def test_all_five_elements_are_required_naming_the_missing(missing):
    _, read, answer, _ = checked({"scenario": "threat-to-person"}, jurisdiction="US-CA")
    given = {k: ("  " if k in missing else v) for k, v in FIVE.items()}
    with pytest.raises(RecordError) as error:
        planned(answer, read, documentation=given, notice="sent")
    assert str(error.value) == f"documentation: missing {', '.join(missing)}"


def test_no_documentation_where_the_steps_do_not_hold_document():
    _, read, answer, _ = checked({"scenario": "treatment-coordination"})
    writes = planned(answer, read)
    assert [w.kind for w in writes] == ["audit-event"]


def test_an_unauthorized_answer_needs_the_acknowledgement_then_writes_the_alerts():
    sub = instrument("DocumentReference/sub", "subpoena")
    chart, read, answer, decide = checked({"scenario": "subpoena",
                                           "instruments": ["DocumentReference/sub"]}, sub)
    assert answer.finding.decision == "unauthorized"
    with pytest.raises(RecordError, match=r"^acknowledge_unauthorized"):
        planned(answer, read)
    writes = planned(answer, read, acknowledge_unauthorized=True)
    assert [w.kind for w in writes] == ["audit-event", "alerts"]
    group = writes[1].group
    assert [str(w.kind) for w in group.writes] == ["alert", "finding-note", "task"]
    alert = group.writes[0].resource
    assert alert["priority"] == "urgent"
    assert alert["about"] == [{"reference": writes[0].full_url}]
    assert {"reference": "Practitioner/po-1"} in alert["recipient"]
    task = group.writes[2].resource
    assert task["focus"] == {"reference": writes[0].full_url}
    assert task["reasonReference"] == {"reference": group.writes[1].full_url}
    assert task["for"] == {"reference": PATIENT}
    proof = writes[1].entries()[-1]["resource"]  # the group's one Provenance, in the compartment
    assert proof["target"] == [{"reference": w.full_url} for w in group.writes] + [
        {"reference": PATIENT}]
    after = applied(chart, record_transaction(writes))
    got = next(f for f in decide(after).findings if f.disclosure == "AuditEvent/w1")
    assert got.decision == "unauthorized"


def test_the_scan_of_a_recorded_unauthorized_disclosure_matches_what_the_record_wrote():
    """CONTRACT 5: the alert, note and Task the record wrote carry the identifiers the scan
    computes for the recorded AuditEvent (keyed by its business identifier, not its server
    id), with the same Provenance tags: the scan's conditional creates match, nothing twice."""
    sub = instrument("DocumentReference/sub", "subpoena")
    chart, read, answer, decide = checked({"scenario": "subpoena",
                                           "instruments": ["DocumentReference/sub"]}, sub)
    writes = planned(answer, read, acknowledge_unauthorized=True)
    after = applied(chart, record_transaction(writes))
    got = next(f for f in decide(after).findings if f.disclosure == "AuditEvent/w1")
    assert got.key == got.identity == f"{PROPOSAL_SYSTEM}|{PID}-audit-event"
    context = writeback.WriteContext(privacy_officer="Practitioner/po-1")
    kinds = ("alert", "finding-note", "task")
    scan = writeback.FindingWrites(got, tuple(
        w for w in writeback.plan(got, context).writes if w.kind in kinds))
    assert [str(w.kind) for w in scan.writes] == list(kinds)
    recorded = writes[-1]
    assert [e["request"] for e in recorded.entries()] == [
        e["request"] for e in scan.entries(context)]  # same identifiers, same Provenance key
    # and the server holds them: every identifier the scan looks up is in the applied chart
    held = {i.get("value") for e in after["entry"] for i in e["resource"].get("identifier", [])}
    assert {w.value for w in scan.writes} <= held


def test_without_task_create_the_record_writes_the_alerts_but_no_task():
    sub = instrument("DocumentReference/sub", "subpoena")
    _, read, answer, _ = checked({"scenario": "subpoena",
                                  "instruments": ["DocumentReference/sub"]}, sub)
    req = RecordRequest(proposal=read, proposal_id=PID, acknowledge_unauthorized=True)
    writes = plan_record(req, answer.finding, answer.step_codes, now=NOW, clinician=CLINICIAN,
                         privacy_officer="Practitioner/po-1", task=False)
    assert [w.kind for w in writes] == ["audit-event", "alerts"]
    assert [str(w.kind) for w in writes[1].group.writes] == ["alert", "finding-note"]


def test_the_same_proposal_id_gives_the_same_conditional_creates():
    _, read, answer, _ = checked({"scenario": "threat-to-person"}, jurisdiction="US-CA")
    first = record_transaction(planned(answer, read, documentation=FIVE, notice="sent"))
    again = record_transaction(planned(answer, read, documentation=FIVE, notice="sent"))
    assert [e["request"] for e in first["entry"]] == [e["request"] for e in again["entry"]]
    conditions = [e["request"]["ifNoneExist"] for e in first["entry"]]
    assert conditions[1] == f"_tag={PROPOSAL_SYSTEM}|{PID}-audit-event&patient={PATIENT}"
    assert conditions[3] == f"identifier={PROPOSAL_SYSTEM}|{PID}-documentation&patient={PATIENT}"
    assert conditions[2] == f"_tag={PROPOSAL_SYSTEM}|{PID}-audit-event-provenance"
    assert all(e["request"]["method"] == "POST" for e in first["entry"])


def test_the_answer_to_the_record_is_read_write_by_write():
    _, read, answer, _ = checked({"scenario": "threat-to-person"}, jurisdiction="US-CA")
    writes = planned(answer, read, documentation=FIVE, notice="sent")
    response = {"entry": [{"response": {"status": "200 OK", "location": "Device/d1/_history/1"}}]
                + [{"response": {"status": "201 Created",
                                 "location": f"{w}/x{i}/_history/1"}}
                   for i, w in enumerate(["AuditEvent", "Provenance", "DocumentReference",
                                          "Provenance", "Communication", "Provenance"])]}
    result = read_record_response(response, writes)
    assert not result.failed and result.created
    assert result.references() == {"audit-event": "AuditEvent/x0",
                                   "documentation": "DocumentReference/x2",
                                   "client-notice": "Communication/x4"}
    response["entry"][3]["response"] = {"status": "400 Bad Request"}
    assert read_record_response(response, writes).failed


# ------------------------------------------------------------------------- 6.5

def test_draft_sign_and_check_again_authorized():
    chart, read, answer, decide = checked({"scenario": "client-request"})
    assert answer.finding.decision == "unauthorized" and answer.can_draft_authorization
    draft = draft_consent(read, PID, expires=default_expiry(read.at), now=NOW,
                          organization="Organization/practice", clinician=CLINICIAN)
    consent = draft.resource
    assert consent["status"] == "proposed"
    assert "sourceAttachment" not in consent and "sourceReference" not in consent
    assert consent["provision"]["period"] == {"start": "2025-06-01T10:00:00Z",
                                              "end": "2026-06-01T10:00:00Z"}
    assert consent["provision"]["actor"][0]["reference"] == {"reference": RECIPIENT}
    assert consent["provision"]["actor"][0]["role"]["coding"][0]["code"] == "IRCP"
    assert consent["performer"] == [{"reference": PATIENT}]
    assert consent["organization"] == [{"reference": "Organization/practice"}]
    drafted = applied(chart, draft_transaction(draft))
    # drafted, not signed: the check still says no (an unsigned form never counts)
    again = check(drafted, read, decide, rules=RULES)
    assert again.finding.decision == "unauthorized"
    stored = next(e["resource"] for e in drafted["entry"]
                  if e["resource"]["resourceType"] == "Consent")
    stored["meta"] = {**stored.get("meta", {}), "versionId": "1"}
    signing = sign(stored, signer=PATIENT, png=PNG, now=NOW, clinician=CLINICIAN)
    tx = signing.transaction()
    assert tx["entry"][2]["request"] == {"method": "PUT", "url": f"Consent/{stored['id']}",
                                         "ifMatch": 'W/"1"'}
    sig = signing.provenance["signature"][0]
    assert sig["type"] == [SIGNATURE_TYPE] and sig["sigFormat"] == "image/png"
    assert base64.b64decode(sig["data"]) == PNG
    assert signing.consent["status"] == "active"
    signed = copy.deepcopy(drafted)
    for entry in signed["entry"]:
        if entry["resource"].get("id") == stored["id"]:
            entry["resource"] = signing.consent
    signed["entry"].append({"resource": {**signing.provenance, "id": "sig1"}})
    # the same proposal checked again after signing (its `at` the new now: a disclosure
    # before the signature would not be covered, check 4)
    later = read_proposal({"patient": PATIENT, "scenario": "client-request",
                           "recipient": {"reference": RECIPIENT},
                           "data": [{"reference": DATA}]}, RULES,
                          now=datetime(2025, 6, 1, 12, 5, tzinfo=UTC))
    final = check(signed, later, decide, rules=RULES)
    assert final.finding.decision == "authorized", final.finding.reasons
    assert final.finding.basis == f"Consent/{stored['id']}"


def test_special_labels_and_part2_policy_in_the_draft():
    labels = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "42CFRPart2"}]
    _, read, _, _ = checked({"purposes": ["PATRQT"], "data": [{"labels": labels}]})
    consent = draft_consent(read, PID, expires=default_expiry(read.at), now=NOW).resource
    assert consent["provision"]["securityLabel"] == labels
    assert consent["policy"][0]["uri"].startswith("https://www.ecfr.gov/current/title-42")
    plain = draft_consent(checked({"purposes": ["PATRQT"]})[1], PID,
                          expires=default_expiry(read.at), now=NOW).resource
    assert "securityLabel" not in plain["provision"] and "policy" not in plain


def test_a_psychotherapy_note_from_the_chart_is_authorized_once_signed():
    """The note carries PSYTHPN and MH: the draft lists both (check 9), and covers it."""
    from support.fhir import document

    note = document("DocumentReference/psy1", labels=("PSYTHPN", "MH"))
    chart, read, answer, decide = checked(
        {"purposes": ["PATRQT"], "data": [{"reference": "DocumentReference/psy1"}]}, note)
    assert answer.can_draft_authorization
    draft = draft_consent(read, PID, expires=default_expiry(read.at), now=NOW,
                          labels=answer.disclosed_labels)
    listed = {c["code"] for c in draft.resource["provision"]["securityLabel"]}
    assert listed == {"PSYTHPN", "MH"}
    signed = applied(chart, draft_transaction(draft))
    consent = next(e["resource"] for e in signed["entry"]
                   if e["resource"]["resourceType"] == "Consent")
    signing = sign({**consent, "meta": {"versionId": "1"}}, signer=PATIENT, png=PNG,
                   now=datetime(2025, 6, 1, 10, 30, tzinfo=UTC))
    for entry in signed["entry"]:
        if entry["resource"].get("id") == consent["id"]:
            entry["resource"] = signing.consent
    signed["entry"].append({"resource": {**signing.provenance, "id": "sig9"}})
    later = read_proposal({"patient": PATIENT, "purposes": ["PATRQT"],
                           "recipient": {"reference": RECIPIENT},
                           "data": [{"reference": "DocumentReference/psy1"}]}, RULES,
                          now=datetime(2025, 6, 1, 11, tzinfo=UTC))
    final = check(signed, later, decide, rules=RULES)
    assert final.finding.decision == "authorized", final.finding.reasons


@pytest.mark.parametrize(("change", "message"), [
    ({"status": "active"}, "consent: is active"),
    ({"identifier": []}, "consent: was not drafted by consent-gap"),
])
def test_sign_refuses_what_is_not_a_draft_of_ours(change, message):
    _, read, _, _ = checked({"scenario": "client-request"})
    consent = {**draft_consent(read, PID, expires=default_expiry(read.at), now=NOW).resource,
               "id": "c1", "meta": {"versionId": "1"}, **change}
    with pytest.raises(RecordError, match=f"^{message}"):
        sign(consent, signer=PATIENT, png=PNG, now=NOW)


def test_sign_refuses_another_signer_and_a_non_png():
    _, read, _, _ = checked({"scenario": "client-request"})
    consent = {**draft_consent(read, PID, expires=default_expiry(read.at), now=NOW).resource,
               "id": "c1", "meta": {"versionId": "1"}}
    with pytest.raises(RecordError, match=r"^signer:"):
        sign(consent, signer="RelatedPerson/someone", png=PNG, now=NOW)
    with pytest.raises(RecordError, match=r"^signature: must be a PNG"):
        signature_png(base64.b64encode(b"GIF89a....").decode())
    assert signature_png("data:image/png;base64," + base64.b64encode(PNG).decode()) == PNG


def test_urn_targets_match_full_urls():
    _, read, answer, _ = checked({"scenario": "treatment-coordination"})
    write = planned(answer, read)[0]
    assert write.full_url == urn(f"{PROPOSAL_SYSTEM}|{PID}-audit-event")


def test_every_resource_written_validates_as_r4b():
    """Each resource of every transaction 6.3 and 6.5 write, through fhir.resources.R4B."""
    import importlib

    sub = instrument("DocumentReference/sub", "subpoena")
    bundles = []
    _, read, answer, _ = checked({"scenario": "threat-to-person"}, jurisdiction="US-CA")
    bundles.append(record_transaction(planned(answer, read, documentation=FIVE,
                                              notice="withheld", notice_reason="unsafe")))
    _, read, answer, _ = checked({"scenario": "subpoena",
                                  "instruments": ["DocumentReference/sub"]}, sub)
    bundles.append(record_transaction(planned(answer, read, acknowledge_unauthorized=True)))
    _, read, answer, _ = checked({"scenario": "client-request"})
    draft = draft_consent(read, PID, expires=default_expiry(read.at), now=NOW,
                          description="Progress note, 2025-05-01")
    bundles.append(draft_transaction(draft))
    consent = {**draft.resource, "id": "c1", "meta": {"versionId": "1"}}
    bundles.append(sign(consent, signer=PATIENT, png=PNG, now=NOW).transaction())
    seen = set()
    for tx in bundles:
        for entry in tx["entry"]:
            resource = entry["resource"]
            kind = resource["resourceType"]
            module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
            getattr(module, kind).model_validate(resource)
            seen.add(kind)
    assert seen == {"Device", "AuditEvent", "Provenance", "DocumentReference", "Communication",
                    "Consent", "Task"}


def test_a_review_keeps_the_ethic_answers_in_a_note_of_the_record():
    _, read, answer, _ = checked({"purposes": ["GOV"]})
    assert answer.finding.decision == "review"
    ethic = {"evaluate": "The agency's letter cites no statute.", "consult": "Counsel: wait."}
    writes = planned(answer, read, ethic=ethic)
    assert [w.kind for w in writes] == ["audit-event", "deliberation"]
    note = writes[1].resource
    text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
    assert "Deliberation (ETHIC)" in text and ethic["evaluate"] in text
    assert "Think through consequences\n(not answered)" in text
    assert note["context"]["related"] == [{"reference": writes[0].full_url}]
    assert [w.kind for w in planned(answer, read)] == ["audit-event"]  # nothing to keep


def test_signing_never_overwrites_an_edited_draft():
    _, read, _, _ = checked({"scenario": "client-request"})
    consent = {**draft_consent(read, PID, expires=default_expiry(read.at), now=NOW).resource,
               "id": "c1", "meta": {"versionId": "2"}}
    with pytest.raises(RecordError, match=r"^version: the authorization changed"):
        sign(consent, signer=PATIENT, png=PNG, now=NOW)
    named = sign(consent, signer=PATIENT, png=PNG, now=NOW, version="1")
    assert named.transaction()["entry"][2]["request"]["ifMatch"] == 'W/"1"'  # then 412


def test_a_disclosure_without_the_business_identifier_keeps_its_reference_keyed_values():
    """Existing installs: the identifiers written for a disclosure the guide did not record
    stay the hash of its reference (changing them would re-alert every finding once)."""
    import hashlib

    sub = instrument("DocumentReference/sub", "subpoena")
    _, _, answer, _ = checked({"scenario": "subpoena",
                               "instruments": ["DocumentReference/sub"]}, sub)
    finding = answer.finding
    assert finding.identity is None and finding.key == finding.disclosure
    legacy = hashlib.sha256(f"{finding.disclosure}\nalert\nunauthorized".encode()).hexdigest()
    assert writeback.identifier_value(finding, writeback.Kind.ALERT) == legacy[:32]


def test_with_the_registered_device_the_record_names_it_and_creates_no_device():
    """A strict EHR refuses a Device to patient/ scopes: the record names the Device the scan
    registered, and reads the answer without a Device entry first."""
    sub = instrument("DocumentReference/sub", "subpoena")
    _, read, answer, _ = checked({"scenario": "subpoena",
                                  "instruments": ["DocumentReference/sub"]}, sub)
    req = RecordRequest(proposal=read, proposal_id=PID, acknowledge_unauthorized=True)
    writes = plan_record(req, answer.finding, answer.step_codes, now=NOW, clinician=CLINICIAN,
                         privacy_officer="Practitioner/po-1", device="Device/app")
    bundle = record_transaction(writes, "Device/app")
    assert "Device" not in {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert "Device/app" in json.dumps(bundle) and "consent-gap.dev/fhir/device" not in json.dumps(
        [e["resource"] for e in bundle["entry"]])
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Provenance":
            assert {"reference": PATIENT} in entry["resource"]["target"]
    answers = {"resourceType": "Bundle", "entry": [
        {"response": {"status": "201 Created",
                      "location": f"{e['resource']['resourceType']}/{i}/_history/1"}}
        for i, e in enumerate(bundle["entry"])]}
    result = read_record_response(answers, writes, "Device/app")
    assert not result.failed and result.references()["audit-event"] == "AuditEvent/0"


@pytest.mark.parametrize(("given", "who"), [
    (Recipient(reference=RECIPIENT), {"reference": RECIPIENT}),
    (Recipient(system="urn:oid:2.16.840.1.113883.4.4", value="12-3456789",
               display="Whitcombe Legal Group"),
     {"identifier": {"system": "urn:oid:2.16.840.1.113883.4.4", "value": "12-3456789"},
      "display": "Whitcombe Legal Group"}),
    (None, {}),
])
def test_the_recipient_is_named_by_reference_identifier_and_display_as_given(given, who):
    """The record's agent and the drafted authorization's actor: a FHIR Reference holding
    what the proposal gave, nothing invented (CONTRACT 6's recipient shapes)."""
    assert recipient_reference(given) == who
