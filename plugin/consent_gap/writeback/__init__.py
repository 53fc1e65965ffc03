"""Finding -> the FHIR resources that record it in the chart (CONTRACT.md section 5).

The only package that writes FHIR shapes (new builders go beside this module). Pure: it builds
and validates transaction Bundles and reads a transaction's answer write by write
(`read_response`, which the scan and the panel both use); sending them is the caller's business
(scan/, the panel). The words it writes (the notes' prose, each code's wording) come from
:mod:`consent_gap.wording`.

Why it looks like this:
- Every resource written carries an identifier ``https://consent-gap.dev/fhir/finding|<value>``
  whose value is a hash of the disclosure, the kind of resource and the decision only (not the
  ruleset, the time or the configuration), and is created with ``ifNoneExist`` on it: a rerun,
  a resumed scan or a new release of the rules matches what is there and writes nothing; a
  decision that changes gets new resources; nothing is ever updated.
- Each finding's transaction carries ONE ``Provenance`` that targets every resource it
  creates (CONTRACT 5), through the transaction's ``urn:uuid`` fullUrls (a uuid5 of each
  identifier), which the server resolves to the new or the matched resources. R4
  ``Provenance`` has no ``identifier`` element, so its deterministic key is a ``meta.tag``
  ``https://consent-gap.dev/fhir/provenance|<key>`` and its conditional create searches
  ``_tag``. The key is a hash of the finding's disclosure and the identifiers of the
  resources it targets: a rerun, a retry or a resumed scan sends the same transaction and
  matches everything, Provenance included; a later transaction for the same finding that
  writes other resources (the panel writes a draft, the scan the alert) gets a Provenance of
  its own over just those. Since a transaction cannot say which of its conditional creates
  will match, a writer first looks up which are on the server (:func:`written_values`) and
  sends only the others, so that the Provenance names what it created. Installs from
  before this (one Provenance per resource, tagged with that resource's identifier value)
  keep theirs: their resources are found by identifier and never sent again.
- The app itself is a ``Device`` with a fixed identifier, created conditionally: either once
  per run by the caller (pass its reference as ``WriteContext.device``) or, without one, inside
  every transaction (a conditional create that matches after the first time).
- Every resource written is tagged ``consent-gap`` so that CONTRACT 1.4 never counts our own
  notes or reminders as documentation or client notice (and our drafts are ``preliminary``).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from consent_gap import __version__, wording
from consent_gap.domain import ClientNotice, Decision, Documentation, Finding
from consent_gap.mappings import load_rules
from consent_gap.wording import notes
from consent_gap.wording.notes import TO_COMPLETE  # noqa: F401  (the draft's marker, re-exported)

from . import tasks

CS = "https://consent-gap.dev/fhir"
FINDING_SYSTEM = f"{CS}/finding"
PROVENANCE_TAG_SYSTEM = f"{CS}/provenance"
DEVICE_SYSTEM = f"{CS}/device"
DEVICE_VALUE = "consent-gap"
TAG = {"system": f"{CS}/tag", "code": "consent-gap", "display": "written by consent-gap"}
SECURITY = (
    {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R",
     "display": "restricted"},
    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY",
     "display": "psychiatry disorder information sensitivity"},
)
COMMUNICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
DOCUMENT_TYPE_SYSTEM = f"{CS}/CodeSystem/document-type"
LOINC = "http://loinc.org"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, CS)


class Kind(StrEnum):
    """The kinds of resource written per finding (part of every identifier)."""

    ALERT = "alert"
    FINDING_NOTE = "finding-note"
    DOCUMENTATION_DRAFT = "documentation-draft"
    NOTICE_REMINDER = "notice-reminder"
    CLIENT_NOTICE = "client-notice"  # the panel's record of a person's act (see below)
    TASK = "task"  # the privacy office's Task (CONTRACT 7; writeback/tasks.py)


wording.require(wording.KINDS, Kind, "kind of write")  # each kind has its words, or no start


class WritebackError(ValueError):
    """A resource we built does not validate as FHIR R4; a bug, never sent."""


@dataclass(frozen=True)
class WriteContext:
    """What the write-back needs beyond the Finding: configuration and the moment of writing."""

    privacy_officer: str | None = None  # Practitioner/... or PractitionerRole/...
    organization: str | None = None  # Organization/...
    device: str | None = None  # Device/<id> when the caller has ensured it; else created inline
    ruleset: str = field(default_factory=lambda: load_rules().ruleset)  # the tables' own
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # What the notes and alerts call what a finding names, by reference (recipients by name,
    # records and instruments by title, Consents by kind and day): evaluate.text_names. A
    # caller without the names leaves it empty; the texts then say so in words, never ids.
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def timestamp(self) -> str:
        return self.now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Write:
    """One resource to create, conditionally on its identifier."""

    kind: Kind
    value: str  # identifier value
    resource: dict[str, Any]

    @property
    def resource_type(self) -> str:
        return self.resource["resourceType"]

    @property
    def full_url(self) -> str:
        return urn(f"{FINDING_SYSTEM}|{self.value}")

    def entry(self) -> dict[str, Any]:
        return {
            "fullUrl": self.full_url,
            "resource": self.resource,
            "request": {
                "method": "POST",
                "url": self.resource_type,
                "ifNoneExist": f"identifier={FINDING_SYSTEM}|{self.value}",
            },
        }


@dataclass(frozen=True)
class FindingWrites:
    """Everything one finding needs written (possibly nothing), and who acted besides the app
    (``author``: the person whose act the panel records; the Provenance names them first)."""

    finding: Finding
    writes: tuple[Write, ...]
    author: str | None = None

    def __bool__(self) -> bool:
        return bool(self.writes)

    @property
    def provenance_key(self) -> str:
        """The Provenance's tag code (module docstring)."""
        return provenance_key(self.finding.key, [w.value for w in self.writes])

    def provenance(self, context: WriteContext) -> dict[str, Any]:
        """The one Provenance of this group's transaction, targeting each of its writes."""
        device = context.device or urn(f"{DEVICE_SYSTEM}|{DEVICE_VALUE}")
        provenance = _provenance(self.finding, context, device, self.provenance_key,
                                 [write.full_url for write in self.writes], self.author)
        validate(provenance)
        return provenance

    def entries(self, context: WriteContext) -> list[dict[str, Any]]:
        """Each write's entry, then the Provenance's (conditional on its tag)."""
        key = self.provenance_key
        return [write.entry() for write in self.writes] + [{
            "fullUrl": urn(f"{PROVENANCE_TAG_SYSTEM}|{key}"),
            "resource": self.provenance(context),
            "request": {
                "method": "POST",
                "url": "Provenance",
                "ifNoneExist": f"_tag={PROVENANCE_TAG_SYSTEM}|{key}",
            },
        }]

    def describe(self) -> list[dict[str, str]]:
        """What would be written, for --dry-run and logs (ids and codes, no text)."""
        if not self.writes:
            return []
        return [
            {
                "disclosure": self.finding.disclosure,
                "kind": str(write.kind),
                "resourceType": write.resource_type,
                "identifier": f"{FINDING_SYSTEM}|{write.value}",
            }
            for write in self.writes
        ] + [provenance_row(self.finding.disclosure, self.provenance_key)]


def provenance_key(disclosure: str, values: Iterable[str]) -> str:
    """Deterministic from the finding's disclosure and the identifier values it targets."""
    key = "\n".join(("provenance", disclosure, *sorted(values)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def provenance_row(disclosure: str, key: str) -> dict[str, str]:
    """The dry run's line for a Provenance (its ``identifier`` is its tag)."""
    return {"disclosure": disclosure, "kind": "provenance", "resourceType": "Provenance",
            "identifier": f"{PROVENANCE_TAG_SYSTEM}|{key}"}


# ---------------------------------------------------------------- deciding what to write

def kinds_for(finding: Finding) -> list[Kind]:
    """CONTRACT.md section 5's table: which resources this finding calls for."""
    kinds: list[Kind] = []
    if finding.decision in (Decision.UNAUTHORIZED, Decision.REVIEW):
        kinds += [Kind.ALERT, Kind.FINDING_NOTE]
    if finding.documentation == Documentation.MISSING:
        kinds.append(Kind.DOCUMENTATION_DRAFT)
    if finding.client_notice == ClientNotice.MISSING:
        kinds.append(Kind.NOTICE_REMINDER)
    if finding.decision in (Decision.UNAUTHORIZED, Decision.REVIEW):
        kinds.append(Kind.TASK)
    return kinds


def identifier_value(finding: Finding, kind: Kind) -> str:
    """Deterministic from the disclosure, the kind and the decision only (CONTRACT 5). Not
    the ruleset: a new release of the rules re-alerts only the findings whose decision
    changed. This formula is part of every identifier already written: changing it re-alerts
    every finding once. The disclosure is ``finding.key``: its reference, or for a disclosure
    carrying the guide's business identifier that identifier, which the guide's record knows
    before the server names the AuditEvent (so the scan matches what the record wrote)."""
    key = "\n".join((finding.key, str(kind), str(finding.decision)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


#: The resource type written for each kind.
RESOURCE_TYPE = {
    Kind.ALERT: "Communication",
    Kind.FINDING_NOTE: "DocumentReference",
    Kind.DOCUMENTATION_DRAFT: "DocumentReference",
    Kind.NOTICE_REMINDER: "Communication",
    Kind.CLIENT_NOTICE: "Communication",
    Kind.TASK: "Task",
}


def created_types(kinds: Iterable[Kind], *, inline_device: bool = True) -> frozenset[str]:
    """The resource types a transaction writing ``kinds`` creates: each kind's, its
    Provenance, and the app's Device when it is created inline (no ``WriteContext.device``).
    What a token's scopes must allow creating before the app offers the write."""
    types = {RESOURCE_TYPE[kind] for kind in kinds} | {"Provenance"}
    return frozenset(types | ({"Device"} if inline_device else set()))


def preview(finding: Finding, ruleset: str | None = None,
            present: Container[str] = frozenset()) -> list[dict[str, str]]:
    """What :func:`plan` would write for this finding, less the resources whose identifier
    value is in ``present`` (already on the server), with the Provenance of the rest: the
    rows of ``FindingWrites.describe``, without building or validating the resources (for
    dry runs, where building every note would cost more than fetching the charts).
    ``ruleset`` changes nothing: no identifier depends on it (CONTRACT 5)."""
    values = [(kind, identifier_value(finding, kind)) for kind in kinds_for(finding)]
    values = [(kind, value) for kind, value in values if value not in present]
    if not values:
        return []
    return [
        {
            "disclosure": finding.disclosure,
            "kind": str(kind),
            "resourceType": RESOURCE_TYPE[kind],
            "identifier": f"{FINDING_SYSTEM}|{value}",
        }
        for kind, value in values
    ] + [provenance_row(finding.disclosure,
                        provenance_key(finding.key, [v for _, v in values]))]


def planned_values(finding: Finding, ruleset: str | None = None) -> list[tuple[str, str]]:
    """(resource type, identifier value) of what :func:`plan` would write, unbuilt
    (``ruleset`` changes nothing: no identifier depends on it)."""
    return [(RESOURCE_TYPE[kind], identifier_value(finding, kind))
            for kind in kinds_for(finding)]


#: A search as the FHIR client runs it: resource type and parameters in, resources out.
Search = Callable[[str, list[tuple[str, str]]], Iterable[dict[str, Any]]]


#: Identifiers per look-up search (one POST `_search`, one page).
LOOKUP_CHUNK = 200


def existing_searches(
    wanted: Iterable[tuple[str, str]], chunk: int = LOOKUP_CHUNK, patient: str | None = None,
) -> list[tuple[str, list[tuple[str, str]]]]:
    """Searches that find which of these (resource type, identifier value) are already on
    the server, so a rerun skips them without a transaction; the conditional create stays
    the guard. Each asks for its whole answer in one page, and for the identifiers and dates
    only.
    With `patient` (``Patient/<id>``: the panel's) each names it, as a patient-scoped token's
    searches must, and asks for whole resources, which such a server checks against the
    patient's compartment (a summary without ``subject`` would be refused)."""
    values: dict[str, list[str]] = {}
    for rtype, value in wanted:
        values.setdefault(rtype, []).append(value)
    searches = []
    for rtype, wanted_values in sorted(values.items()):
        narrow = ([("patient", patient)] if patient
                  else [("_elements", _EXISTING_ELEMENTS.get(rtype, "identifier"))])
        for start in range(0, len(wanted_values), chunk):
            tokens = ",".join(f"{FINDING_SYSTEM}|{v}"
                              for v in wanted_values[start:start + chunk])
            searches.append((rtype, [("identifier", tokens), *narrow,
                                     ("_count", str(chunk))]))
    return searches


#: What a search for our own resources brings back: the identifier, and when each was written
#: (a Task written after its alert is dated at the alert: writeback/tasks.py).
_EXISTING_ELEMENTS = {"Communication": "identifier,sent", "DocumentReference": "identifier,date"}


def in_compartment(targets: Iterable[str], patient: str | None) -> list[dict[str, str]]:
    """A Provenance's targets: the resource, and the patient it is about. R4 places a
    Provenance in a patient's compartment only through a target that is the Patient, and a
    strict EHR lets a patient/ scope write only inside that compartment (the sandbox launcher
    enforces it): without the patient the panel's Provenance would be refused."""
    return [*(_ref(target) for target in targets), *([_ref(patient)] if patient else [])]


def device_entries(device: str | None) -> list[dict[str, Any]]:
    """The app's Device entry a transaction needs: none when the caller found it registered
    (``device`` is its reference; a patient/ scope may not create it on a strict EHR, where the
    scan's backend client registers it), else the inline conditional create."""
    return [] if device else [device_entry()]


def app_device(device: str | None) -> str:
    """The reference writes name the app by: the registered Device, else the inline entry's."""
    return device or urn(f"{DEVICE_SYSTEM}|{DEVICE_VALUE}")


def written_values(wanted: Iterable[tuple[str, str]], search: Search,
                   known: Mapping[str, tasks.Present] | None = None,
                   patient: str | None = None) -> dict[str, tasks.Present]:
    """Which of these (resource type, identifier value) are on the server already: identifier
    value -> its reference and when it was written (tasks.present). `known`: what was seen on
    the server already (in what the scan fetched: ``tasks.present(resources)``), not searched
    again; `patient`: see :func:`existing_searches`."""
    known = known or {}
    wanted = list(wanted)
    present = {value: known[value] for _, value in wanted if value in known}
    rest = [(rtype, value) for rtype, value in wanted if value not in known]
    for rtype, params in existing_searches(rest, patient=patient):
        present.update(tasks.present(search(rtype, params)))
    return present


def provenance_searches(keys: Sequence[str], chunk: int = LOOKUP_CHUNK
                        ) -> list[tuple[str, list[tuple[str, str]]]]:
    """Searches for our Provenances by their keys (``_tag``), 200 a search, one page each."""
    return [("Provenance", [("_tag", ",".join(f"{PROVENANCE_TAG_SYSTEM}|{key}"
                                              for key in keys[start:start + chunk])),
                            ("_count", str(chunk))])
            for start in range(0, len(keys), chunk)]


def provenance_targets(resources: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Our Provenances as a search returned them: key -> the references it targets."""
    out: dict[str, list[str]] = {}
    for resource in resources:
        if resource.get("resourceType") != "Provenance":
            continue
        targets = [str(t.get("reference")) for t in resource.get("target") or []
                   if isinstance(t, dict)]
        for tag in (resource.get("meta") or {}).get("tag") or []:
            if isinstance(tag, dict) and tag.get("system") == PROVENANCE_TAG_SYSTEM:
                out[str(tag.get("code"))] = targets
    return out


def without(group: FindingWrites, present: Container[str]) -> FindingWrites:
    """The group less the writes whose identifier is already present."""
    return replace(group, writes=tuple(w for w in group.writes if w.value not in present))


def urn(key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, key)}"


def plan(finding: Finding, context: WriteContext,
         present: Container[str] = frozenset()) -> FindingWrites:
    """The validated resources for one finding but those whose identifier value is in
    `present` (on the server already: not even built, as building and validating costs more
    than the look-up). Their Provenance is built with the transaction, over what is sent."""
    device = context.device or urn(f"{DEVICE_SYSTEM}|{DEVICE_VALUE}")
    writes = []
    for kind in kinds_for(finding):
        value = identifier_value(finding, kind)
        if value in present:
            continue
        resource = _BUILDERS[kind](finding, context, device)
        resource = {
            "resourceType": resource.pop("resourceType"),
            "meta": {"tag": [dict(TAG)], "security": [dict(code) for code in SECURITY]},
            "identifier": [{"system": FINDING_SYSTEM, "value": value}],
            **resource,
        }
        validate(resource)
        writes.append(Write(kind, value, resource))
    return FindingWrites(finding, tuple(writes))


def device_resource() -> dict[str, Any]:
    """The app as a Device; created once, conditionally on its identifier."""
    device = {
        "resourceType": "Device",
        "meta": {"tag": [dict(TAG)]},
        "identifier": [{"system": DEVICE_SYSTEM, "value": DEVICE_VALUE}],
        "status": "active",
        "deviceName": [{"name": "consent-gap", "type": "manufacturer-name"}],
        "type": {"text": "software application (consent-gap disclosure checker)"},
        "version": [{"value": __version__}],
    }
    validate(device)
    return device


def device_entry() -> dict[str, Any]:
    return {
        "fullUrl": urn(f"{DEVICE_SYSTEM}|{DEVICE_VALUE}"),
        "resource": device_resource(),
        "request": {
            "method": "POST",
            "url": "Device",
            "ifNoneExist": f"identifier={DEVICE_SYSTEM}|{DEVICE_VALUE}",
        },
    }


def device_search() -> tuple[str, dict[str, str]]:
    """The search that finds the app's Device (for a caller that ensures it once)."""
    return "Device", {"identifier": f"{DEVICE_SYSTEM}|{DEVICE_VALUE}"}


def transaction(groups: Iterable[FindingWrites], context: WriteContext) -> dict[str, Any] | None:
    """One transaction Bundle for the given findings' writes, or None when nothing is to be
    written. One group per call gives CONTRACT 5's one transaction per finding; several groups
    trade isolation for fewer round trips (the caller retries them singly on a rejection).
    The layout (an inline Device first, then per group each write's resource and the group's
    Provenance) is known here and in :func:`read_response` only."""
    groups = [group for group in groups if group]
    if not groups:
        return None
    entries = [entry for group in groups for entry in group.entries(context)]
    if context.device is None:
        entries.insert(0, device_entry())
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


class WriteStatus(StrEnum):
    """What the server did with one entry of a write."""

    CREATED = "created"  # 201: it is new
    EXISTING = "existing"  # 200: the conditional create matched what was there
    FAILED = "failed"  # an error status, or no answer for the entry


@dataclass(frozen=True)
class EntryResult:
    """The server's answer to one entry: its status and the resource it names (`Type/id`,
    None when the answer names none)."""

    resource_type: str
    status: WriteStatus
    reference: str | None = None


@dataclass(frozen=True)
class WriteResult:
    """The answer to one :class:`Write`: its resource's entry and the entry of the
    Provenance of its group (shared by the group's writes)."""

    write: Write
    resource: EntryResult
    provenance: EntryResult

    @property
    def status(self) -> WriteStatus:
        """The resource's status, FAILED when its Provenance failed (a write without its
        Provenance is not done)."""
        if WriteStatus.FAILED in (self.resource.status, self.provenance.status):
            return WriteStatus.FAILED
        return self.resource.status

    @property
    def reference(self) -> str | None:
        return self.resource.reference


@dataclass(frozen=True)
class Outcome:
    """What a transaction response says was done, write by write."""

    writes: tuple[WriteResult, ...]
    device: EntryResult | None = None
    provenances: tuple[EntryResult, ...] = ()  # one per group

    def entries(self) -> list[EntryResult]:
        head = [self.device] if self.device is not None else []
        return head + [w.resource for w in self.writes] + list(self.provenances)

    def _count(self, status: WriteStatus) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.entries():
            if entry.status == status:
                counts[entry.resource_type] = counts.get(entry.resource_type, 0) + 1
        return counts

    @property
    def created(self) -> dict[str, int]:
        """Entries created, per resource type (Provenances and the Device included)."""
        return self._count(WriteStatus.CREATED)

    @property
    def matched(self) -> dict[str, int]:
        """Entries that were already on the server, per resource type."""
        return self._count(WriteStatus.EXISTING)

    @property
    def failed(self) -> dict[str, int]:
        return self._count(WriteStatus.FAILED)

    @property
    def created_total(self) -> int:
        return sum(self.created.values())


def read_response(response: dict[str, Any], groups: Sequence[FindingWrites],
                  context: WriteContext) -> Outcome:
    """The server's answer to ``transaction(groups, context)``, write by write: which was
    created, which already existed (the conditional create matched), which failed, with the
    references the server gives. Entries are matched by position, as a transaction-response
    keeps the request's order (FHIR R4 3.1.0.11.4)."""
    if not any(groups):  # transaction() sent nothing: nothing was done
        return Outcome(())
    answers = iter([entry.get("response") if isinstance(entry, dict) else None
                    for entry in response.get("entry") or []])
    device = (_entry_result("Device", next(answers, None))
              if context.device is None else None)
    writes: list[WriteResult] = []
    provenances: list[EntryResult] = []
    for group in (group for group in groups if group):
        resources = [_entry_result(write.resource_type, next(answers, None))
                     for write in group.writes]
        provenance = _entry_result("Provenance", next(answers, None))
        writes += [WriteResult(write, result, provenance)
                   for write, result in zip(group.writes, resources, strict=True)]
        provenances.append(provenance)
    return Outcome(tuple(writes), device, tuple(provenances))


def _entry_result(rtype: str, answer: Any) -> EntryResult:
    if not isinstance(answer, dict):
        return EntryResult(rtype, WriteStatus.FAILED)
    status = str(answer.get("status", "")).strip()
    if status.startswith("201"):
        verdict = WriteStatus.CREATED
    elif status.startswith("2"):
        verdict = WriteStatus.EXISTING
    else:
        return EntryResult(rtype, WriteStatus.FAILED)
    return EntryResult(rtype, verdict, _located(str(answer.get("location", "")), rtype))


def _located(location: str, rtype: str) -> str | None:
    """``Type/id`` from a response's location (relative or absolute, with or without
    ``_history``), None when it names no resource of that type."""
    parts = [p for p in location.split("/") if p]
    for index in range(len(parts) - 1):
        if parts[index] == rtype:
            return f"{rtype}/{parts[index + 1]}"
    return None


# ---------------------------------------------------------------- validation

def _models() -> dict[str, Any]:
    from fhir.resources.R4B.auditevent import AuditEvent
    from fhir.resources.R4B.communication import Communication
    from fhir.resources.R4B.consent import Consent
    from fhir.resources.R4B.device import Device
    from fhir.resources.R4B.documentreference import DocumentReference
    from fhir.resources.R4B.provenance import Provenance
    from fhir.resources.R4B.questionnaire import Questionnaire
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
    from fhir.resources.R4B.task import Task

    return {
        "AuditEvent": AuditEvent,
        "Communication": Communication,
        "Consent": Consent,
        "Device": Device,
        "DocumentReference": DocumentReference,
        "Provenance": Provenance,
        "Task": Task,
        "Questionnaire": Questionnaire,
        "QuestionnaireResponse": QuestionnaireResponse,
    }


_MODELS: dict[str, Any] = {}


def validate(resource: dict[str, Any]) -> None:
    """Parse with fhir.resources' R4B models (R4-compatible for these types); raise on error."""
    if not _MODELS:
        _MODELS.update(_models())
    model = _MODELS.get(resource.get("resourceType", ""))
    if model is None:
        raise WritebackError(f"no model for {resource.get('resourceType')!r}")
    try:
        model.model_validate(resource)
    except Exception as error:  # pydantic's ValidationError and fhir-core's own errors
        raise WritebackError(f"{resource['resourceType']} does not validate: {error}") from None


# ---------------------------------------------------------------- the resources

def _ref(reference: str) -> dict[str, str]:
    return {"reference": reference}


def _subject(finding: Finding) -> dict[str, Any]:
    return {"subject": _ref(finding.patient)} if finding.patient else {}


def _unique(references: Iterable[str | None]) -> list[dict[str, str]]:
    seen: list[str] = []
    for reference in references:
        if reference and reference not in seen:
            seen.append(reference)
    return [_ref(reference) for reference in seen]


def _alert(finding: Finding, context: WriteContext, device: str) -> dict[str, Any]:
    urgent = finding.decision == Decision.UNAUTHORIZED
    recipients = _unique([context.privacy_officer, *finding.notify])
    message = notes.alert(finding, context.names)
    # The finding note, by its identifier (a logical reference: it resolves whether the note
    # is written in this transaction or was written before).
    note = {"system": FINDING_SYSTEM, "value": identifier_value(finding, Kind.FINDING_NOTE)}
    return {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": COMMUNICATION_CATEGORY, "code": "alert"}]}],
        "priority": "urgent" if urgent else "routine",
        **_subject(finding),
        "about": [_ref(finding.disclosure)],
        "sent": context.timestamp,
        **({"recipient": recipients} if recipients else {}),
        "sender": _ref(device),
        "payload": [{"contentString": message},
                    {"contentReference": {"identifier": note,
                                          "display": notes.finding_note_title(finding)}}],
    }


def _reminder(finding: Finding, context: WriteContext, device: str) -> dict[str, Any]:
    # The people to notify; with none recorded, the privacy officer, so that someone is told.
    recipients = _unique(finding.notify) or _unique([context.privacy_officer])
    message = notes.reminder(finding, context.names)
    return {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": COMMUNICATION_CATEGORY, "code": "reminder"}]}],
        "priority": "routine",
        **_subject(finding),
        "about": [_ref(finding.disclosure)],
        "sent": context.timestamp,
        **({"recipient": recipients} if recipients else {}),
        "sender": _ref(device),
        "payload": [{"contentString": message}],
    }


def _document(
    finding: Finding,
    context: WriteContext,
    device: str,
    *,
    doc_status: str,
    type_coding: dict[str, str],
    title: str,
    text: str,
    related: list[str],
) -> dict[str, Any]:
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": doc_status,
        "type": {"coding": [type_coding], "text": title},
        **_subject(finding),
        "date": context.timestamp,
        "author": [_ref(device)],
        **({"custodian": _ref(context.organization)} if context.organization else {}),
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "text/markdown; charset=utf-8",
                    "language": "en",
                    "data": data,
                    "title": title,
                    "creation": context.timestamp,
                }
            }
        ],
        "context": {"related": _unique(related)},
    }


def _finding_note(finding: Finding, context: WriteContext, device: str) -> dict[str, Any]:
    return _document(
        finding,
        context,
        device,
        doc_status="final",
        type_coding={"system": DOCUMENT_TYPE_SYSTEM, "code": "finding-note",
                     "display": "consent-gap finding note"},
        title=notes.finding_note_title(finding),
        text=notes.finding_note(finding, context.ruleset, context.names),
        related=[finding.disclosure, *(ref for ref, _ in finding.consents_checked)],
    )


def _draft(finding: Finding, context: WriteContext, device: str) -> dict[str, Any]:
    return _document(
        finding,
        context,
        device,
        doc_status="preliminary",
        type_coding={"system": LOINC, "code": "11506-3", "display": "Progress note"},
        title=notes.DRAFT_TITLE,
        text=notes.documentation_draft(finding, context.names),
        related=[finding.disclosure],
    )


def _agent(who: str, role: str) -> dict[str, Any]:
    return {
        "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
            "code": role,
        }]},
        "who": _ref(who),
    }


def _provenance(
    finding: Finding, context: WriteContext, device: str, key: str, targets: Sequence[str],
    author: str | None = None,
) -> dict[str, Any]:
    """The app is the author; with a person as author (the panel's client notice) the app
    only assembled what they entered."""
    agent = _agent(device, "assembler" if author else "author")
    if context.organization:
        agent["onBehalfOf"] = _ref(context.organization)
    return {
        "resourceType": "Provenance",
        "meta": {
            "tag": [dict(TAG), {"system": PROVENANCE_TAG_SYSTEM, "code": key}],
            "security": [dict(code) for code in SECURITY],
        },
        "target": in_compartment(targets, finding.patient),
        "recorded": context.timestamp,
        "policy": [f"{CS}/ruleset/{context.ruleset}"],
        "activity": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": "CREATE",
        }]},
        "agent": [_agent(author, "author"), agent] if author else [agent],
        "entity": [{"role": "source", "what": _ref(finding.disclosure)}],
    }


_BUILDERS = {
    Kind.ALERT: _alert,
    Kind.FINDING_NOTE: _finding_note,
    Kind.DOCUMENTATION_DRAFT: _draft,
    Kind.NOTICE_REMINDER: _reminder,
    Kind.TASK: lambda finding, context, device: tasks.task_resource(finding, context, device),
}


# ---------------------------------------------------------------- the panel's client notice

def client_notice_record(
    finding: Finding,
    context: WriteContext,
    *,
    sent: bool,
    reason: str | None = None,
    author: str | None = None,
) -> FindingWrites:
    """The clinician's record, entered in the panel, that the client was told of a disclosure
    (``sent``) or that telling was withheld and why: the client notice of CONTRACT 1.4.

    Unlike every other write it carries NO consent-gap ``meta.tag``: it records what a person
    did (the app only types it in), and 1.4 must count it; a tagged notice never would. It is
    still idempotent (a deterministic identifier from the disclosure and the outcome, created
    conditionally) and carries the security labels; its group's Provenance names the author
    (the launching user, when known) and the app.
    """
    if not finding.patient:
        raise WritebackError("a client notice needs the disclosure's patient")
    why = (reason or "").strip()
    if not sent and not why:
        raise WritebackError("a withheld client notice needs its reason")
    outcome = "sent" if sent else "withheld"
    key = "\n".join((finding.disclosure, str(Kind.CLIENT_NOTICE), outcome))
    value = hashlib.sha256(key.encode()).hexdigest()[:32]
    text = notes.client_notice(finding, sent, why, context.names)
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "meta": {"security": [dict(code) for code in SECURITY]},
        "identifier": [{"system": FINDING_SYSTEM, "value": value}],
        "status": "completed" if sent else "not-done",
        **({} if sent else {"statusReason": {"text": why}}),
        "category": [{"coding": [{"system": COMMUNICATION_CATEGORY, "code": "notification"}]}],
        "subject": _ref(finding.patient),
        "about": [_ref(finding.disclosure)],
        **({"sent": context.timestamp} if sent else {}),
        "recipient": [_ref(finding.patient)],
        **({"sender": _ref(author)} if author else {}),
        "payload": [{"contentString": text}],
    }
    validate(resource)
    return FindingWrites(finding, (Write(Kind.CLIENT_NOTICE, value, resource),), author)
