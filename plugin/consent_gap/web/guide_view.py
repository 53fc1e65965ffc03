"""What the "New disclosure" page shows: plain values for the templates, built from the chart
(as normalized, where the engine's reading exists) and the guide's tables and words.

The few FHIR shapes read here (a document's title, a person's name) are for display only;
nothing here decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consent_gap import wording
from consent_gap.normalize import _human_name, format_instant
from consent_gap.wording.guide import (
    DOCUMENTATION_ELEMENTS,
    ETHIC,
    FORM_STATEMENTS,
    FORM_TITLE,
    LABEL_TEXT,
    NOTICE_TEXT,
    PART2_STATEMENT,
    PURPOSE_TEXT,
    RECIPIENT_TEXT,
    SCENARIO_TEXT,
    state_rule,
)

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#: Data a clinician may describe without referencing a record (6.1 `data` with labels alone).
DESCRIBED = ("PSYTHPN", "42CFRPart2", "MH")


@dataclass
class GuideView:
    lid: str
    patient: str
    banner: dict[str, Any] | None
    jurisdiction: str | None
    scenarios: list[dict[str, Any]]
    documents: list[dict[str, Any]]
    instruments: list[dict[str, Any]]
    described: list[dict[str, str]]
    representatives: list[dict[str, str]]
    purposes: list[dict[str, str]]
    ethic: tuple = ETHIC
    elements: tuple = DOCUMENTATION_ELEMENTS
    notices: dict[str, str] = field(default_factory=lambda: dict(NOTICE_TEXT))


def _display(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    if isinstance(concept.get("text"), str):
        return concept["text"]
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and isinstance(coding.get("display"), str):
            return coding["display"]
    return None


def document_label(resource: dict[str, Any]) -> str:
    """'Progress note, 2025-05-01' for a DocumentReference (its type, description, date)."""
    parts = [resource.get("description") or _display(resource.get("type")) or "Document"]
    date = str(resource.get("date") or "")[:10]
    if date:
        parts.append(date)
    return ", ".join(str(p) for p in parts)


def name_of(resource: dict[str, Any] | None) -> str | None:
    if not isinstance(resource, dict):
        return None
    name = resource.get("name")
    if isinstance(name, str):
        return name
    return _human_name(name)


def _is_instrument(resource: dict[str, Any], rules: Any) -> bool:
    system = rules.instruments.system
    return any(isinstance(c, dict) and c.get("system") == system
               for c in (resource.get("type") or {}).get("coding") or [])


def _ours(resource: dict[str, Any]) -> bool:
    return any(isinstance(t, dict) and t.get("system", "").startswith("https://consent-gap.dev")
               for t in (resource.get("meta") or {}).get("tag") or [])


def build_guide_view(launch: Any, resources: list[dict[str, Any]], report: Any, rules: Any,
                     config: Any) -> GuideView:
    patient_ref = launch.patient_ref or ""
    chart = report.charts.get(patient_ref)
    person = chart.patient if chart is not None else None
    banner = None
    if launch.need_patient_banner and person is not None:
        banner = {"name": person.name or "the client",
                  "birth_date": person.birth_date.isoformat() if person.birth_date else None}
    guide = rules.guide
    scenarios = [{
        "code": s.code,
        "label": SCENARIO_TEXT[s.code],
        "purposes": list(s.purposes),
        "instruments": list(s.instruments),
        "recipients": [{"code": code, "label": RECIPIENT_TEXT[code], "types": list(types)}
                       for code, types in s.recipients],
        "nothing": bool(s.steps_only),
    } for s in guide.scenarios.values()]
    documents, instruments = [], []
    for r in resources:
        if r.get("resourceType") != "DocumentReference" or not r.get("id") or _ours(r):
            continue
        item = {"reference": f"DocumentReference/{r['id']}", "label": document_label(r)}
        (instruments if _is_instrument(r, rules) else documents).append(item)
    representatives = [{"reference": f"RelatedPerson/{r['id']}",
                        "label": name_of(r) or f"RelatedPerson/{r['id']}"}
                       for r in resources if r.get("resourceType") == "RelatedPerson"
                       and (r.get("patient") or {}).get("reference") == patient_ref]
    return GuideView(
        lid=launch.lid,
        patient=patient_ref,
        banner=banner,
        jurisdiction=(rules.jurisdiction(config.jurisdiction).name
                      if config.jurisdiction else None),
        scenarios=scenarios,
        documents=documents,
        instruments=instruments,
        described=[{"system": ACT_CODE, "code": c, "label": LABEL_TEXT[c]} for c in DESCRIBED],
        representatives=representatives,
        purposes=[{"code": c, "label": f"{t} ({c})"} for c, t in PURPOSE_TEXT.items()],
    )


def answer_details(answer: Any, resources: list[dict[str, Any]], rules: Any) -> dict[str, Any]:
    """Beside the decision: the covering authorization with its limits, the legal basis in
    words, the state's rule where a threat is involved."""
    finding = answer.finding
    out: dict[str, Any] = {"basis_text": None, "authorization": None, "state_rule": None}
    if finding is None:
        return out
    basis = finding.basis or ""
    out["basis_text"] = wording.BASES.get(basis)  # None for a Consent or no basis
    if basis.startswith("Consent/") and answer.report is not None:
        chart = answer.report.charts.get(finding.patient)
        consent = next((c for c in (chart.consents if chart else ())
                        if c.reference == basis), None)
        if consent is not None and consent.provision is not None:
            node = consent.provision
            out["authorization"] = {
                "reference": basis,
                "expires": format_instant(node.end)[:10] if node.end else None,
                "purposes": sorted(code for _s, code in node.purposes),
                "recipients": [a.reference or a.identifier for a in node.actors],
            }
    if "THREAT" in finding.purposes:
        out["state_rule"] = state_rule(answer.jurisdiction)
    return out


def recipient_results(found: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for r in found:
        if r.get("resourceType") not in ("Practitioner", "Organization", "RelatedPerson"):
            continue
        ref = f"{r['resourceType']}/{r.get('id')}"
        out.append({"reference": ref, "type": r["resourceType"],
                    "name": name_of(r) or ref})
    return out


def data_description(proposal: Any, resources: list[dict[str, Any]]) -> str:
    """The information a proposal would disclose, in words (the form's (c)(1)(i) line)."""
    by_ref = {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources}
    parts = []
    for item in proposal.data:
        words = [LABEL_TEXT.get(code, code) for _s, code in item.labels]
        if item.reference:
            found = by_ref.get(item.reference.split("/_history/")[0][-200:])
            label = document_label(found) if found and \
                found.get("resourceType") == "DocumentReference" else item.reference
            parts.append(label + (f" ({', '.join(words)})" if words else ""))
        elif item.description:
            parts.append(item.description)
        else:
            parts.append(", ".join(words))
    return "; ".join(p for p in parts if p) or "the records named by the client"


def form_references(consent: dict[str, Any], config: Any) -> list[str]:
    refs = [(consent.get("patient") or {}).get("reference")]
    refs += [p.get("reference") for p in consent.get("performer") or []]
    for actor in (consent.get("provision") or {}).get("actor") or []:
        refs.append((actor.get("reference") or {}).get("reference"))
    refs.append(config.organization)
    return [r for r in dict.fromkeys(refs) if isinstance(r, str) and r.count("/") == 1]


def authorization_form(consent: dict[str, Any], names: dict[str, Any], config: Any
                       ) -> dict[str, Any]:
    """The form to sign (164.508(c)): every core element and statement, in plain words."""
    from consent_gap.writeback.consents import PART2_URI, described

    provision = consent.get("provision") or {}
    practice = name_of(names.get(config.organization or "")) or "this practice"
    patient_ref = (consent.get("patient") or {}).get("reference", "")
    signer = next((p.get("reference") for p in consent.get("performer") or []), patient_ref)
    recipients = []
    for actor in provision.get("actor") or []:
        who = actor.get("reference") or {}
        ref = who.get("reference")
        recipients.append(name_of(names.get(ref)) or who.get("display")
                          or (who.get("identifier") or {}).get("value")
                          or wording.PANEL_UNNAMED)
    purposes = [PURPOSE_TEXT.get(p.get("code"), p.get("code"))
                for p in provision.get("purpose") or []]
    end = (provision.get("period") or {}).get("end", "")
    part2 = any(p.get("uri", "").startswith(PART2_URI) for p in consent.get("policy") or [])
    labels = [LABEL_TEXT.get(c.get("code"), c.get("code"))
              for c in provision.get("securityLabel") or []]
    return {
        "title": FORM_TITLE,
        "id": consent.get("id"),
        "status": consent.get("status"),
        "practice": practice,
        "client": name_of(names.get(patient_ref)) or "the client",  # words, never an id
        "signer": name_of(names.get(signer)) or ("the client" if signer == patient_ref
                                                 else "the client's representative"),
        "representative": signer != patient_ref,
        "information": described(consent) or ", ".join(labels) or "the records named by "
                                                                 "the client",
        "special": labels,
        "recipients": recipients,
        "purposes": purposes,
        "expires": _day(end),
        "statements": [text.format(practice=practice) for _code, text in FORM_STATEMENTS],
        "part2": PART2_STATEMENT if part2 else None,
    }


def _day(value: str) -> str:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%B %-d, %Y")
    except ValueError:
        return value[:10]
