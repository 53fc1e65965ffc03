"""An authorization prepared and signed (CONTRACT 6.5): the drafted Consent, the signature
Provenance, and the Consent's one update to active.

Why it looks like this:
- The draft is `proposed` and carries no `source[x]`: the rendered form is not attached, since
  an unsigned form must never count as a signature (1.2 check 3). Only the signature
  Provenance makes it signed.
- The draft is a conditional create on `CS/proposal|<proposal_id>-authorization`, so drafting
  the same proposal twice writes one Consent. Signing is one transaction: the signature
  Provenance, created conditionally on `<proposal_id>-signature`, and the Consent's update
  with `If-Match` on the version drafted, so a second signing (or a person's edit in between)
  fails instead of overwriting.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from consent_gap.writeback import (
    SECURITY,
    app_device,
    device_entries,
    in_compartment,
    urn,
    validate,
)
from consent_gap.writeback.records import (
    ACT_REASON,
    PARTICIPANT,
    PROPOSAL_SYSTEM,
    Planned,
    RecordError,
    _instant,
    _ref,
    provenance,
    recipient_reference,
)

if TYPE_CHECKING:
    from consent_gap.proposal import Proposal

LOINC = "http://loinc.org"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
POLICY = "http://terminology.hl7.org/CodeSystem/consentpolicycodes"
ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
US_PRIVACY_LAW = "http://terminology.hl7.org/CodeSystem/v3-ActUSPrivacyLaw"
PART2_URI = "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2"
SIGNATURE_TYPE = {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.7",
                  "display": "Consent Signature"}
#: Labels that an authorization must name for the data they mark (1.2 check 9).
SPECIAL_LABELS = frozenset({(ACT_CODE, "PSYTHPN"), (ACT_CODE, "HIPAAPsyNotes"),
                            (US_PRIVACY_LAW, "HIPAAPsyNotes"), (ACT_CODE, "42CFRPart2"),
                            (US_PRIVACY_LAW, "42CFRPart2")})
_PART2 = frozenset({(ACT_CODE, "42CFRPart2"), (US_PRIVACY_LAW, "42CFRPart2")})
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SIGNATURE_BYTES = 512 * 1024


def default_expiry(at: datetime) -> datetime:
    """6.5: one year after `at` when the clinician names no expiry."""
    try:
        return at.replace(year=at.year + 1)
    except ValueError:  # 29 February
        return at + timedelta(days=365)


def draft_consent(proposal: Proposal, proposal_id: str, *, expires: datetime, now: datetime,
                  performer: str | None = None, organization: str | None = None,
                  clinician: str | None = None, description: str | None = None,
                  labels: frozenset[tuple[str, str]] | None = None,
                  device: str | None = None) -> Planned:
    """The Consent of 6.5 (status proposed) and its Provenance, validated.

    `description` says in words what information is to be disclosed (164.508(c)(1)(i)); it
    goes in the narrative, which decides nothing: the provision keeps only what 6.5 lists,
    so the authorization covers exactly the proposal it was drafted for.

    `labels` are the counted labels of the data as the check read it (the proposal's and
    those of the records it names); without them, the proposal's own. When psychotherapy-note
    or Part 2 labels are among them the provision lists them, and with them the other labels
    the same data carries: check 9 wants every label of every disclosed item listed, and an
    authorization that names psychotherapy notes must still cover the note that carries
    them (the check after signing answers authorized, 6.5)."""
    if proposal.recipient is None or not proposal.purposes:
        raise RecordError("proposal: an authorization needs a recipient and a purpose")
    if expires <= proposal.at:
        raise RecordError("expires: must be after the disclosure's time (at)")
    signer = performer or proposal.patient
    if not (signer == proposal.patient or signer.startswith("RelatedPerson/")):
        raise RecordError("performer: the Patient or a RelatedPerson who may sign for them")
    who = recipient_reference(proposal.recipient)
    pool = frozenset(labels) if labels is not None else proposal.labels
    listed = sorted(pool) if not pool.isdisjoint(SPECIAL_LABELS) else []
    node: dict[str, Any] = {
        "type": "permit",
        "period": {"start": _instant(proposal.at), "end": _instant(expires)},
        "actor": [{"role": {"coding": [{"system": PARTICIPATION, "code": "IRCP",
                                        "display": "information recipient"}]},
                   "reference": who}],
        "action": [{"coding": [{"system": ACTION, "code": "disclose"}]}],
        "purpose": [{"system": ACT_REASON, "code": code} for code in proposal.purposes],
    }
    if listed:
        node["securityLabel"] = [{"system": s, "code": c} for s, c in listed]
    key = f"{proposal_id}-authorization"
    consent: dict[str, Any] = {
        "resourceType": "Consent",
        "meta": {"security": [dict(code) for code in SECURITY]},
        "identifier": [{"system": PROPOSAL_SYSTEM, "value": key}],
        "status": "proposed",
        "scope": {"coding": [{"system": SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "64292-6",
                                  "display": "Release of information consent"}]}],
        "patient": _ref(proposal.patient),
        "dateTime": _instant(now),
        "performer": [_ref(signer)],
        **({"organization": [_ref(organization)]} if organization else {}),
        "policyRule": {"coding": [{"system": POLICY, "code": "hipaa-auth"}]},
        "provision": node,
    }
    if not _PART2.isdisjoint(pool):
        consent["policy"] = [{"uri": PART2_URI}]
    if description:
        consent["text"] = {"status": "additional", "div": _div(description)}
    made = Planned("authorization", consent,
                   provenance(urn(f"{PROPOSAL_SYSTEM}|{key}"), key, now=now,
                              clinician=clinician, device=app_device(device),
                              patient=proposal.patient))
    validate(made.resource)
    validate(made.provenance)
    return made


def _div(text: str) -> str:
    from html import escape

    return (f'<div xmlns="http://www.w3.org/1999/xhtml"><p>Information to be disclosed: '
            f"{escape(text)}</p></div>")


def described(consent: dict[str, Any]) -> str | None:
    """The information an authorization drafted here describes (its narrative), as text."""
    import re
    from html import unescape

    div = (consent.get("text") or {}).get("div")
    if not isinstance(div, str):
        return None
    found = re.search(r"Information to be disclosed: (.*?)</p>", div, re.S)
    return unescape(found.group(1)) if found else None


def draft_transaction(draft: Planned, device: str | None = None) -> dict[str, Any]:
    """The draft and its Provenance, after the app's Device unless ``device`` is registered."""
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [*device_entries(device), *draft.entries()]}


def proposal_key(consent: dict[str, Any]) -> str | None:
    """The `<proposal_id>-authorization` value of a Consent drafted here, else None."""
    for identifier in consent.get("identifier") or []:
        value = identifier.get("value")
        if identifier.get("system") == PROPOSAL_SYSTEM and isinstance(value, str) \
                and value.endswith("-authorization"):
            return value
    return None


def signature_png(data: str) -> bytes:
    """The drawn signature, base64 PNG (a data: URL is accepted); RecordError otherwise."""
    text = (data or "").strip()
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if head != "data:image/png;base64":
            raise RecordError("signature: must be a PNG image")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise RecordError("signature: is not base64") from None
    if not raw.startswith(PNG_MAGIC):
        raise RecordError("signature: must be a PNG image")
    if len(raw) > MAX_SIGNATURE_BYTES:
        raise RecordError("signature: the image is too large")
    return raw


@dataclass(frozen=True)
class Signing:
    """The signing transaction's two parts."""

    provenance: dict[str, Any]
    consent: dict[str, Any]
    version: str
    device: str | None = None  # the registered Device; None: created inline

    def transaction(self) -> dict[str, Any]:
        key = self.provenance["meta"]["tag"][0]["code"]
        rid = self.consent["id"]
        return {"resourceType": "Bundle", "type": "transaction", "entry": [
            *device_entries(self.device),
            {"fullUrl": urn(f"{PROPOSAL_SYSTEM}|{key}"), "resource": self.provenance,
             "request": {"method": "POST", "url": "Provenance",
                         "ifNoneExist": f"_tag={PROPOSAL_SYSTEM}|{key}"}},
            {"fullUrl": f"Consent/{rid}", "resource": self.consent,
             "request": {"method": "PUT", "url": f"Consent/{rid}",
                         "ifMatch": f'W/"{self.version}"'}},
        ]}


def sign(consent: dict[str, Any], *, signer: str, png: bytes, now: datetime,
         clinician: str | None = None, version: str | None = None,
         device: str | None = None) -> Signing:
    """The signature Provenance and the Consent made active, for the drafted `consent` as
    read from the server. RecordError when it is not a draft of ours, or the signer is not
    the one the draft names."""
    key = proposal_key(consent)
    if key is None:
        raise RecordError("consent: was not drafted by consent-gap; sign it in the EHR")
    if consent.get("status") != "proposed":
        raise RecordError(f"consent: is {consent.get('status')}, not a draft awaiting signature")
    performers = [p.get("reference") for p in consent.get("performer") or []]
    if signer not in performers:
        raise RecordError("signer: must be the person the authorization names "
                          f"({', '.join(p for p in performers if p)})")
    current = str((consent.get("meta") or {}).get("versionId") or "")
    # The one update is conditional on the version drafted: the caller's (the draft's answer
    # named it), else the first, which a conditional create writes; a Consent someone has
    # edited since is never overwritten (the server answers 412 to a stale If-Match).
    drafted = version or ("1" if current in ("", "1") else "")
    if not drafted:
        raise RecordError("version: the authorization changed since it was drafted; send the "
                          "version the draft answered, or check again")
    pid = key.removesuffix("-authorization")
    rid = consent["id"]
    registered, device = device, app_device(device)
    agents = [{"type": {"coding": [{"system": PARTICIPANT, "code": "attester"}]},
               "who": _ref(signer)}]
    if clinician:
        agents.append({"type": {"coding": [{"system": PARTICIPANT, "code": "verifier"}]},
                       "who": _ref(clinician)})
    agents.append({"type": {"coding": [{"system": PARTICIPANT, "code": "assembler"}]},
                   "who": _ref(device)})
    signature = {
        "resourceType": "Provenance",
        "meta": {"tag": [{"system": PROPOSAL_SYSTEM, "code": f"{pid}-signature"}],
                 "security": [dict(code) for code in SECURITY]},
        "target": in_compartment([f"Consent/{rid}"],
                                 (consent.get("patient") or {}).get("reference")),
        "recorded": _instant(now),
        "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                 "v3-DataOperation", "code": "UPDATE"}]},
        "agent": agents,
        "signature": [{
            "type": [dict(SIGNATURE_TYPE)],
            "when": _instant(now),
            "who": _ref(signer),
            "sigFormat": "image/png",
            "data": base64.b64encode(png).decode("ascii"),
        }],
    }
    active = copy.deepcopy(consent)
    active["status"] = "active"
    meta = active.get("meta") or {}
    active["meta"] = {k: v for k, v in meta.items() if k in ("security", "tag")}
    validate(signature)
    validate(active)
    return Signing(signature, active, drafted, registered)
