"""A small FHIR R4 builder for tests, written from CONTRACT.md (not from the engine).

Every function returns a plain resource dict. Defaults describe the "happy" case, so a test row
states only what it changes: `consent()` with no arguments is an active, signed, complete
hipaa-auth for the default patient naming the default recipient, purpose PATRQT and an expiry;
`disclosure()` is a BALP export of one labelled DocumentReference to that recipient, inside the
Consent's period. Codes are written as bare codes where the system is obvious; `coding()` takes
an explicit system where a test needs one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

Resource = dict[str, Any]

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
US_PRIVACY_LAW = "http://terminology.hl7.org/CodeSystem/v3-ActUSPrivacyLaw"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
LOINC = "http://loinc.org"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CATEGORY = "http://terminology.hl7.org/CodeSystem/consentcategorycodes"
POLICY = "http://terminology.hl7.org/CodeSystem/consentpolicycodes"
ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
CS = "https://consent-gap.dev/fhir"
INSTRUMENT = f"{CS}/CodeSystem/legal-instrument"
CHANNEL = f"{CS}/CodeSystem/disclosure-channel"
CG_TAG = {"system": f"{CS}/tag", "code": "consent-gap"}
PART2_URI = "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2"

# Defaults shared by the builders.
PATIENT = "Patient/p1"
RECIPIENT = "Organization/org-rcpt"
SOURCE = "Practitioner/pr-src"
DATA = "DocumentReference/d1"
SIGNED = "2025-01-10T12:00:00Z"
START = "2025-01-10T00:00:00Z"
END = "2026-01-10T00:00:00Z"
WHEN = "2025-06-01T10:00:00Z"

#: label shorthand -> (system, code)
LABEL_SYSTEMS = {"N": CONFIDENTIALITY, "R": CONFIDENTIALITY, "V": CONFIDENTIALITY}


def coding(system: str, code: str) -> dict:
    return {"system": system, "code": code}


def label(code: str | tuple[str, str]) -> dict:
    """`"MH"` -> ActCode MH; `"R"` -> Confidentiality R; `(system, code)` as given."""
    if isinstance(code, tuple):
        return coding(*code)
    return coding(LABEL_SYSTEMS.get(code, ACT_CODE), code)


def ref(reference: str | None = None, identifier: tuple[str, str] | None = None) -> dict:
    out: dict = {}
    if reference:
        out["reference"] = reference
    if identifier:
        out["identifier"] = {"system": identifier[0], "value": identifier[1]}
    return out


def _id(reference: str) -> str:
    return reference.split("/", 1)[1]


# --- people and organisations ---------------------------------------------------------------

def patient(reference: str = PATIENT, birth_date: str | None = "1980-04-01",
            identifier: tuple[str, str] | None = None) -> Resource:
    res: Resource = {"resourceType": "Patient", "id": _id(reference)}
    if birth_date:
        res["birthDate"] = birth_date
    if identifier:
        res["identifier"] = [{"system": identifier[0], "value": identifier[1]}]
    return res


def practitioner(reference: str = SOURCE) -> Resource:
    return {"resourceType": "Practitioner", "id": _id(reference)}


def organization(reference: str = RECIPIENT,
                 identifier: tuple[str, str] | None = None) -> Resource:
    res: Resource = {"resourceType": "Organization", "id": _id(reference), "name": "Recipient"}
    if identifier:
        res["identifier"] = [{"system": identifier[0], "value": identifier[1]}]
    return res


def related_person(reference: str = "RelatedPerson/rp1", relationship: str | None = "GUARD",
                   patient_ref: str = PATIENT) -> Resource:
    res: Resource = {"resourceType": "RelatedPerson", "id": _id(reference),
                     "patient": {"reference": patient_ref}}
    if relationship:
        res["relationship"] = [{"coding": [coding(ROLE_CODE, relationship)]}]
    return res


# --- data, instruments, documentation, notices ----------------------------------------------

def document(reference: str = DATA, *, labels: Iterable = ("MH",), meta_labels: Iterable = (),
             type_coding: tuple[str, str] = (LOINC, "34133-9"), status: str = "current",
             doc_status: str | None = None, related: Iterable[str] = (), tagged: bool = False,
             date: str | None = "2025-05-01T00:00:00Z", patient_ref: str = PATIENT) -> Resource:
    """A DocumentReference: data (labels), a legal instrument (type) or a documentation note
    (`related` AuditEvents)."""
    res: Resource = {"resourceType": "DocumentReference", "id": _id(reference),
                     "status": status, "type": {"coding": [coding(*type_coding)]},
                     "subject": {"reference": patient_ref},
                     "content": [{"attachment": {"contentType": "text/plain", "title": "t"}}]}
    if date:
        res["date"] = date
    if doc_status:
        res["docStatus"] = doc_status
    if labels:
        res["securityLabel"] = [{"coding": [label(c)]} for c in labels]
    meta: dict = {}
    if meta_labels:
        meta["security"] = [label(c) for c in meta_labels]
    if tagged:
        meta["tag"] = [dict(CG_TAG)]
    if meta:
        res["meta"] = meta
    if related:
        res["context"] = {"related": [{"reference": r} for r in related]}
    return res


def instrument(reference: str, kind: str, date: str | None = "2025-05-01T00:00:00Z",
               patient_ref: str = PATIENT) -> Resource:
    """A legal instrument: `court-order`, `warrant`, `part2-court-order`, `subpoena`,
    `satisfactory-assurance` or `administrative-request`."""
    return document(reference, labels=(), type_coding=(INSTRUMENT, kind), date=date,
                    patient_ref=patient_ref)


def documentation_note(ae: str = "AuditEvent/ae1", reference: str = "DocumentReference/doc-note",
                       **kw: Any) -> Resource:
    return document(reference, labels=(), type_coding=(LOINC, "11506-3"), related=(ae,), **kw)


def observation(reference: str = "Observation/o1", code: tuple[str, str] = (LOINC, "72133-2"),
                meta_labels: Iterable = (), patient_ref: str = PATIENT) -> Resource:
    res: Resource = {"resourceType": "Observation", "id": _id(reference), "status": "final",
                     "code": {"coding": [coding(*code)]}, "subject": {"reference": patient_ref}}
    if meta_labels:
        res["meta"] = {"security": [label(c) for c in meta_labels]}
    return res


def notice(ae: str = "AuditEvent/ae1", reference: str = "Communication/n1", *,
           status: str = "completed", recipient: str = PATIENT,
           status_reason: str | None = None, tagged: bool = False,
           patient_ref: str = PATIENT) -> Resource:
    """A client notice about a disclosure (1.4)."""
    res: Resource = {"resourceType": "Communication", "id": _id(reference), "status": status,
                     "subject": {"reference": patient_ref}, "about": [{"reference": ae}],
                     "recipient": [{"reference": recipient}]}
    if status_reason:
        res["statusReason"] = {"text": status_reason}
    if tagged:
        res["meta"] = {"tag": [dict(CG_TAG)]}
    return res


# --- the disclosure --------------------------------------------------------------------------

def disclosure(reference: str = "AuditEvent/ae1", *, when: str | None = WHEN,
               recorded: str | None = None, patient_ref: str | None = PATIENT,
               recipient: str | None = RECIPIENT,
               recipient_identifier: tuple[str, str] | None = None,
               purposes: Iterable[str] = ("PATRQT",), other_purposes: Iterable[dict] = (),
               data: Iterable[str] = (DATA,), entity_labels: dict[str, Iterable] | None = None,
               instruments: Iterable[str] = (), notify: Iterable[str] = (SOURCE,),
               outcome: str | None = "0", type_code: str = "110106",
               subtype: str | None = "disclose") -> Resource:
    """A BALP PrivacyDisclosure.Source AuditEvent (CONTRACT.md 1.1).

    `data` and `instruments` are the references of the disclosed entities; `entity_labels`
    maps one of them to labels carried on the entity itself (`entity.securityLabel`).
    """
    res: Resource = {"resourceType": "AuditEvent", "id": _id(reference),
                     "type": coding(DCM, type_code), "action": "R",
                     "recorded": recorded or when or "2025-06-01T10:00:30Z"}
    if subtype:
        res["subtype"] = [coding(LIFECYCLE, subtype)]
    if when:
        res["period"] = {"start": when}
    if outcome is not None:
        res["outcome"] = outcome
    pur = [{"coding": [coding(ACT_REASON, p)]} for p in purposes]
    pur += [{"coding": [c]} for c in other_purposes]
    if pur:
        res["purposeOfEvent"] = pur
    agents = [{"type": {"coding": [coding(DCM, "110153")]}, "who": {"reference": who},
               "requestor": False} for who in notify]
    if recipient or recipient_identifier:
        agents.append({"type": {"coding": [coding(DCM, "110152")]},
                       "who": ref(recipient, recipient_identifier), "requestor": True})
    res["agent"] = agents
    res["source"] = {"observer": {"reference": "Organization/org-src"}}
    entities = []
    if patient_ref:
        entities.append({"what": {"reference": patient_ref},
                         "role": coding("http://terminology.hl7.org/CodeSystem/object-role",
                                        "1")})
    for what in [*data, *instruments]:
        ent: dict = {"what": {"reference": what}}
        if entity_labels and what in entity_labels:
            ent["securityLabel"] = [label(c) for c in entity_labels[what]]
        entities.append(ent)
    res["entity"] = entities
    return res


_UNSET: Any = object()


def sent_disclosure(reference: str = "Communication/cm1", *, sent: str | None = WHEN,
                    status: str = "completed", channel: tuple[str, str] | None = (
                        CHANNEL, "release-of-information"),
                    patient_ref: str | None = PATIENT, recipients: Any = _UNSET,
                    purposes: Iterable[str] = ("PATRQT",), other_purposes: Iterable[dict] = (),
                    data: Iterable[str] = (DATA,), based_on: Iterable[str] = (),
                    instruments: Iterable[str] = (), strings: Iterable[str] = (),
                    attachments: int = 0, sender: str | None = SOURCE,
                    about: Iterable[str] = (), tagged: bool = False) -> Resource:
    """A disclosure recorded as a Communication sent out (CONTRACT.md 1.1, second table).

    `recipients` is a list of `ref()` dicts (default: the one recipient organisation);
    `data` and `instruments` become `payload.contentReference`s, `based_on` `basedOn`s,
    `strings` `payload.contentString`s and `attachments` that many `contentAttachment`s."""
    res: Resource = {"resourceType": "Communication", "id": _id(reference), "status": status}
    if channel:
        res["category"] = [{"coding": [coding(*channel)]}]
    if patient_ref:
        res["subject"] = {"reference": patient_ref}
    if sent:
        res["sent"] = sent
    res["recipient"] = [ref(RECIPIENT)] if recipients is _UNSET else list(recipients)
    reasons = [{"coding": [coding(ACT_REASON, p)]} for p in purposes]
    reasons += [{"coding": [c]} for c in other_purposes]
    if reasons:
        res["reasonCode"] = reasons
    payload: list[dict] = [{"contentReference": {"reference": r}}
                           for r in [*data, *instruments]]
    payload += [{"contentString": text} for text in strings]
    payload += [{"contentAttachment": {"contentType": "application/pdf", "title": f"a{i}"}}
                for i in range(attachments)]
    if payload:
        res["payload"] = payload
    if based_on:
        res["basedOn"] = [{"reference": r} for r in based_on]
    if sender:
        res["sender"] = {"reference": sender}
    if about:
        res["about"] = [{"reference": r} for r in about]
    if tagged:
        res["meta"] = {"tag": [dict(CG_TAG)]}
    return res


# --- Consents --------------------------------------------------------------------------------

def actor(reference: str | None = RECIPIENT, role: str = "IRCP",
          identifier: tuple[str, str] | None = None) -> dict:
    return {"role": {"coding": [coding(PARTICIPATION, role)]},
            "reference": ref(reference, identifier)}


def provision(type_: str | None = "permit", *, start: str | None = START,
              end: str | None = END, recipients: Iterable[str] = (RECIPIENT,),
              actors: Iterable[dict] = (), purposes: Iterable[str] = ("PATRQT",),
              labels: Iterable = (), classes: Iterable[tuple[str, str]] = (),
              codes: Iterable[tuple[str, str]] = (), data: Iterable[str] = (),
              data_meaning: str = "instance", actions: Iterable[str] | None = ("disclose",),
              data_period: dict | None = None, provisions: Iterable[dict] = ()) -> dict:
    """A provision node. Defaults make a complete permit; pass `start=None, end=None` for no
    period, `recipients=()` for no actor, `purposes=()` for no purpose, `actions=None` for no
    action. Nested nodes usually want `nested()` (no defaults)."""
    node: dict = {}
    if type_:
        node["type"] = type_
    if start or end:
        node["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    act = [actor(r) for r in recipients] + list(actors)
    if act:
        node["actor"] = act
    if actions is not None:
        node["action"] = [{"coding": [coding(ACTION, a)]} for a in actions]
    if labels:
        node["securityLabel"] = [label(c) for c in labels]
    if purposes:
        node["purpose"] = [coding(ACT_REASON, p) for p in purposes]
    if classes:
        node["class"] = [coding(*c) for c in classes]
    if codes:
        node["code"] = [{"coding": [coding(*c)]} for c in codes]
    if data_period:
        node["dataPeriod"] = data_period
    if data:
        node["data"] = [{"meaning": data_meaning, "reference": {"reference": d}} for d in data]
    if provisions:
        node["provision"] = list(provisions)
    return node


def nested(type_: str = "deny", **kw: Any) -> dict:
    """A nested provision that sets only what it is given (no default period, actor, purpose or
    action)."""
    base = {"start": None, "end": None, "recipients": (), "purposes": (), "actions": None}
    base.update(kw)
    return provision(type_, **base)


def consent(reference: str = "Consent/c1", *, patient_ref: str = PATIENT,
            status: str = "active", scope: str | None = "patient-privacy",
            categories: Iterable[tuple[str, str]] = ((LOINC, "64292-6"),),
            policy_rule: str | None = "hipaa-auth", date_time: str | None = SIGNED,
            performers: Iterable[str] = (PATIENT,), signed: bool = True,
            prov: dict | None = _UNSET, policy_uri: str | None = None,
            last_updated: str | None = None) -> Resource:
    """A Consent. `signed=True` sets `sourceAttachment` (signed on its own, 1.2 check 3); for a
    Provenance signature use `signed=False` and add `signature()`. `prov=None` leaves out the
    provision entirely."""
    res: Resource = {"resourceType": "Consent", "id": _id(reference), "status": status,
                     "patient": {"reference": patient_ref}}
    if scope:
        res["scope"] = {"coding": [coding(SCOPE, scope)]}
    res["category"] = [{"coding": [coding(*c)]} for c in categories]
    if date_time:
        res["dateTime"] = date_time
    if performers:
        res["performer"] = [{"reference": p} for p in performers]
    if signed:
        res["sourceAttachment"] = {"contentType": "application/pdf", "title": "signed form"}
    if policy_rule:
        res["policyRule"] = {"coding": [coding(POLICY, policy_rule)]}
    if policy_uri:
        res["policy"] = [{"uri": policy_uri}]
    if last_updated:
        res["meta"] = {"lastUpdated": last_updated}
    p = provision() if prov is _UNSET else prov
    if p is not None:
        res["provision"] = p
    return res


def signature(target: str = "Consent/c1", when: str = SIGNED, who: str = PATIENT,
              reference: str | None = None, with_signature: bool = True) -> Resource:
    """A Provenance that signs `target` (1.2 check 3); its `signature.when` is the signing
    time used for ordering and for check 4."""
    res: Resource = {"resourceType": "Provenance",
                     "id": _id(reference) if reference else f"sig-{_id(target)}",
                     "target": [{"reference": target}], "recorded": when,
                     "agent": [{"who": {"reference": who}}]}
    if with_signature:
        res["signature"] = [{
            "type": [coding("urn:iso-astm:E1762-95:2013", "1.2.840.10065.1.12.1.7")],
            "when": when, "who": {"reference": who}, "sigFormat": "application/jose",
            "data": "c2lnbmVk"}]
    return res


def restriction(reference: str = "Consent/r1", *, rule: str = "hipaa-restrictions",
                prov: dict | None = None, **kw: Any) -> Resource:
    """A restriction (1.2 "Restrictions"): by default a deny root against the default recipient
    for HPAYMT and HOPERAT from START, no end."""
    if prov is None:
        prov = provision("deny", end=None, purposes=("HPAYMT", "HOPERAT"))
    return consent(reference, categories=((LOINC, "59284-0"),), policy_rule=rule, prov=prov,
                   **kw)


# --- bundles ---------------------------------------------------------------------------------

def bundle(*resources: Resource | Iterable[Resource], type_: str = "collection") -> Resource:
    """A Bundle of the given resources (nested iterables are flattened; None skipped)."""
    flat: list[Resource] = []
    for r in resources:
        if r is None:
            continue
        if isinstance(r, dict):
            flat.append(r)
        else:
            flat.extend(x for x in r if x is not None)
    return {"resourceType": "Bundle", "type": type_,
            "entry": [{"fullUrl": f"urn:test:{r['resourceType']}/{r['id']}",
                       "resource": copy.deepcopy(r)} for r in flat]}


def world(*extra: Resource | None, birth_date: str | None = "1980-04-01") -> list[Resource]:
    """The cast every scenario shares: the patient, the source practitioner, the recipient
    organisation and the default data document (MH-labelled), plus `extra`."""
    return [patient(birth_date=birth_date), practitioner(), organization(), document(),
            *[e for e in extra if e is not None]]


def renamed(value: Any, suffix: str) -> Any:
    """Every relative reference `Type/id` becomes `Type/id-suffix` (a chart loaded under ids of
    its own, so a test against the shared sandbox sees only its own resources)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if (key == "reference" and isinstance(item, str) and "/" in item
                    and not item.startswith(("http", "urn:", "#"))):
                rtype, rid = item.split("/", 1)
                out[key] = f"{rtype}/{rid}-{suffix}"
            else:
                out[key] = renamed(item, suffix)
        return out
    if isinstance(value, list):
        return [renamed(item, suffix) for item in value]
    return value


def register_app_device(fhir_base: str) -> str:
    """The app's Device, registered once (conditionally) straight on the server, as the scan's
    backend client registers it in a deployment before anyone uses the panel: a strict EHR (the
    sandbox launcher) refuses a Device to the panel's patient/ scopes, so the panel and the
    guide only look it up. Returns its reference."""
    from consent_gap.fhir import FhirClient
    from consent_gap.writeback import device_resource, device_search

    rtype, params = device_search()
    with FhirClient(fhir_base) as client:
        found = client.conditional_create(device_resource(), "&".join(
            f"{key}={value}" for key, value in params.items()))
    return f"{rtype}/{found.resource['id']}"
