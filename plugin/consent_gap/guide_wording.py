"""The words of the guide before a disclosure (CONTRACT 6): steps, scenarios, recipient
suggestions, the ETHIC prompts and the five documentation elements.

Kept in one place so that a clinician reads the same sentence in the CLI, the API, the panel
and the record written to the chart. The codes come from mappings/guide.toml; `missing_words`
lists any code the tables use that has no words here (a test and the app's start refuse it).
"""

from __future__ import annotations

from collections.abc import Iterable

from consent_gap.mappings import GuideTables, Jurisdiction

#: What to do, one step per code (6.2). `{rule}` is the jurisdiction's rule (see `state_rule`).
STEP_TEXT = {
    "disclose-within-authorization":
        "Disclose only what the signed authorization names, to the recipient it names, before "
        "it expires.",
    "record-disclosure":
        "Record the disclosure in the chart (what, to whom, when and why).",
    "minimum-necessary":
        "Send only the minimum necessary for the purpose (45 CFR 164.502(b)).",
    "inform-client":
        "Inform the client of the disclosure if it is safe and possible; if it is not, record why.",
    "document":
        "Document thoroughly: the nature of the threat or situation, who was informed and why, "
        "how the client responded, the supporting evidence or consultations, and the steps "
        "taken to minimise harm.",
    "notify-who-can-prevent-harm":
        "Tell only someone able to prevent or lessen the threat (the potential victim, police, "
        "crisis services), and only what they need (45 CFR 164.512(j)).",
    "warn-intended-victim":
        "Warn the intended victim, or take the protective step the state's law accepts. {rule}",
    "notify-law-enforcement":
        "Notify law enforcement of the threat. {rule}",
    "report-to-protective-services":
        "Report to child or adult protective services as the state's reporting law requires, "
        "within its deadline.",
    "disclose-only-what-the-order-names":
        "Disclose only what the court order names, to whom it names; attach the order to the "
        "record.",
    "do-not-disclose":
        "Do not disclose: nothing in the record permits it.",
    "consult-legal-counsel":
        "Consult legal counsel before answering the subpoena.",
    "assert-privilege":
        "Assert the client's privilege and answer that the records cannot be released without "
        "the client's authorization or a court order.",
    "obtain-authorization":
        "Ask the client to sign an authorization for this disclosure (it can be prepared here "
        "and signed now).",
    "consult-before-disclosing":
        "Consult a supervisor, the privacy officer or counsel before disclosing, and work "
        "through ETHIC: evaluate, think through consequences, hypothesize alternatives, "
        "identify who is affected, consult.",
    "document-and-monitor":
        "Nothing is to be disclosed: document the risk assessment and the safety plan, and "
        "monitor the client.",
}

#: The scenarios of 6.4, as the picker shows them.
SCENARIO_TEXT = {
    "suicidal-ideation-no-plan": "Suicidal thoughts, no plan",
    "suicide-risk-imminent": "Suicide plan, imminent risk",
    "threat-to-person": "Threat to a specific person",
    "child-abuse": "Child abuse disclosed",
    "elder-or-dependent-adult-abuse": "Elder or dependent adult abuse",
    "subpoena": "A subpoena for records",
    "court-order": "A court order for records",
    "client-request": "The client asks to share their records",
    "emergency": "A medical emergency",
    "treatment-coordination": "Coordinating care with another provider",
    "billing": "Billing or insurance",
    "consultation-or-supervision": "Consultation or supervision",
}

#: The recipients a scenario suggests (6.4).
RECIPIENT_TEXT = {
    "police": "police",
    "crisis-services": "crisis services",
    "family-involved-in-care": "family involved in care",
    "intended-victim": "the intended victim",
    "child-protective-services": "child protective services",
    "adult-protective-services": "adult protective services",
    "requesting-party": "the requesting party",
    "court-or-named-party": "the court or the party named",
    "named-by-client": "whom the client names",
    "emergency-personnel": "emergency personnel",
    "other-providers": "the client's other providers",
    "payer": "the payer",
    "supervisor-or-consultant": "the supervisor or consultant",
}

#: The ETHIC model (the seed article): a prompt and a field each, kept in the record.
ETHIC = (
    ("evaluate", "Evaluate", "What do the law, the ethics code and the client's interests ask "
     "of you here?"),
    ("think", "Think through consequences", "What follows for the client, the therapy and "
     "others if you disclose, and if you do not?"),
    ("hypothesize", "Hypothesize alternatives", "Is there a smaller step: a partial "
     "disclosure, the client's own consent, a safety plan?"),
    ("identify", "Identify who is affected", "Who is affected, and how?"),
    ("consult", "Consult", "Whom did you consult (supervisor, privacy officer, counsel), and "
     "what did they advise?"),
)

#: The five documentation elements of the seed article (6.3), in their order: key, heading.
DOCUMENTATION_ELEMENTS = (
    ("nature", "Nature of the threat or situation"),
    ("informed", "Who was informed and why"),
    ("client_response", "How the client responded"),
    ("evidence", "Supporting evidence or consultations"),
    ("harm_minimised", "Steps taken to minimise harm"),
)

#: Client notice choices (6.3) as the record form offers them.
NOTICE_TEXT = {
    "sent": "The client was told",
    "withheld": "Not safe or possible to tell the client (say why)",
    "later": "The client will be told later (a reminder follows)",
}

_DUTY = {
    "mandatory": "a mandatory duty to warn or protect",
    "permissive": "a permissive duty (disclosure allowed, not required)",
    "none": "no duty to warn or protect in statute or case law",
}
_SOURCE = {"M-stat": "by statute", "M-cl": "by case law", "P": "", "N": ""}


def state_rule(place: Jurisdiction | None) -> str:
    """The jurisdiction's rule in one sentence, from its table row and note (section 4)."""
    if place is None:
        return "No state was configured: check the state's duty-to-warn law."
    how = _SOURCE.get(place.basis, "")
    sentence = f"{place.name} has {_DUTY.get(place.duty, place.duty)}"
    sentence += f" ({how})." if how else "."
    if place.note:
        sentence += f" {place.note}"
    if place.disputed:
        sentence += " Other sources dispute this row; ask counsel."
    return sentence


def step_text(code: str, place: Jurisdiction | None = None) -> str:
    """The words of a step; the duty-to-warn steps name the state's rule."""
    text = STEP_TEXT[code]
    return text.format(rule=state_rule(place)).strip() if "{rule}" in text else text


def missing_words(tables: GuideTables) -> list[str]:
    """Codes of the guide's tables with no words here (empty when complete)."""
    missing: list[str] = []
    missing += [f"step {c}" for c in sorted(tables.step_codes()) if c not in STEP_TEXT]
    missing += [f"scenario {c}" for c in tables.scenarios if c not in SCENARIO_TEXT]
    recipients: Iterable[str] = (code for s in tables.scenarios.values()
                                 for code, _types in s.recipients)
    missing += [f"recipient {c}" for c in dict.fromkeys(recipients) if c not in RECIPIENT_TEXT]
    return missing


#: Data described by a label (6.1 `data` with labels alone), as the picker and the form say it.
LABEL_TEXT = {
    "PSYTHPN": "psychotherapy notes",
    "HIPAAPsyNotes": "psychotherapy notes",
    "42CFRPart2": "substance use disorder treatment records (42 CFR Part 2)",
    "MH": "mental health information",
    "SUD": "substance use information",
    "ETH": "substance abuse information",
    "HIV": "HIV/AIDS information",
    "SDV": "sexual and domestic violence information",
    "ADOL": "care the client consented to as a minor",
}

#: Purposes of use in plain words (the form's 164.508(c)(1)(iv) line, the picker).
PURPOSE_TEXT = {
    "PATRQT": "at the request of the client",
    "FAMRQT": "at the request of the client's family",
    "PWATRNY": "at the request of the client's attorney-in-fact",
    "SUPNWK": "at the request of the client's support network",
    "TREAT": "treatment",
    "COC": "coordination of care",
    "ETREAT": "emergency treatment",
    "HPAYMT": "payment",
    "HOPERAT": "health care operations",
    "TRAIN": "training",
    "THREAT": "preventing a serious threat to health or safety",
    "PUBHLTH": "public health (a mandated report)",
    "HLEGAL": "a legal proceeding",
    "GOV": "a government request",
}

#: The authorization form's statements (45 CFR 164.508(c)(2), (c)(3); 42 CFR 2.31 for Part 2),
#: in plain language. `{practice}` is the practice's name.
FORM_TITLE = "Authorization to share my health information"
FORM_STATEMENTS = (
    ("revoke", "You may take back (revoke) this authorization at any time by telling "
     "{practice} in writing. Taking it back does not undo anything already shared because of "
     "it. The practice's notice of privacy practices explains how."),
    ("conditioning", "{practice} will not refuse to treat you, and your payment, enrollment or "
     "eligibility for benefits will not depend on whether you sign this form."),
    ("redisclosure", "Once your information is shared, the person or organization that "
     "receives it may share it again, and federal privacy law may no longer protect it."),
    ("copy", "You have the right to a copy of this signed form."),
)
PART2_STATEMENT = ("Records of substance use disorder treatment are protected by federal law "
                   "(42 CFR part 2). A recipient may not use or share them again except as "
                   "that law allows.")
