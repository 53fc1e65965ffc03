"""A proposal recorded (CONTRACT 6.3): the disclosure's AuditEvent, the documentation, the
client notice, each with its Provenance, in one transaction of conditional creates.

The AuditEvent built here is also what the check decides (proposal.check puts it in the chart
before `evaluate`), so the check and the record cannot disagree on what the disclosure is.

Idempotence: every resource carries the key `https://consent-gap.dev/fhir/proposal|
<proposal_id>-<kind>`, as an identifier where the type has one and as a `meta.tag` where it
has none (R4 AuditEvent and Provenance), and is created with `ifNoneExist` on it; a second
POST of the same proposal matches everything and writes nothing. The transaction's layout (an
inline Device first, then each resource followed by its Provenance) is known here and in
`read_record_response` only.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from consent_gap.domain import PROPOSAL_SYSTEM
from consent_gap.writeback import (
    CS,
    LOINC,
    SECURITY,
    EntryResult,
    FindingWrites,
    Kind,
    WriteContext,
    WriteStatus,
    _entry_result,
    app_device,
    device_entries,
    in_compartment,
    plan,
    urn,
    validate,
)

if TYPE_CHECKING:
    from consent_gap.domain import Finding
    from consent_gap.proposal import Proposal, Recipient

#: The documentation a clinician writes counts for 1.4 (it is not the consent-gap tag).
CLINICIAN_TAG = {"system": f"{CS}/tag", "code": "recorded-by-clinician",
                 "display": "recorded by a clinician with consent-gap"}
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
COMMUNICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"


class RecordError(ValueError):
    """What the clinician must fix before anything is written (HTTP 400), one line."""


def _ref(reference: str) -> dict[str, str]:
    return {"reference": reference}


def recipient_reference(recipient: Recipient | None) -> dict[str, Any]:
    """The FHIR Reference to a proposal's recipient: its reference, identifier and display,
    whichever it has (empty when there is none). The record's agent and the drafted
    authorization's actor name the recipient the same way. CONTRACT 6 gives a proposal's
    recipient the shape of a FHIR Reference, so it is the proposal's own JSON form."""
    return recipient.to_json() if recipient is not None else {}


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------ AuditEvent

def audit_event(proposal: Proposal, *, recorded: datetime, event_id: str | None = None,
                clinician: str | None = None, device: str | None = None,
                key: str | None = None) -> dict[str, Any]:
    """The IHE BALP PrivacyDisclosure.Source AuditEvent of 6.3 for a proposal.

    `event_id` for the check (an id the chart does not hold), `key` for the record (its
    `meta.tag`, since R4 AuditEvent has no identifier). The source agent is the clinician who
    discloses; without one (the offline check) the app's Device stands in, so the shape BALP
    fixes is always complete."""
    device = app_device(device)
    who = recipient_reference(proposal.recipient)
    agents: list[dict[str, Any]] = []
    if who:
        agents.append({
            "type": {"coding": [{"system": DCM, "code": "110152",
                                 "display": "Destination Role ID"}]},
            "who": who,
            "requestor": False,
        })
    agents.append({
        "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
        "who": _ref(clinician or device),
        "requestor": True,
    })
    entities: list[dict[str, Any]] = [{
        "what": _ref(proposal.patient),
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    }]
    for item in proposal.data:
        entity: dict[str, Any] = {
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "3", "display": "Report"},
        }
        if item.reference:
            entity["what"] = _ref(item.reference)
        if item.labels:
            entity["securityLabel"] = [{"system": s, "code": c} for s, c in item.labels]
        if item.description:
            entity["description"] = item.description
        entities.append(entity)
    for instrument in proposal.instruments:
        entities.append({
            "what": _ref(instrument),
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "20", "display": "Job"},
            "description": "legal instrument",
        })
    meta: dict[str, Any] = {"security": [dict(code) for code in SECURITY]}
    if key is not None:
        meta["tag"] = [{"system": PROPOSAL_SYSTEM, "code": key}]
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        **({"id": event_id} if event_id else {}),
        "meta": meta,
        "type": {"system": DCM, "code": "110106", "display": "Export"},
        "subtype": [{"system": LIFECYCLE, "code": "disclose", "display": "Disclose"}],
        "action": "R",
        "period": {"start": _instant(proposal.at)},
        "recorded": _instant(recorded),
        "outcome": "0",
        "purposeOfEvent": [{"coding": [{"system": ACT_REASON, "code": code}]}
                           for code in proposal.purposes],
        "agent": agents,
        "source": {
            "observer": _ref(device),
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                      "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    }
    if not event["purposeOfEvent"]:
        del event["purposeOfEvent"]
    return event


# ------------------------------------------------------------------------------ the record

DOCUMENTATION_KEYS = ("nature", "informed", "client_response", "evidence", "harm_minimised")
NOTICE_CHOICES = ("sent", "withheld", "later")


@dataclass(frozen=True)
class RecordRequest:
    """What the clinician sends to record a checked proposal (6.3), already read."""

    proposal: Proposal
    proposal_id: str
    documentation: Mapping[str, str] = field(default_factory=dict)
    notice: str = "later"
    notice_reason: str | None = None
    notice_text: str | None = None
    acknowledge_unauthorized: bool = False
    ethic: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Planned:
    """One resource to create conditionally, with the Provenance written beside it."""

    kind: str
    resource: dict[str, Any]
    provenance: dict[str, Any]

    @property
    def key(self) -> str:
        return key_of(self.resource)

    @property
    def resource_type(self) -> str:
        return self.resource["resourceType"]

    @property
    def full_url(self) -> str:
        return urn(f"{PROPOSAL_SYSTEM}|{self.key}")

    def entries(self) -> list[dict[str, Any]]:
        search = ("_tag" if self.resource_type in _TAGGED else "identifier")
        patient = _patient_of(self.resource)
        also = f"&patient={patient}" if patient and self.resource_type in _BY_PATIENT else ""
        return [
            {"fullUrl": self.full_url, "resource": self.resource,
             "request": {"method": "POST", "url": self.resource_type,
                         "ifNoneExist": f"{search}={PROPOSAL_SYSTEM}|{self.key}{also}"}},
            {"fullUrl": urn(f"{PROPOSAL_SYSTEM}|{self.key}-provenance"),
             "resource": self.provenance,
             "request": {"method": "POST", "url": "Provenance",
                         "ifNoneExist": f"_tag={PROPOSAL_SYSTEM}|{self.key}-provenance"}},
        ]


#: Types without an identifier element in R4: their key is a meta.tag.
_TAGGED = frozenset({"AuditEvent", "Provenance"})
#: Types whose conditional create also names the patient (a patient-scoped server wants it).
_BY_PATIENT = frozenset({"AuditEvent", "DocumentReference", "Communication", "Consent", "Task"})


def key_of(resource: dict[str, Any]) -> str:
    """The proposal key a resource built here carries (identifier or tag)."""
    for item in [*(resource.get("identifier") or []),
                 *((resource.get("meta") or {}).get("tag") or [])]:
        if item.get("system") == PROPOSAL_SYSTEM:
            return str(item.get("value") or item.get("code"))
    raise KeyError("no proposal key")


def _patient_of(resource: dict[str, Any]) -> str | None:
    for name in ("subject", "patient", "for"):
        ref = (resource.get(name) or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref
    if resource.get("resourceType") == "AuditEvent":
        for entity in resource.get("entity") or []:
            ref = (entity.get("what") or {}).get("reference")
            if isinstance(ref, str) and ref.startswith("Patient/"):
                return ref
    return None


def provenance(target_url: str, key: str, *, now: datetime, clinician: str | None,
               device: str, patient: str | None = None) -> dict[str, Any]:
    """6.3: recorded now, activity CREATE, the clinician as author, the app as assembler."""
    agents = []
    if clinician:
        agents.append({"type": {"coding": [{"system": PARTICIPANT, "code": "author"}]},
                       "who": _ref(clinician)})
    agents.append({"type": {"coding": [{"system": PARTICIPANT,
                                        "code": "assembler" if clinician else "author"}]},
                   "who": _ref(device)})
    return {
        "resourceType": "Provenance",
        "meta": {"tag": [{"system": PROPOSAL_SYSTEM, "code": f"{key}-provenance"}],
                 "security": [dict(code) for code in SECURITY]},
        "target": in_compartment([target_url], patient),
        "recorded": _instant(now),
        "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                 "v3-DataOperation", "code": "CREATE"}]},
        "agent": agents,
    }


def documentation_text(request: RecordRequest, *, ethic_only: bool = False) -> str:
    """The note: the five elements under their headings (and the ETHIC answers, if any)."""
    from consent_gap.wording.guide import DOCUMENTATION_ELEMENTS, ETHIC

    lines = ["Documentation of a disclosure of confidential information", ""]
    if not ethic_only:
        for key, heading in DOCUMENTATION_ELEMENTS:
            lines += [heading, request.documentation.get(key, "").strip(), ""]
    answered = [(label, request.ethic.get(code, "").strip()) for code, label, _ in ETHIC]
    if any(text for _, text in answered):
        lines += ["Deliberation (ETHIC)", ""]
        for label, text in answered:
            lines += [label, text or "(not answered)", ""]
    return "\n".join(lines).rstrip() + "\n"


def missing_documentation(documentation: Mapping[str, Any]) -> list[str]:
    """The five elements (6.3) that are absent or blank, in their order."""
    return [key for key in DOCUMENTATION_KEYS
            if not isinstance(documentation.get(key), str) or not documentation[key].strip()]


def _note(request: RecordRequest, key: str, event_url: str, clinician: str | None, now: str,
          *, title: str, ethic_only: bool = False) -> dict[str, Any]:
    text = documentation_text(request, ethic_only=ethic_only)
    return {
        "resourceType": "DocumentReference",
        "meta": {"tag": [dict(CLINICIAN_TAG)], "security": [dict(code) for code in SECURITY]},
        "identifier": [{"system": PROPOSAL_SYSTEM, "value": key}],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}],
                 "text": title},
        "subject": _ref(request.proposal.patient),
        "date": now,
        **({"author": [_ref(clinician)]} if clinician else {}),
        "description": title,
        "content": [{"attachment": {
            "contentType": "text/plain", "language": "en",
            "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
            "title": title, "creation": now}}],
        "context": {"related": [_ref(event_url)]},
    }


def _notice(request: RecordRequest, key: str, event_url: str, clinician: str | None,
            now: str) -> dict[str, Any]:
    patient = request.proposal.patient
    sent = request.notice == "sent"
    told = (request.notice_text or "").strip() or (
        "You were told that information from your record was disclosed, to whom, and why.")
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "meta": {"security": [dict(code) for code in SECURITY]},
        "identifier": [{"system": PROPOSAL_SYSTEM, "value": key}],
        "status": "completed" if sent else "not-done",
        "category": [{"coding": [{"system": COMMUNICATION_CATEGORY, "code": "notification"}]}],
        "subject": _ref(patient),
        "about": [_ref(event_url)],
        "recipient": [_ref(patient)],
        **({"sender": _ref(clinician)} if clinician else {}),
    }
    if sent:
        resource["sent"] = now
        resource["payload"] = [{"contentString": told}]
    else:
        resource["statusReason"] = {"text": (request.notice_reason or "").strip()}
    return resource


def plan_record(request: RecordRequest, finding: Finding, step_codes: Sequence[str], *,
                now: datetime, clinician: str | None, privacy_officer: str | None = None,
                organization: str | None = None, task: bool = True,
                device: str | None = None) -> list[Planned | Alerts]:
    """The resources 6.3 writes for a checked proposal, validated; RecordError (nothing is
    written) when the clinician's part is incomplete or the answer may not be recorded.
    ``task``: whether the token may create the privacy office's Task (CONTRACT 7); without
    it the next scan writes the Task, dated at this alert. ``device``: the app's registered
    Device (None: created inline, which only a lenient EHR allows a patient/ scope)."""
    from consent_gap.domain import Decision

    if finding.decision == Decision.UNAUTHORIZED and not request.acknowledge_unauthorized:
        raise RecordError("acknowledge_unauthorized: this disclosure is not permitted; it is "
                          "recorded only when you acknowledge that")
    if request.notice not in NOTICE_CHOICES:
        raise RecordError("client_notice.status: must be sent, withheld or later")
    if ("inform-client" in step_codes and request.notice == "withheld"
            and not (request.notice_reason or "").strip()):
        raise RecordError("client_notice.reason: say why the client is not told")
    if "document" in step_codes:
        missing = missing_documentation(request.documentation)
        if missing:
            raise RecordError(f"documentation: missing {', '.join(missing)}")
    device = app_device(device)
    stamp = _instant(now)
    pid = request.proposal_id

    def planned(kind: str, resource: dict[str, Any]) -> Planned:
        key = f"{pid}-{kind}"
        target = urn(f"{PROPOSAL_SYSTEM}|{key}")
        made = Planned(kind, resource, provenance(target, key, now=now, clinician=clinician,
                                                  device=device,
                                                  patient=request.proposal.patient))
        validate(made.resource)
        validate(made.provenance)
        return made

    event = audit_event(request.proposal, recorded=now, clinician=clinician, device=device,
                        key=f"{pid}-audit-event")
    writes: list[Planned | Alerts] = [planned("audit-event", event)]
    event_url = writes[0].full_url
    if "document" in step_codes:
        writes.append(planned("documentation", _note(
            request, f"{pid}-documentation", event_url, clinician, stamp,
            title="Documentation of a disclosure")))
    elif any((v or "").strip() for v in request.ethic.values()):
        writes.append(planned("deliberation", _note(
            request, f"{pid}-deliberation", event_url, clinician, stamp,
            title="Deliberation before a disclosure (ETHIC)", ethic_only=True)))
    if "inform-client" in step_codes and request.notice in ("sent", "withheld"):
        writes.append(planned("client-notice", _notice(
            request, f"{pid}-client-notice", event_url, clinician, stamp)))
    if finding.decision == Decision.UNAUTHORIZED:
        writes.append(_alerts(finding, event_url, f"{PROPOSAL_SYSTEM}|{pid}-audit-event", now,
                              privacy_officer, organization, device, task=task))
    return writes


#: What the record writes of section 5 for an unauthorized disclosure (CONTRACT 5 and 7).
_ALERT_KINDS = (Kind.ALERT, Kind.FINDING_NOTE, Kind.TASK)


@dataclass(frozen=True)
class Alerts:
    """Section 5's writes for an unauthorized disclosure, as the scan's own group (its
    resources, then its one Provenance), in the record's transaction."""

    group: FindingWrites
    context: WriteContext
    kind: str = "alerts"

    def entries(self) -> list[dict[str, Any]]:
        return self.group.entries(self.context)


def _alerts(finding: Finding, event_url: str, identity: str, now: datetime,
            privacy_officer: str | None, organization: str | None, device: str, *,
            task: bool) -> Alerts:
    """Section 5's alert and finding note (and section 7's Task) for an unauthorized
    disclosure, about the new AuditEvent: exactly what the scan would write for it, keyed by
    the AuditEvent's business identifier (``identity``, which the scan reads back from the
    recorded AuditEvent), so a later scan finds them and writes nothing."""
    from dataclasses import replace

    context = WriteContext(privacy_officer=privacy_officer, organization=organization,
                           device=device, now=now)
    about = replace(finding, disclosure=event_url, identity=identity)
    kinds = _ALERT_KINDS if task else _ALERT_KINDS[:-1]
    planned = plan(about, context)
    return Alerts(FindingWrites(about, tuple(w for w in planned.writes if w.kind in kinds)),
                  context)


def record_transaction(writes: Sequence[Planned | Alerts],
                       device: str | None = None) -> dict[str, Any]:
    """One transaction: the app's Device (conditional) unless ``device`` names the registered
    one, then each resource and its Provenance."""
    entries = device_entries(device)
    for write in writes:
        entries += write.entries()
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@dataclass(frozen=True)
class RecordResult:
    """The server's answer, write by write: (kind, resource entry, Provenance entry)."""

    writes: tuple[tuple[str, EntryResult, EntryResult], ...]

    @property
    def failed(self) -> bool:
        return any(WriteStatus.FAILED in (r.status, p.status) for _, r, p in self.writes)

    @property
    def created(self) -> bool:
        return any(r.status == WriteStatus.CREATED for _, r, _p in self.writes)

    def references(self) -> dict[str, str | None]:
        return {kind: r.reference for kind, r, _p in self.writes}


def read_record_response(response: dict[str, Any], writes: Sequence[Planned | Alerts],
                         device: str | None = None) -> RecordResult:
    """The transaction-response read by position (FHIR R4 3.1.0.11.4), with writeback's
    entry reader."""
    answers = iter([entry.get("response") if isinstance(entry, dict) else None
                    for entry in response.get("entry") or []])
    if device is None:
        next(answers, None)  # the Device
    out: list[tuple[str, EntryResult, EntryResult]] = []
    for write in writes:
        if isinstance(write, Alerts):
            answered = [(w, _entry_result(w.resource_type, next(answers, None)))
                        for w in write.group.writes]
            proof = _entry_result("Provenance", next(answers, None))
            out += [(str(w.kind), result, proof) for w, result in answered]
        else:
            out.append((write.kind, _entry_result(write.resource_type, next(answers, None)),
                        _entry_result("Provenance", next(answers, None))))
    return RecordResult(tuple(out))
