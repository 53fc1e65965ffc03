"""Every word the product says about a code: one home, complete by construction.

A reason, a basis, a rule of CONTRACT 1.3, a decision, a step of the guide (CONTRACT 6.2), a
scenario (6.4), a disposition or conclusion of the privacy office (7) is a code everywhere
else; here, and only here, it becomes plain words for a clinician or a privacy officer. The
prose of the notes the product writes into the chart lives beside it, in `wording.notes`; the
guide's words (the recipients scenarios suggest, ETHIC, the documentation elements, the
authorization form, the state's rule) in `wording.guide`; the accounting's below.

Why one home: the same reason used to be worded three times, differently, and a code without
wording showed as an empty line. Now a code without wording stops the program at start:

- importing this module checks that every code the product defines (CONTRACT 3's reason codes,
  the decisions, 1.4 states, steps, scenarios, dispositions, conclusions) has its words
  (`WordingError`);
- loading the rule tables (`mappings.load_rules`, which every command, the scan and the app
  call before they serve anything) checks every basis, reason and rule id the tables use
  (`unworded(rules)`), and refuses the tables with the file and the entry named.

So a lookup below never falls back to the bare code: an unknown code raises `WordingError`
(a bug, or tables that bypassed the loader).

API (all pure, all str unless said):
    reason(code)                        "the authorization had expired"
    basis(code)                         "it was for payment (45 CFR 164.506)"
    rule(rule_id)                       "a legal request with a subpoena only": a 1.3 row
    trace(item, consent=None)           one id of Finding.decided_by (a Consent, by the name
                                        given, a row, a narrowing or a conversion) in words
    decision(code)                      "Needs review" (a label)
    kind(code)                          "draft documentation note" (a writeback.Kind)
    documentation(state)                "a note documenting it is missing" (1.4)
    client_notice(state)                "the client has not been told" (1.4)
    step(code, jurisdiction_note=None)  one plain sentence of what to do (6.2); the note (the
                                        state's rule, wording.guide.state_rule) goes into
                                        warn-intended-victim and notify-law-enforcement
    scenario(code) -> ScenarioWords     label and the recipients the panel suggests (6.4)
    disposition(code) -> DispositionWords  label and what choosing it does (7)
    conclusion(code)                    the label of a breach assessment's conclusion (7.1)
    ground(basis)                       a basis as the accounting's legal ground (8)
    purpose(code), label(code)          a purpose of use / a security label in words (any
                                        code may come with the data: these two fall back)
    unworded(rules) -> list[str]        'exceptions.toml: row "x": basis "y" has no wording'
    require(table, codes, what)         WordingError unless every code of a module's own code
                                        set has words (call it where the codes are defined)
The code sets themselves (which steps, scenarios, dispositions exist) are `domain`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from consent_gap.domain import (
    REASON_CODES,
    TRACE_PART2,
    TRACE_PSYCHOTHERAPY_NOTES,
    TRACE_RULE,
    TRACE_TURNS,
    ClientNotice,
    Conclusion,
    Decision,
    Disposition,
    Documentation,
    Scenario,
    Step,
)

if TYPE_CHECKING:
    from consent_gap.mappings import Rules


T = TypeVar("T")


class WordingError(LookupError):
    """A code has no wording: a bug, refused at start (see the module docstring)."""


# ---------------------------------------------------------------- reasons (CONTRACT 3)

#: One plain phrase per reason code; it reads after "because" and as a line of its own.
REASONS: dict[str, str] = {
    "no-authorization": "the client has no authorization on file",
    "not-an-authorization": "the Consent on file is not an authorization to disclose",
    "authorization-not-active": "the authorization was not active",
    "authorization-revoked": "the authorization had been revoked",
    "authorization-unsigned": "the authorization has no recorded signature",
    "authorization-not-yet-valid": "the authorization was not yet signed or in effect",
    "authorization-expired": "the authorization had expired",
    "authorizer-not-permitted": "the person who signed may not authorize for this client",
    "minor-self-authorization": "the client signed alone as a minor",
    "recipient-not-covered": "the authorization does not name this recipient",
    "purpose-not-covered": "the authorization does not cover this purpose",
    "data-not-covered": "the authorization does not cover the information sent",
    "psychotherapy-notes-need-specific-authorization":
        "psychotherapy notes need an authorization that names them",
    "part2-consent-required": "substance use records under 42 CFR Part 2 need a Part 2 consent",
    "denied-by-provision": "the authorization excludes this disclosure",
    "authorization-incomplete": "the authorization lacks a recipient, purpose or expiry the "
                                "record can check",
    "restricted-by-patient": "the client restricted this disclosure (45 CFR 164.522)",
    "data-unresolved": "the record does not show what information was sent",
    "subpoena-without-court-order": "a subpoena alone does not permit disclosure without a "
                                    "court order",
    "legal-review-needed": "a legal request needs review by counsel",
    "family-involvement-review": "sharing with family or supporters needs the client's "
                                 "agreement to be confirmed",
    "recipient-not-a-provider": "treatment disclosures are permitted only to providers",
    "purpose-unmapped": "its purpose has no rule",
    "purpose-missing": "no purpose was recorded",
}

# ---------------------------------------------------------------- bases (CONTRACT 1.3)

#: The legal basis of a permitted or required decision, as a clause after "but it ...: ".
BASES: dict[str, str] = {
    "hipaa-164.524-access": "it went to the client or the client's personal representative "
                            "(HIPAA right of access, 45 CFR 164.524)",
    "hipaa-164.506-treatment": "it went to a provider for treatment or care coordination "
                               "(45 CFR 164.506)",
    "hipaa-164.506-payment": "it was for payment (45 CFR 164.506)",
    "hipaa-164.506-operations": "it was for health care operations (45 CFR 164.506)",
    "hipaa-164.506-emergency-treatment": "it was for emergency treatment",
    "duty-to-warn-or-protect": "state law imposes a duty to warn or protect against a "
                               "threat of violence",
    "hipaa-164.512(j)-serious-threat": "it was made to prevent a serious and imminent threat "
                                       "(45 CFR 164.512(j))",
    "abuse-report": "it was a mandated abuse or neglect report",
    "hipaa-164.512(e)-court-order": "a court order or warrant compelled it "
                                    "(45 CFR 164.512(e))",
}

#: The rows of CONTRACT 1.3 by their id in exceptions.toml: what a privacy officer reads when
#: tracing which rule decided a finding.
RULE_ROWS: dict[str, str] = {
    "access": "to the client, or to a personal representative who may sign for the client "
              "(45 CFR 164.524)",
    "treatment": "treatment or care coordination, to a provider (45 CFR 164.506)",
    "treatment-other-recipient": "treatment or care coordination, to someone who is not a "
                                 "provider",
    "payment": "payment (45 CFR 164.506)",
    "operations": "health care operations or training (45 CFR 164.506)",
    "emergency-treatment": "emergency treatment (45 CFR 164.506)",
    "duty-to-warn-or-protect": "a threat of violence, in a state whose duty to warn or protect "
                               "is mandatory",
    "serious-threat": "a serious and imminent threat, where the state's duty is not mandatory "
                      "(45 CFR 164.512(j))",
    "abuse-report": "a mandated abuse or neglect report (45 CFR 164.512(b), (c))",
    "court-order": "a legal request with a court order or warrant (45 CFR 164.512(e))",
    "subpoena-with-assurance": "a legal request with a subpoena and a satisfactory assurance",
    "administrative-request": "a legal request by administrative process",
    "subpoena-only": "a legal request with a subpoena only",
    "legal-no-instrument": "a legal request with no order, warrant or subpoena on file",
    "government": "a request by a government agency",
    "family-involvement": "a disclosure to family, supporters or a power of attorney at "
                          "someone's request",
    "patient-request": "a disclosure the client asked for, which needs the client's signed "
                       "authorization",
    "purpose-unmapped": "a purpose the rules do not list",
    "purpose-missing": "no purpose recorded",
}

#: What turned or narrowed a decision (Finding.decided_by, after the Consent or the row).
TRACES: dict[str, str] = {
    TRACE_PSYCHOTHERAPY_NOTES:
        "narrowed because psychotherapy notes were disclosed (45 CFR 164.508(a)(2))",
    TRACE_PART2: "narrowed because 42 CFR Part 2 records were disclosed",
    "near-miss": "eased to review: an authorization on file nearly covers it",
    "restriction": "turned unauthorized by the client's restriction (45 CFR 164.522)",
    "data-unresolved": "turned to review: the record does not show what was sent",
}

# ---------------------------------------------------------------- decisions and 1.4 states

DECISIONS: dict[str, str] = {
    Decision.AUTHORIZED: "Authorized",
    Decision.PERMITTED: "Permitted (exception)",
    Decision.REQUIRED: "Required by law",
    Decision.UNAUTHORIZED: "Unauthorized",
    Decision.REVIEW: "Needs review",
}

DOCUMENTATION: dict[str, str] = {
    Documentation.PRESENT: "the decision is documented",
    Documentation.MISSING: "a note documenting it is missing",
    Documentation.NOT_REQUIRED: "no documentation is due",
}

CLIENT_NOTICE: dict[str, str] = {
    ClientNotice.SENT: "the client was told",
    ClientNotice.WITHHELD: "telling the client was withheld with a reason",
    ClientNotice.MISSING: "the client has not been told",
    ClientNotice.NOT_REQUIRED: "no client notice is due",
}

#: What consent-gap writes, per writeback.Kind (checked when writeback loads).
KINDS: dict[str, str] = {
    "alert": "alert to the privacy officer",
    "finding-note": "finding note",
    "documentation-draft": "draft documentation note",
    "notice-reminder": "client-notice reminder",
    "client-notice": "record of the client notice",
    "task": "task for the privacy office",
}

# ---------------------------------------------------------------- steps (CONTRACT 6.2)

#: What to do, one plain sentence each (the seed's flowchart and its ETHIC model). `{rule}`
#: is where the state's rule goes (see `step`).
STEPS: dict[str, str] = {
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

# ---------------------------------------------------------------- scenarios (CONTRACT 6.4)


@dataclass(frozen=True)
class ScenarioWords:
    label: str
    recipients: str  # whom the panel suggests, in words ("" when none)


SCENARIOS: dict[str, ScenarioWords] = {
    Scenario.SUICIDAL_IDEATION_NO_PLAN: ScenarioWords(
        "Suicidal thoughts, no plan", ""),
    Scenario.SUICIDE_RISK_IMMINENT: ScenarioWords(
        "Suicide plan, imminent risk", "police, crisis services, family involved in care"),
    Scenario.THREAT_TO_PERSON: ScenarioWords(
        "Threat to a specific person", "the intended victim, police"),
    Scenario.CHILD_ABUSE: ScenarioWords(
        "Child abuse disclosed", "child protective services"),
    Scenario.ELDER_OR_DEPENDENT_ADULT_ABUSE: ScenarioWords(
        "Elder or dependent adult abuse", "adult protective services"),
    Scenario.SUBPOENA: ScenarioWords(
        "A subpoena for records", "the requesting party"),
    Scenario.COURT_ORDER: ScenarioWords(
        "A court order for records", "the court or the party named"),
    Scenario.CLIENT_REQUEST: ScenarioWords(
        "The client asks to share their records", "whom the client names"),
    Scenario.EMERGENCY: ScenarioWords(
        "A medical emergency", "emergency personnel"),
    Scenario.TREATMENT_COORDINATION: ScenarioWords(
        "Coordinating care with another provider", "the client's other providers"),
    Scenario.BILLING: ScenarioWords(
        "Billing or insurance", "the payer"),
    Scenario.CONSULTATION_OR_SUPERVISION: ScenarioWords(
        "Consultation or supervision", "the supervisor or consultant"),
}

# ---------------------------------------------------------------- the privacy office (7)


@dataclass(frozen=True)
class DispositionWords:
    label: str  # the choice, as the worklist offers it
    effect: str  # what choosing it does, for the officer
    status: str = ""  # the Task's state once chosen, when it reads otherwise than the label

    @property
    def status_text(self) -> str:
        return self.status or self.label


DISPOSITIONS: dict[str, DispositionWords] = {
    Disposition.AUTHORIZATION_ON_FILE: DispositionWords(
        "An authorization is on file (re-check the chart)",
        "Attach the authorization kept outside the record; the task completes when the "
        "re-check no longer flags the disclosure."),
    Disposition.DOCUMENTATION_COMPLETED: DispositionWords(
        "The documentation is completed (re-check the chart)",
        "The task completes when the re-check finds the documentation in the chart."),
    Disposition.NOT_A_DISCLOSURE: DispositionWords(
        "Not a disclosure",
        "The task completes; say why in the note."),
    Disposition.BREACH_ASSESSMENT: DispositionWords(
        "Start the breach risk assessment",
        "The task is in progress until the four-factor assessment (45 CFR 164.402) is "
        "concluded.",
        "Breach risk assessment in progress"),
}

CONCLUSIONS: dict[str, str] = {
    Conclusion.LOW_PROBABILITY: "Low probability of compromise: not a breach",
    Conclusion.BREACH: "Breach: notify",
}

# ---------------------------------------------------------------- the accounting (CONTRACT 8)
# Purposes, bases, labels and record types as the accounting's sentences use them.

#: ActReason purposes as a phrase that completes "The information was disclosed ...".
PURPOSES: dict[str, str] = {
    "PurposeOfUse": "for a purpose of use",
    "TREAT": "for treatment",
    "COC": "to coordinate care",
    "ETREAT": "for emergency treatment",
    "ERTREAT": "for emergency room treatment",
    "BTG": "for emergency access to the record",
    "POPHLTH": "for population health",
    "TREATDS": "for treatment decision support",
    "HPAYMT": "for payment",
    "CLMATTCH": "to support an insurance claim",
    "COVAUTH": "to obtain authorization of coverage",
    "COVERAGE": "to determine coverage",
    "PMTDS": "for payment decision support",
    "HOPERAT": "for health care operations",
    "TRAIN": "for training",
    "HLEGAL": "for a legal proceeding",
    "HCOMPL": "for compliance",
    "GOV": "for a government agency",
    "MILCDM": "for a military command",
    "HDIRECT": "for a health care directory",
    "PATSFTY": "for patient safety",
    "MLTRAINING": "to train software",
    "PUBHLTH": "for public health reporting",
    "THREAT": "to prevent or lessen a serious threat to someone's health or safety",
    "DISASTER": "for disaster relief",
    "HRESCH": "for research",
    "PATRQT": "at the client's request",
    "FAMRQT": "at the request of a family member",
    "PWATRNY": "at the request of the client's power of attorney",
    "SUPNWK": "at the request of the client's support network",
    "HMARKT": "for marketing",
}

#: Each basis of 1.3 as the legal ground it gives, completing the accounting's purpose
#: sentence (164.528(b)(2)(iv)); the loader requires one for every basis the tables use.
GROUNDS: dict[str, str] = {
    "hipaa-164.524-access": "under the client's right of access (45 CFR 164.524)",
    "hipaa-164.506-treatment": "as HIPAA permits for treatment (45 CFR 164.506)",
    "hipaa-164.506-payment": "as HIPAA permits for payment (45 CFR 164.506)",
    "hipaa-164.506-operations": "as HIPAA permits for health care operations "
                                "(45 CFR 164.506)",
    "hipaa-164.506-emergency-treatment": "as HIPAA permits for emergency treatment "
                                         "(45 CFR 164.506)",
    "duty-to-warn-or-protect": "as state law requires (the duty to warn or protect)",
    "hipaa-164.512(j)-serious-threat": "as HIPAA permits to avert a serious and imminent "
                                       "threat (45 CFR 164.512(j))",
    "abuse-report": "as the law requires of a mandated reporter of abuse or neglect "
                    "(45 CFR 164.512(b), (c))",
    "hipaa-164.512(e)-court-order": "as a court order required (45 CFR 164.512(e))",
}
AUTHORIZED_GROUND = "with the client's signed authorization ({basis})"
NO_GROUND: dict[str, str] = {
    Decision.UNAUTHORIZED: "no authorization or legal exception permitted it",
    Decision.REVIEW: "the practice is reviewing whether an authorization or a legal "
                     "exception permitted it",
}

#: Counted labels (ActCode / USPrivacyLaw) as the kind of information they mark.
LABELS: dict[str, str] = {
    "PSYTHPN": "psychotherapy notes",
    "HIPAAPsyNotes": "psychotherapy notes",
    "42CFRPart2": "substance use disorder treatment records (42 CFR Part 2)",
    "ADOL": "records of care the client consented to as a minor",
    "MH": "mental health information",
    "PSY": "psychiatry information",
    "BH": "behavioral health information",
    "SDV": "information about sexual assault, abuse or domestic violence",
    "SUD": "substance use disorder information",
    "ETH": "substance abuse information",
    "ETHUD": "alcohol or drug abuse information",
    "HIV": "HIV/AIDS information",
    "STD": "sexually transmitted disease information",
    "SEX": "sexuality and reproductive health information",
    "GDIS": "genetic disease information",
    "SICKLE": "sickle cell information",
    "DEMO": "demographic information",
    "CEL": "celebrity information",
    "DIA": "diagnosis information",
    "DRGIS": "drug information",
    "EMP": "employee information",
    "COMPT": "compartmentalized information",
}

#: Resource types in words, where the type's name is not plain enough.
RECORD_TYPES: dict[str, str] = {
    "DocumentReference": "Document",
    "Composition": "Clinical document",
    "DiagnosticReport": "Diagnostic report",
    "Condition": "Diagnosis",
    "Encounter": "Visit record",
    "MedicationRequest": "Prescription",
    "MedicationStatement": "Medication record",
    "QuestionnaireResponse": "Questionnaire answers",
    "Binary": "File",
}
UNDESCRIBED = "Information the record does not describe"


# ---------------------------------------------------------------- the panel's own words

PANEL_NEEDS_ACTION = "Needs action: {what}."
PANEL_NOTHING_TO_DO = "Nothing needs action: {n} disclosure(s), each authorized or permitted."
PANEL_OWED = "{n} other(s) owing a documentation note or a client notice"
PANEL_NO_DISCLOSURES = "No disclosures are recorded for this client."
PANEL_UNNAMED = "a recipient the record does not name"
PANEL_CLIENT_UNNAMED = "A client whose name is not recorded"
PANEL_NO_BASIS = "none"
PANEL_NO_PURPOSE = "no purpose recorded"
PANEL_AUTHORIZATION_SIGNED = "the authorization signed on {day}"
PANEL_AUTHORIZATION_UNDATED = "an undated authorization"
PANEL_DECIDED_BY_CONSENT = "the client's authorization: {name}"
#: A Consent whose name is not at hand (never its id instead).
CONSENT_UNKNOWN = "an authorization on file"
PANEL_DRAFT_WAITING = "A draft note is waiting for signature"
PANEL_ALERTED = "Privacy officer alerted on {day}"
PANEL_NOTE = "Finding note"
PANEL_DRAFT_NOTE = "Draft documentation note"
PANEL_OPEN_DRAFT = "open the draft to sign it"
PANEL_UNDATED = "an unrecorded date"
PANEL_SAVED = "The {what} was saved in the chart."
PANEL_ALREADY_SAVED = "The {what} was already in the chart."
PANEL_OPEN_WRITTEN = "Open the {what}"


# ---------------------------------------------------------------- lookups


def _lookup(table: Mapping[str, T], what: str) -> Callable[[str], T]:
    """The lookup of one family of codes: its words, or WordingError (never the bare code)."""

    def look(code: str) -> T:
        try:
            return table[code]
        except KeyError:
            raise WordingError(f"{what} {code!r} has no wording") from None

    look.__doc__ = f"The words of a {what} code (see the module docstring)."
    return look


reason = _lookup(REASONS, "reason")
basis = _lookup(BASES, "basis")
rule = _lookup(RULE_ROWS, "rule")
decision = _lookup(DECISIONS, "decision")
kind = _lookup(KINDS, "kind of write")
documentation = _lookup(DOCUMENTATION, "documentation state")
client_notice = _lookup(CLIENT_NOTICE, "client notice state")
scenario = _lookup(SCENARIOS, "scenario")
disposition = _lookup(DISPOSITIONS, "disposition")
conclusion = _lookup(CONCLUSIONS, "conclusion")
_step = _lookup(STEPS, "step")
ground = _lookup(GROUNDS, "basis (as a ground)")


def purpose(code: str) -> str:
    """A purpose of use as a phrase that completes "disclosed ...". Any ActReason code may
    come with the data, so one without words reads as the code recorded (the purposes the
    rules list all have words: the loader checks)."""
    return PURPOSES.get(code, f"for the purpose recorded as {code}")


def label(code: str) -> str:
    """A security label as the kind of information it marks (the code itself when unknown:
    labels come with the data)."""
    return LABELS.get(code, code)


def step(code: str, jurisdiction_note: str | None = None) -> str:
    """The step's sentence; where it has a place for the state's rule (`{rule}`: warn the
    intended victim, notify law enforcement), the jurisdiction's note fills it."""
    text = _step(code)
    if "{rule}" not in text:
        return text
    return text.format(rule=(jurisdiction_note or "").strip()).strip()


def trace(item: str, consent: str | None = None) -> str:
    """One id of Finding.decided_by in words: a row of exceptions.toml with its id, so the
    officer can find the row that decided; a Consent by its name (`consent`, from
    `wording.names`), never its id."""
    if item.startswith(TRACE_RULE):
        row_id = item.removeprefix(TRACE_RULE)
        return f"rule {row_id!r} of exceptions.toml: {rule(row_id)}"
    if item in TRACES:
        return TRACES[item]
    if item.startswith("Consent/"):
        return PANEL_DECIDED_BY_CONSENT.format(name=consent or CONSENT_UNKNOWN)
    raise WordingError(f"trace {item!r} has no wording")


# ---------------------------------------------------------------- completeness


def _missing(table: dict, codes, what: str) -> list[str]:
    return [f"{what} {str(code)!r}" for code in sorted(map(str, codes)) if code not in table]


def require(table: dict, codes: Iterable[str], what: str) -> None:
    """WordingError unless every code has its words in ``table``: for a module that defines
    its own codes (writeback's kinds; the guide's, the privacy office's), called where they
    are defined so that a code without words stops the import."""
    missing = _missing(table, codes, what)
    if missing:
        raise WordingError(f"no wording for {', '.join(missing)} (consent_gap.wording)")


def _check_own() -> None:
    """Every code the product itself defines has its words (run at import)."""
    for table, codes, what in (
        (REASONS, REASON_CODES, "reason"),
        (DECISIONS, Decision, "decision"),
        (DOCUMENTATION, Documentation, "documentation state"),
        (CLIENT_NOTICE, ClientNotice, "client notice state"),
        (STEPS, Step, "step"),
        (SCENARIOS, Scenario, "scenario"),
        (DISPOSITIONS, Disposition, "disposition"),
        (CONCLUSIONS, Conclusion, "conclusion"),
        (TRACES, TRACE_TURNS, "trace"),
    ):  # writeback's kinds are checked where writeback defines them
        require(table, codes, what)


def unworded(rules: Rules) -> list[str]:
    """What the rule tables use that has no wording, each as 'file: entry: what'; empty when
    everything is worded. The loader refuses tables for which this is not empty."""
    table = rules.exceptions
    out: list[str] = []
    for row in (table.access, *table.rows, table.other_purpose, table.no_purpose):
        where = f"exceptions.toml: row {row.id!r}"
        if row.id not in RULE_ROWS:
            out.append(f"{where}: rule id {row.id!r} has no wording")
        if row.basis is not None and row.basis not in BASES:
            out.append(f"{where}: basis {row.basis!r} has no wording")
        if row.basis is not None and row.basis not in GROUNDS:
            out.append(f"{where}: basis {row.basis!r} has no wording as a ground")
        for code in sorted(row.purposes - PURPOSES.keys()):
            out.append(f"{where}: purpose {code!r} has no wording")
        if row.reason is not None and row.reason not in REASONS:
            out.append(f"{where}: reason {row.reason!r} has no wording")
    for where, code in (
        ("sensitivity.toml: [psychotherapy_notes]", rules.sensitivity.psychotherapy_reason),
        ("sensitivity.toml: [part2]", rules.sensitivity.part2_reason),
        ("consents.toml: [restriction]", rules.consents.restriction_reason),
    ):
        if code not in REASONS:
            out.append(f"{where}: reason {code!r} has no wording")
    from consent_gap.wording.guide import missing_words  # it reads the mappings' types

    out += [f"guide.toml: {what} has no wording" for what in missing_words(rules.guide)]
    return out


_check_own()
