"""The words of the guide before a disclosure (CONTRACT 6): the recipients scenarios suggest,
the ETHIC prompts, the five documentation elements, the authorization form's statements and the
state's rule; the steps' and scenarios' own words are `wording`'s (this package).

Kept in one place so that a clinician reads the same sentence in the CLI, the API, the panel
and the record written to the chart. The codes come from mappings/guide.toml; `missing_words`
lists any code the tables use that has no words (the loader refuses the tables then, through
`wording.unworded`).
"""

from __future__ import annotations

from collections.abc import Iterable

from consent_gap import wording
from consent_gap.mappings import GuideTables, Jurisdiction

#: The scenarios of 6.4, as the picker shows them (their labels are wording's).
SCENARIO_TEXT = {code: wording.scenario(code).label for code in wording.SCENARIOS}

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
    return wording.step(code, state_rule(place))


def missing_words(tables: GuideTables) -> list[str]:
    """Codes of the guide's tables with no words here (empty when complete)."""
    missing: list[str] = []
    missing += [f"step {c}" for c in sorted(tables.step_codes()) if c not in wording.STEPS]
    missing += [f"scenario {c}" for c in tables.scenarios if c not in wording.SCENARIOS]
    recipients: Iterable[str] = (code for s in tables.scenarios.values()
                                 for code, _types in s.recipients)
    missing += [f"recipient {c}" for c in dict.fromkeys(recipients) if c not in RECIPIENT_TEXT]
    return missing


#: Data described by a label (6.1 `data` with labels alone), as the picker and the form say it.
LABEL_TEXT = wording.LABELS

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
