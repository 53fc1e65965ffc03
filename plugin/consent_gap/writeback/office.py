"""What the privacy office writes (CONTRACT.md 7 and 7.1): a disposition's update of the Task,
the breach risk assessment (the Questionnaire, created once, and its QuestionnaireResponse),
and the draft of the notice to the client; all in one transaction with one Provenance.

Why it looks like this:
- The Task is updated with ``If-Match`` on the version the officer saw (the transaction entry's
  ``request.ifMatch``): a second officer acting on the same version gets a conflict (HTTP 409 or
  412), never a lost update; nothing of the first one's is overwritten.
- The update keeps everything on the Task and appends: a note (who and why), an output.
- Every resource created has a deterministic identifier from the Task and the version acted on,
  and is created conditionally: a retry of the same submission writes it once.
- The Provenance names the officer (author) and the app (assembler), targets the Task's new
  version and every resource created, and is conditional on the same key.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent_gap import breach
from consent_gap.writeback import (
    DEVICE_SYSTEM,
    DEVICE_VALUE,
    FINDING_SYSTEM,
    PROVENANCE_TAG_SYSTEM,
    SECURITY,
    TAG,
    device_entry,
    urn,
    validate,
)
from consent_gap.writeback.tasks import CS, DISPOSITION_SYSTEM, instant

QUESTIONNAIRE_URL = f"{CS}/Questionnaire/breach-risk-assessment"
OUTPUT_SYSTEM = f"{CS}/CodeSystem/task-output"
NOTICE_TYPE = {"system": f"{CS}/CodeSystem/document-type", "code": "breach-notice",
               "display": "Notice of breach to the individual (45 CFR 164.404)"}
#: The dispositions of CONTRACT 7 and the conclusions of 7.1 (businessStatus codes).
DISPOSITIONS = ("authorization-on-file", "documentation-completed", "not-a-disclosure",
                "breach-assessment")


class ConflictingUpdate(Exception):
    """The Task changed since the officer read it (another officer acted first)."""


@dataclass(frozen=True)
class TaskState:
    """The Task as read, with the version the officer acts on."""

    resource: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    @property
    def reference(self) -> str:
        return f"Task/{self.id}"

    @property
    def version(self) -> str:
        return str((self.resource.get("meta") or {}).get("versionId") or "")


@dataclass(frozen=True)
class Creation:
    """A resource the disposition creates (conditionally), with its identifier value."""

    value: str
    resource: dict[str, Any]
    condition: str  # the If-None-Exist query

    @property
    def full_url(self) -> str:
        return urn(f"{FINDING_SYSTEM}|{self.value}")


def key(task: TaskState, what: str) -> str:
    """The identifier value of something written for this Task at this version."""
    text = "\n".join((task.reference, task.version, what))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def updated_task(task: TaskState, *, status: str, business: str, author: str | None,
                 why: str, now: datetime, outputs: tuple[tuple[str, str], ...] = (),
                 dates: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The Task with its new status, businessStatus and a note (who and why) appended, and
    ``outputs`` (code, reference) and ``dates`` (code, date: a notice's deadline, so the
    worklist shows it from the Task alone) appended; everything else as it was."""
    resource = {k: v for k, v in task.resource.items() if k != "meta"}
    resource["meta"] = {k: v for k, v in (task.resource.get("meta") or {}).items()
                        if k in ("tag", "security", "profile")}
    resource["status"] = status
    resource["businessStatus"] = {"coding": [{"system": DISPOSITION_SYSTEM, "code": business}],
                                  "text": business}
    note: dict[str, Any] = {"time": instant(now), "text": why}
    if author:
        note["authorReference"] = {"reference": author}
    resource["note"] = [*(task.resource.get("note") or []), note]
    resource["lastModified"] = instant(now)
    if outputs or dates:
        resource["output"] = [*(task.resource.get("output") or []), *(
            {"type": {"coding": [{"system": OUTPUT_SYSTEM, "code": code}]},
             "valueReference": {"reference": ref}} for code, ref in outputs), *(
            {"type": {"coding": [{"system": OUTPUT_SYSTEM, "code": code}]},
             "valueDate": day} for code, day in dates)]
    validate(resource)
    return resource


def questionnaire_resource() -> dict[str, Any]:
    """The breach risk assessment form (created once, conditionally on its url)."""
    items: list[dict[str, Any]] = [
        {"linkId": "secured", "type": "boolean", "required": True,
         "text": "Was the information secured (encrypted or destroyed as HHS guidance "
                 "defines)? Then it is not a breach."},
        {"linkId": "exception", "type": "choice", "required": True,
         "text": "Does an exception of 45 CFR 164.402(1) apply?",
         "answerOption": [{"valueCoding": {"system": f"{CS}/CodeSystem/breach-exception",
                                           "code": code, "display": text}}
                          for code, text in breach.EXCEPTIONS]},
    ]
    for code, question in breach.FACTORS:
        items.append({"linkId": f"factor-{code}", "type": "group", "required": True,
                      "text": question, "item": [
                          {"linkId": f"rating-{code}", "type": "choice", "required": True,
                           "text": "Rating", "answerOption": [
                               {"valueCoding": {"system": f"{CS}/CodeSystem/risk-rating",
                                                "code": rating}} for rating in breach.RATINGS]},
                          {"linkId": f"evidence-{code}", "type": "text", "required": True,
                           "text": "Evidence"}]})
    items += [
        {"linkId": "occurred", "type": "dateTime", "readOnly": True,
         "text": "Date of the breach (the disclosure's, from the record)"},
        {"linkId": "affected", "type": "integer", "required": True,
         "text": "People affected"},
        {"linkId": "state_residents", "type": "integer", "required": True,
         "text": "Most residents of one State among them"},
        {"linkId": "conclusion", "type": "choice", "required": True,
         "text": "Conclusion", "answerOption": [
             {"valueCoding": {"system": DISPOSITION_SYSTEM, "code": code}}
             for code in breach.CONCLUSIONS]},
    ]
    resource = {
        "resourceType": "Questionnaire",
        "meta": {"tag": [dict(TAG)]},
        "url": QUESTIONNAIRE_URL,
        "identifier": [{"system": FINDING_SYSTEM, "value": "breach-risk-assessment"}],
        "name": "BreachRiskAssessment",
        "title": "Breach risk assessment (45 CFR 164.402)",
        "status": "active",
        "subjectType": ["Patient"],
        "item": items,
    }
    validate(resource)
    return resource


def questionnaire_entry() -> dict[str, Any]:
    return {"fullUrl": urn(QUESTIONNAIRE_URL), "resource": questionnaire_resource(),
            "request": {"method": "POST", "url": "Questionnaire",
                        "ifNoneExist": f"url={QUESTIONNAIRE_URL}"}}


def response_resource(task: TaskState, answers: breach.Assessment, *, patient: str | None,
                      author: str | None, now: datetime,
                      occurred: str | None = None) -> Creation:
    """The completed QuestionnaireResponse of the assessment."""
    value = key(task, "breach-risk-assessment")

    def coding(system: str, code: str) -> dict[str, Any]:
        return {"valueCoding": {"system": system, "code": code}}

    items: list[dict[str, Any]] = [
        {"linkId": "secured", "answer": [{"valueBoolean": answers.secured}]},
        {"linkId": "exception",
         "answer": [coding(f"{CS}/CodeSystem/breach-exception", answers.exception)]},
    ]
    for code, _ in breach.FACTORS:
        items.append({"linkId": f"factor-{code}", "item": [
            {"linkId": f"rating-{code}",
             "answer": [coding(f"{CS}/CodeSystem/risk-rating", answers.ratings[code])]},
            {"linkId": f"evidence-{code}", "answer": [{"valueString": answers.evidence[code]}]},
        ]})
    if occurred:
        items.append({"linkId": "occurred", "answer": [{"valueDateTime": occurred}]})
    items += [
        {"linkId": "affected", "answer": [{"valueInteger": answers.affected}]},
        {"linkId": "state_residents", "answer": [{"valueInteger": answers.state_residents}]},
        {"linkId": "conclusion", "answer": [coding(DISPOSITION_SYSTEM, answers.conclusion)]},
    ]
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "meta": {"tag": [dict(TAG)], "security": [dict(c) for c in SECURITY]},
        "identifier": {"system": FINDING_SYSTEM, "value": value},
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed",
        **({"subject": {"reference": patient}} if patient else {}),
        "authored": instant(now),
        **({"author": {"reference": author}} if author else {}),
        "item": items,
    }
    validate(resource)
    return Creation(value, resource, f"identifier={FINDING_SYSTEM}|{value}")


def notice_draft(task: TaskState, text: str, *, patient: str | None, disclosure: str | None,
                 organization: str | None, now: datetime) -> Creation:
    """The draft notice to the client (DocumentReference, docStatus preliminary): the
    164.404(c) contents in ``text``, for a person to complete, sign and send."""
    value = key(task, "breach-notice")
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "meta": {"tag": [dict(TAG)], "security": [dict(c) for c in SECURITY]},
        "identifier": [{"system": FINDING_SYSTEM, "value": value}],
        "status": "current",
        "docStatus": "preliminary",
        "type": {"coding": [dict(NOTICE_TYPE)], "text": "Draft notice of breach to the client"},
        **({"subject": {"reference": patient}} if patient else {}),
        "date": instant(now),
        **({"custodian": {"reference": organization}} if organization else {}),
        "description": "Draft notice of breach to the client (45 CFR 164.404)",
        "content": [{"attachment": {
            "contentType": "text/markdown; charset=utf-8", "language": "en",
            "data": base64.b64encode(text.encode()).decode("ascii"),
            "title": "Notice of breach (draft)", "creation": instant(now)}}],
        "context": {"related": [{"reference": ref} for ref in (disclosure, task.reference)
                                if ref]},
    }
    validate(resource)
    return Creation(value, resource, f"identifier={FINDING_SYSTEM}|{value}")


def disposition_transaction(task: TaskState, updated: dict[str, Any], *,
                            creations: tuple[Creation, ...] = (), author: str | None,
                            device: str | None, now: datetime,
                            with_questionnaire: bool = False) -> dict[str, Any]:
    """One transaction: the Questionnaire (once), the creations, the Task's update with
    ``If-Match`` on the version read, and one Provenance targeting all of them."""
    if not task.version:
        raise ValueError("the Task was read without a version; it cannot be updated safely")
    entries: list[dict[str, Any]] = []
    device_ref = device or urn(f"{DEVICE_SYSTEM}|{DEVICE_VALUE}")
    if device is None:
        entries.append(device_entry())
    if with_questionnaire:
        entries.append(questionnaire_entry())
    for creation in creations:
        entries.append({"fullUrl": creation.full_url, "resource": creation.resource,
                        "request": {"method": "POST", "url": creation.resource["resourceType"],
                                    "ifNoneExist": creation.condition}})
    entries.append({"resource": {**updated, "id": task.id},
                    "request": {"method": "PUT", "url": task.reference,
                                "ifMatch": f'W/"{task.version}"'}})
    entries.append(_provenance_entry(
        key(task, "provenance"), [task.reference, *(c.full_url for c in creations)],
        "UPDATE", author, device_ref, now))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _provenance_entry(value: str, targets: list[str], activity: str, author: str | None,
                      device_ref: str, now: datetime) -> dict[str, Any]:
    """The one Provenance of an office transaction, created conditionally on its tag `value`
    (R4 Provenance has no identifier): the officer as author, the app as assembler."""
    agents = ([_agent("author", author)] if author else []) + [
        _agent("assembler" if author else "author", device_ref)]
    provenance = {
        "resourceType": "Provenance",
        "meta": {"tag": [dict(TAG), {"system": PROVENANCE_TAG_SYSTEM, "code": value}],
                 "security": [dict(c) for c in SECURITY]},
        "target": [{"reference": target} for target in targets],
        "recorded": instant(now),
        "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                 "code": activity}]},
        "agent": agents,
    }
    validate(provenance)
    return {"fullUrl": urn(f"{PROVENANCE_TAG_SYSTEM}|{value}"), "resource": provenance,
            "request": {"method": "POST", "url": "Provenance",
                        "ifNoneExist": f"_tag={PROVENANCE_TAG_SYSTEM}|{value}"}}


def _agent(role: str, who: str) -> dict[str, Any]:
    return {"type": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
        "code": role}]}, "who": {"reference": who}}


def created_references(response: dict[str, Any]) -> list[str]:
    """``Type/id`` of every entry the transaction answered with a location."""
    out = []
    for entry in response.get("entry") or []:
        location = str(((entry or {}).get("response") or {}).get("location") or "")
        parts = [p for p in location.split("/") if p]
        if "_history" in parts:
            parts = parts[:parts.index("_history")]
        if len(parts) >= 2:
            out.append(f"{parts[-2]}/{parts[-1]}")
    return out


def notice_text(*, client: str, occurred: str, discovered: str, recipient: str,
                kinds: list[str], practice: str, deadline: str) -> str:
    """The notice to the client with the contents 164.404(c)(1) requires, in plain language;
    the parts a person must complete are marked."""
    todo = "[TO COMPLETE]"
    lines = [
        "# Notice of a breach of your health information (draft)",
        "",
        f"To: {client}",
        "",
        "## What happened",
        f"On {occurred}, information from your record was disclosed to {recipient} without "
        f"your authorization or another legal basis. We discovered this on {discovered}. "
        f"{todo} Describe briefly how it happened.",
        "",
        "## What information was involved",
        *([f"- {kind}" for kind in kinds] or [f"- {todo} The kinds of information involved."]),
        f"{todo} Confirm the kinds of information (for example name, dates, diagnosis, "
        "treatment notes).",
        "",
        "## What you can do",
        f"{todo} Steps you should take to protect yourself from possible harm.",
        "",
        "## What we are doing",
        f"{todo} What the practice is doing to investigate, to reduce the harm, and to "
        "prevent it from happening again.",
        "",
        "## How to reach us",
        f"{practice}: {todo} a toll-free telephone number, an email address, a web site or a "
        "postal address.",
        "",
        f"This notice must reach you by {deadline} (45 CFR 164.404(b)).",
    ]
    return "\n".join(lines) + "\n"


def answers_of(response: dict[str, Any]) -> dict[str, Any]:
    """A QuestionnaireResponse of ours, flattened: linkId -> the first answer's value (a
    coding's code, a string, a number or a boolean)."""
    out: dict[str, Any] = {}

    def walk(items: Any) -> None:
        for item in items or []:
            if not isinstance(item, dict):
                continue
            for answer in item.get("answer") or []:
                if not isinstance(answer, dict):
                    continue
                for name, value in answer.items():
                    if name == "valueCoding" and isinstance(value, dict):
                        out[str(item.get("linkId"))] = value.get("code")
                    elif name.startswith("value"):
                        out[str(item.get("linkId"))] = value
                break
            walk(item.get("item"))

    walk(response.get("item"))
    return out


def notice_state(document: dict[str, Any]) -> str:
    """Where a notice DocumentReference stands: a draft until someone finalises it."""
    doc_status = document.get("docStatus")
    if doc_status == "preliminary":
        return "draft, not sent"
    if doc_status in ("final", "amended"):
        return "final"
    return str(doc_status or document.get("status") or "unknown")


ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#: Labels an officer may say the signed form names (psychotherapy notes, 42 CFR Part 2).
SPECIFIC_LABELS = {"PSYTHPN": "psychotherapy notes", "42CFRPart2": "42 CFR Part 2 records"}
PART2_POLICY = "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2"


@dataclass(frozen=True)
class SignedForm:
    """A signed authorization kept outside the record, as the officer attaches it: the scan
    of the form and the terms it states."""

    data: bytes
    content_type: str
    title: str
    signed: str  # date
    expires: str  # date
    signer: str  # Patient/... or RelatedPerson/...
    labels: tuple[str, ...] = ()  # keys of SPECIFIC_LABELS the form names


def authorization_on_file(task: TaskState, form: SignedForm, *, patient: str,
                          recipient: str | None, purposes: tuple[str, ...],
                          organization: str | None, now: datetime) -> Creation:
    """The Consent that records a signed authorization kept outside the record (CONTRACT 7,
    ``authorization-on-file``): active, a HIPAA authorization, signed by its
    ``sourceAttachment`` (the scan, 1.2 check 3), permitting the disclosure's recipient and
    purposes from the day it was signed to its expiry. Deliberately without the consent-gap
    tag: it records what a person signed, and the engine must read it."""
    # The same form submitted twice is one Consent; another form (or other terms) another.
    terms = "\n".join((hashlib.sha256(form.data).hexdigest(), form.signed, form.expires,
                       form.signer, *form.labels))
    value = key(task, f"authorization-on-file\n{terms}")
    provision: dict[str, Any] = {
        "type": "permit",
        "period": {"start": form.signed, "end": form.expires},
        "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                                "code": "disclose"}]}],
    }
    if recipient:
        provision["actor"] = [{"role": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP"}]}, "reference": {"reference": recipient}}]
    if purposes:
        provision["purpose"] = [{"system": ACT_REASON, "code": code} for code in purposes]
    if form.labels:
        provision["securityLabel"] = [{"system": ACT_CODE, "code": code}
                                      for code in form.labels]
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "meta": {"security": [dict(c) for c in SECURITY]},
        "identifier": [{"system": FINDING_SYSTEM, "value": value}],
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
        "patient": {"reference": patient},
        "dateTime": form.signed,
        "performer": [{"reference": form.signer}],
        **({"organization": [{"reference": organization}]} if organization else {}),
        "sourceAttachment": {
            "contentType": form.content_type,
            "data": base64.b64encode(form.data).decode("ascii"),
            "title": form.title, "creation": instant(now)},
        "policyRule": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentpolicycodes",
            "code": "hipaa-auth"}]},
        **({"policy": [{"uri": PART2_POLICY}]} if "42CFRPart2" in form.labels else {}),
        "provision": provision,
    }
    validate(resource)
    return Creation(value, resource, f"identifier={FINDING_SYSTEM}|{value}")


def creation_transaction(task: TaskState, creation: Creation, *, author: str | None,
                         device: str | None, now: datetime) -> dict[str, Any]:
    """A creation on its own (conditional), with a Provenance naming the officer and the app:
    what the officer attaches before the re-check decides whether the Task completes."""
    entries: list[dict[str, Any]] = []
    device_ref = device or urn(f"{DEVICE_SYSTEM}|{DEVICE_VALUE}")
    if device is None:
        entries.append(device_entry())
    entries.append({"fullUrl": creation.full_url, "resource": creation.resource,
                    "request": {"method": "POST", "url": creation.resource["resourceType"],
                                "ifNoneExist": creation.condition}})
    entries.append(_provenance_entry(key(task, f"provenance-{creation.value}"),
                                     [creation.full_url], "CREATE", author, device_ref, now))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
