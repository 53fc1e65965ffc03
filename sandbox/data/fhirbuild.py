"""Small builders for the FHIR R4 JSON the synthetic charts are made of.

Plain dicts, no validation: the generator must stay fast at 10,000 patients, and the unit tests
validate a sample with fhir.resources instead. Shapes follow the acceptance examples (IHE BALP
disclosure AuditEvents, Consents with provision trees, signature Provenances).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

Json = dict[str, Any]

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PRIVACY_LAW = "http://terminology.hl7.org/CodeSystem/v3-ActUSPrivacyLaw"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
LOINC = "http://loinc.org"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_POLICY = "http://terminology.hl7.org/CodeSystem/consentpolicycodes"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
CONSENT_CATEGORY = "http://terminology.hl7.org/CodeSystem/consentcategorycodes"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
COMM_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
LEGAL_INSTRUMENT = "https://consent-gap.dev/fhir/CodeSystem/legal-instrument"
SCENARIO_TAG = "https://consent-gap.dev/fhir/sandbox-scenario"
EXPECTED_TAG = "https://consent-gap.dev/fhir/sandbox-expected"
PART2_POLICY = "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2"
EHR = "https://ehr.example/fhir"

DISPLAY = {
    "TREAT": "treatment", "ETREAT": "emergency treatment", "COC": "coordination of care",
    "HPAYMT": "healthcare payment", "CLMATTCH": "claim attachment",
    "COVAUTH": "coverage authorization", "HOPERAT": "healthcare operations", "TRAIN": "training",
    "THREAT": "threat", "PUBHLTH": "public health", "HLEGAL": "legal", "GOV": "government",
    "PATRQT": "patient requested", "FAMRQT": "family requested", "PWATRNY": "power of attorney",
    "HRESCH": "healthcare research", "ERTREAT": "emergency room treatment",
    "MH": "mental health information sensitivity",
    "PSYTHPN": "psychotherapy note information sensitivity",
    "HIPAAPsyNotes": "HIPAA psychotherapy notes", "42CFRPart2": "42 CFR Part2",
    "SUD": "substance use disorder information sensitivity",
    "ADOL": "adolescent information sensitivity",
    "SDV": "sexual assault, abuse, or domestic violence information sensitivity",
}


def instant(t: dt.datetime) -> str:
    """FHIR instant in UTC with a Z, as the examples write it."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def coding(system: str, code: str, display: str | None = None) -> Json:
    out: Json = {"system": system, "code": code}
    shown = display or DISPLAY.get(code)
    if shown:
        out["display"] = shown
    return out


def concept(system: str, code: str, display: str | None = None) -> Json:
    return {"coding": [coding(system, code, display)]}


def ref(target: str, display: str | None = None) -> Json:
    out: Json = {"reference": target}
    if display:
        out["display"] = display
    return out


def label(code: str) -> Json:
    """A security label coding: ActCode, or v3-Confidentiality for R/N/V."""
    if code in ("R", "N", "V"):
        return coding(CONFIDENTIALITY, code, {"R": "restricted", "N": "normal",
                                              "V": "very restricted"}[code])
    if code.startswith("uslaw:"):
        return coding(PRIVACY_LAW, code.removeprefix("uslaw:"))
    return coding(ACT_CODE, code)


def scenario_tag(name: str) -> Json:
    return {"tag": [coding(SCENARIO_TAG, name)]}


def address(state: str, city: str, line: str, postal: str) -> Json:
    return {"line": [line], "city": city, "state": state, "postalCode": postal, "country": "US"}


def organization(oid: str, name: str, kind: str, addr: Json,
                 identifier: Json | None = None) -> Json:
    org: Json = {"resourceType": "Organization", "id": oid, "active": True, "name": name,
                 "type": [{"text": kind}], "address": [addr]}
    if identifier:
        org["identifier"] = [identifier]
    return org


def practitioner(pid: str, family: str, given: str, suffix: str, staff_id: str) -> Json:
    return {"resourceType": "Practitioner", "id": pid, "active": True,
            "identifier": [{"system": f"{EHR}/sid/staff-id", "value": staff_id}],
            "name": [{"family": family, "given": [given], "suffix": [suffix]}]}


def practitioner_role(rid: str, practitioner_id: str, org_id: str, code: str,
                      text: str) -> Json:
    return {"resourceType": "PractitionerRole", "id": rid, "active": True,
            "practitioner": ref(f"Practitioner/{practitioner_id}"),
            "organization": ref(f"Organization/{org_id}"),
            "code": [{"coding": [coding("http://nucc.org/provider-taxonomy", code)],
                      "text": text}]}


def patient(pid: str, mrn: str, family: str, given: str, gender: str, birth: dt.date,
            addr: Json) -> Json:
    return {"resourceType": "Patient", "id": pid,
            "identifier": [{"system": f"{EHR}/sid/mrn", "value": mrn}],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "gender": gender, "birthDate": birth.isoformat(), "address": [addr]}


def related_person(rid: str, patient_id: str, family: str, given: str,
                   relationship: Json) -> Json:
    return {"resourceType": "RelatedPerson", "id": rid, "active": True,
            "patient": ref(f"Patient/{patient_id}"),
            "name": [{"family": family, "given": [given]}], "relationship": [relationship]}


def labelled_meta(labels: list[str], extra: Json | None = None) -> Json:
    meta: Json = {"security": [label(c) for c in labels]}
    if extra:
        meta.update(extra)
    return meta


def document(did: str, patient_id: str, when: dt.datetime, type_code: Json, title: str,
             labels: list[str], author: str | None, *, status: str = "current",
             doc_status: str | None = None, related: list[str] | None = None,
             description: str | None = None, content_type: str = "application/pdf") -> Json:
    """A DocumentReference; labels go both in meta.security and securityLabel, as the examples."""
    doc: Json = {"resourceType": "DocumentReference", "id": did}
    if labels:
        doc["meta"] = labelled_meta(labels)
    doc["status"] = status
    if doc_status:
        doc["docStatus"] = doc_status
    doc["type"] = type_code
    doc["subject"] = ref(f"Patient/{patient_id}")
    doc["date"] = instant(when)
    if author:
        doc["author"] = [ref(author)]
    if description:
        doc["description"] = description
    if labels:
        doc["securityLabel"] = [{"coding": [label(c)]} for c in labels]
    doc["content"] = [{"attachment": {"contentType": content_type, "title": title,
                                      "creation": instant(when)}}]
    if related:
        doc["context"] = {"related": [ref(r) for r in related]}
    return doc


def observation(oid: str, patient_id: str, when: dt.datetime, text: str, value: str,
                labels: list[str], performer: str) -> Json:
    return {"resourceType": "Observation", "id": oid, "meta": labelled_meta(labels),
            "status": "final",
            "category": [concept("http://terminology.hl7.org/CodeSystem/observation-category",
                                 "survey", "Survey")],
            "code": {"text": text}, "subject": ref(f"Patient/{patient_id}"),
            "effectiveDateTime": instant(when), "performer": [ref(performer)],
            "valueString": value}


def actor(role: str, who: Json) -> Json:
    return {"role": concept(PARTICIPATION, role), "reference": who}


def provision(*, kind: str | None = "permit", start: dt.datetime | None = None,
              end: dt.datetime | None = None, actors: list[Json] | None = None,
              purposes: list[str] | None = None, labels: list[str] | None = None,
              action: str | None = "disclose", nested: list[Json] | None = None,
              data: list[str] | None = None, data_period: tuple[dt.datetime, dt.datetime]
              | None = None, classes: list[Json] | None = None,
              codes: list[Json] | None = None) -> Json:
    """One provision node; None leaves the element out (the contract distinguishes absence)."""
    node: Json = {}
    if kind:
        node["type"] = kind
    if start or end:
        node["period"] = {k: instant(v) for k, v in (("start", start), ("end", end)) if v}
    if actors:
        node["actor"] = actors
    if action:
        node["action"] = [concept(CONSENT_ACTION, action, action.capitalize())]
    if labels:
        node["securityLabel"] = [label(c) for c in labels]
    if purposes:
        node["purpose"] = [coding(ACT_REASON, p) for p in purposes]
    if classes:
        node["class"] = classes
    if codes:
        node["code"] = codes
    if data_period:
        node["dataPeriod"] = {"start": instant(data_period[0]), "end": instant(data_period[1])}
    if data:
        node["data"] = [{"meaning": "instance", "reference": ref(d)} for d in data]
    if nested:
        node["provision"] = nested
    return node


def consent(cid: str, patient_id: str, signed: dt.datetime, performer: str, org: str, *,
            status: str = "active", scope: str = "patient-privacy",
            categories: list[Json] | None = None, policy_rule: str | None = "hipaa-auth",
            policy_uri: str | None = None, prov: Json | None = None,
            source: Json | None = None, meta: Json | None = None, text: str | None = None
            ) -> Json:
    c: Json = {"resourceType": "Consent", "id": cid}
    if meta:
        c["meta"] = meta
    if text:
        c["text"] = {"status": "generated",
                     "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{text}</p></div>'}
    c["status"] = status
    c["scope"] = concept(CONSENT_SCOPE, scope, {"patient-privacy": "Privacy Consent",
                                                "treatment": "Treatment"}.get(scope))
    c["category"] = categories or [concept(LOINC, "64292-6", "Release of information consent")]
    c["patient"] = ref(f"Patient/{patient_id}")
    c["dateTime"] = instant(signed)
    c["performer"] = [ref(performer)]
    c["organization"] = [ref(org)]
    if source:
        c.update(source)
    c["policy"] = [{"uri": policy_uri or "https://clinic.example/forms/roi-authorization/v3"}]
    if policy_rule:
        c["policyRule"] = concept(CONSENT_POLICY, policy_rule)
    if prov is not None:
        c["provision"] = prov
    return c


def signature_provenance(pid: str, target: str, signer: str, when: dt.datetime,
                         *, signed: bool = True) -> Json:
    """A Provenance on a Consent; with signed=False it records the paperwork but no signature."""
    p: Json = {"resourceType": "Provenance", "id": pid, "target": [ref(target)],
               "recorded": instant(when + dt.timedelta(minutes=1)),
               "activity": concept("http://terminology.hl7.org/CodeSystem/v3-DocumentCompletion",
                                   "AU" if signed else "IN",
                                   "authenticated" if signed else "incomplete"),
               "agent": [{"type": concept(
                   "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                   "author", "Author"), "who": ref(signer)}]}
    if signed:
        p["signature"] = [{
            "type": [coding("urn:iso-astm:E1762-95:2013", "1.2.840.10065.1.12.1.7",
                            "Consent Signature")],
            "when": instant(when), "who": ref(signer), "sigFormat": "application/jose",
            "data": "ZXlKaGJHY2lPaUpGVXpNNE5DSjkuc2FuZGJveC1zaWduYXR1cmU="}]
    return p


def audit_entity(what: Json, *, person: bool = False, name: str | None = None,
                 labels: list[str] | None = None) -> Json:
    e: Json = {"what": what}
    if person:
        e["type"] = coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1",
                           "Person")
        e["role"] = coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient")
    else:
        e["type"] = coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2",
                           "System Object")
        e["role"] = coding("http://terminology.hl7.org/CodeSystem/object-role", "3", "Report")
    if labels:
        e["securityLabel"] = [label(c) for c in labels]
    if name:
        e["name"] = name
    return e


def disclosure_event(aid: str, when: dt.datetime, purposes: list[Json], source: str,
                     destination: Json, entities: list[Json], observer: str, scenario: str,
                     *, outcome: str = "0", outcome_desc: str | None = None) -> Json:
    """A BALP PrivacyDisclosure.Source AuditEvent, as the acceptance examples shape it."""
    ae: Json = {"resourceType": "AuditEvent", "id": aid, "meta": scenario_tag(scenario),
                "type": coding(DCM, "110106", "Export"),
                "subtype": [coding(LIFECYCLE, "disclose", "Disclose Record Lifecycle Event")],
                "action": "R", "period": {"start": instant(when)},
                "recorded": instant(when + dt.timedelta(seconds=65)), "outcome": outcome}
    if outcome_desc:
        ae["outcomeDesc"] = outcome_desc
    if purposes:
        ae["purposeOfEvent"] = purposes
    ae["agent"] = [
        {"type": concept(DCM, "110153", "Source Role ID"), "who": ref(source),
         "requestor": False},
        {"type": concept(DCM, "110152", "Destination Role ID"), "who": destination,
         "requestor": True},
    ]
    ae["source"] = {"observer": ref(observer),
                    "type": [coding("http://terminology.hl7.org/CodeSystem/security-source-type",
                                    "4", "Application Server")]}
    ae["entity"] = entities
    return ae


def communication(cid: str, patient_id: str, about: list[str], recipient: str, sender: str,
                  *, status: str, sent: dt.datetime | None, reason: str | None,
                  text: str) -> Json:
    c: Json = {"resourceType": "Communication", "id": cid, "status": status}
    if reason:
        c["statusReason"] = {"text": reason}
    c["category"] = [concept(COMM_CATEGORY, "notification", "Notification")]
    c["subject"] = ref(f"Patient/{patient_id}")
    c["about"] = [ref(a) for a in about]
    if sent:
        c["sent"] = instant(sent)
    c["recipient"] = [ref(recipient)]
    c["sender"] = ref(sender)
    c["payload"] = [{"contentString": text}]
    return c
