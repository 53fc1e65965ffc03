"""The prose of what consent-gap writes into the chart (CONTRACT 5): the finding note, the
documentation draft, the alert, the reminder and the client notice the panel records.

Text only: `writeback` puts it into FHIR resources. Names and words, never resource ids: the
recipient by name, each record by its type and title, each Consent by its kind and the day it
was signed (`names`: reference -> words, `wording.names`), with a wording that says so where a
name is unknown. The ids are in the resource's structured elements (`about`, `context.related`,
`subject`), where the EHR links them. The client is never named (a note may be read, or a log
quote it, where the client's name is not otherwise shown): "the client". Every code is worded
through the `wording` lookups; a reason, purpose or rule code may follow its words, for the
officer to look the rule up, never stand alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from consent_gap import wording
from consent_gap.domain import Decision, Finding
from consent_gap.wording import names as named

#: Nothing named (a caller without the names): every lookup falls back to words.
NO_NAMES: Mapping[str, str] = {}

#: Where a clinician must write; the draft's placeholders all start with it.
TO_COMPLETE = "[TO COMPLETE]"

DRAFT_TITLE = "Draft: documentation of a disclosure without the client's authorization"

#: What a Consent checked shows when it covers the disclosure (no reason).
CONSENT_COVERS = "it covers the disclosure"


def finding_note_title(finding: Finding) -> str:
    return f"Disclosure finding: {wording.decision(finding.decision)}"


def coded(code: str | None) -> str:
    """A reason in words with its code after it, so the officer can look the rule up."""
    if not code:
        return CONSENT_COVERS
    return f"{wording.reason(code)} (`{code}`)"


def traced(item: str, names: Mapping[str, str] = NO_NAMES) -> str:
    """One item of the decision's trace in words: a Consent by its name, a rule of 1.3 or
    what turned the decision with its id after it (`wording.trace`)."""
    if item.startswith("Consent/"):
        return wording.trace(item, named.consent(names, item))
    return f"{wording.trace(item)} (`{item}`)"


def _bullets(items: Sequence[str], empty: str) -> list[str]:
    return [f"- {item}" for item in items] or [f"- {empty}"]


def _purposes(finding: Finding, none: str = "none recorded") -> str:
    """Each purpose in words ("for payment, for treatment")."""
    return ", ".join(wording.purpose(p) for p in finding.purposes) or none


def _recipient(finding: Finding, names: Mapping[str, str]) -> str:
    return named.recipient(names, finding.recipient)


def _basis(finding: Finding, names: Mapping[str, str]) -> str:
    """The basis in words: the covering Consent by its name, a rule by its legal ground."""
    if not finding.basis:
        return "none"
    if finding.basis.startswith("Consent/"):
        return named.consent(names, finding.basis)
    return wording.basis(finding.basis)


def _day(finding: Finding) -> str:
    return finding.occurred[:10]


def disclosure(finding: Finding, names: Mapping[str, str] = NO_NAMES) -> str:
    """The disclosure in words: "the disclosure to Alden Valley Police on 2025-04-02"."""
    return f"the disclosure to {_recipient(finding, names)} on {_day(finding)}"


def _purposes_worded(finding: Finding) -> str:
    """Each purpose in words, its code after it (`wording.purpose`)."""
    return ", ".join(f"{wording.purpose(p)} (`{p}`)" for p in finding.purposes) or \
        "none recorded"


def next_steps(finding: Finding) -> list[str]:
    """What the privacy officer and the clinician do next about a flagged disclosure."""
    steps: list[str] = []
    if finding.decision == Decision.UNAUTHORIZED:
        steps += [
            "Privacy officer: carry out and record a breach risk assessment. An impermissible "
            "disclosure is presumed a breach unless a four-factor assessment shows a low "
            "probability that the information was compromised (45 CFR 164.402).",
            "If it is a breach, notify the client without unreasonable delay and within 60 days "
            "of discovery (45 CFR 164.404); contact the recipient to retrieve or limit the data.",
        ]
    else:
        steps.append(
            "Review the disclosure: find or obtain the authorization or the legal basis that "
            "covers it, or treat it as unauthorized and assess the breach risk "
            "(45 CFR 164.402)."
        )
    if "data-unresolved" in finding.reasons:
        steps.append("Record in the disclosure log which records were disclosed.")
    if finding.accountable:
        steps.append(
            "Keep the disclosure in the client's accounting of disclosures (45 CFR 164.528)."
        )
    steps.append(
        "This note was written by consent-gap; do not edit it. Record decisions and corrections "
        "in a new note."
    )
    return steps


def finding_note(finding: Finding, ruleset: str, names: Mapping[str, str] = NO_NAMES) -> str:
    """The finding note (markdown): what was disclosed, to whom, why it is not covered, each
    Consent checked and why it failed, and what to do next. Names and words, no ids (the
    note's `context.related` holds the disclosure and every Consent checked)."""
    consents = [f"{named.consent(names, reference)}: {coded(reason)}"
                for reference, reason in finding.consents_checked]
    lines = [
        f"# {finding_note_title(finding)}",
        "",
        f"- Disclosure: sent to {_recipient(finding, names)} on {finding.occurred}",
        f"- Recipient: {_recipient(finding, names)}",
        f"- Purposes: {_purposes_worded(finding)}",
        f"- Decision: {wording.decision(finding.decision)} (basis: {_basis(finding, names)}; "
        f"accountable: {'yes' if finding.accountable else 'no'}; rules {ruleset})",
        *[f"- Decided by: {traced(item, names)}" for item in finding.decided_by],
        "",
        "## What was disclosed",
        *_bullets([named.record(names, ref) for ref in finding.disclosed],
                  "not recorded in the disclosure log"),
        *(["", "Legal instruments on file:",
           *_bullets([named.instrument(names, ref) for ref in finding.instruments], "")]
          if finding.instruments else []),
        "",
        "## Why it is not covered",
        finding.explanation,
        "",
        *_bullets([coded(code) for code in finding.reasons], "no reason recorded"),
        "",
        "## Authorizations checked",
        *_bullets(consents, "none: no Consent on file for this client"),
        "",
        "## Next steps",
        *_bullets(next_steps(finding), ""),
    ]
    return "\n".join(lines) + "\n"


def documentation_draft(finding: Finding, names: Mapping[str, str] = NO_NAMES) -> str:
    """The five documentation elements of the seed article, pre-filled from the record; every
    part a clinician must write is marked with TO_COMPLETE. Names and words, no ids."""
    lines = [
        "# Documentation of a disclosure of confidential information (draft)",
        "",
        f"Disclosure to {_recipient(finding, names)} on {finding.occurred}. This draft was "
        "prepared by "
        f"consent-gap from the record; complete every part marked {TO_COMPLETE}, then finalise "
        "and sign it as your own note.",
        "",
        "## 1. Nature of the threat or situation",
        f"- Purpose recorded: {_purposes(finding, 'none')}; legal basis: "
        f"{_basis(finding, names) if finding.basis else 'none determined'}.",
        f"- {TO_COMPLETE} Describe the threat or situation, its seriousness and imminence.",
        "",
        "## 2. Who was informed and why",
        f"- Recipient: {_recipient(finding, names)}; purpose "
        f"{_purposes(finding, 'not recorded')}; decision: "
        f"{wording.decision(finding.decision).lower()}.",
        f"- {TO_COMPLETE} Confirm who was informed, how, and why this recipient.",
        "",
        "## 3. How the client responded",
        f"- Client notice: {wording.client_notice(finding.client_notice)}.",
        f"- {TO_COMPLETE} Record whether and how the client was told, and the client's response.",
        "",
        "## 4. Supporting evidence or consultations",
        *_bullets([f"Legal instrument: {named.instrument(names, ref)}"
                   for ref in finding.instruments]
                  + [f"Authorization checked: {named.consent(names, ref)}"
                     for ref, _ in finding.consents_checked],
                  "No instrument or authorization on file."),
        f"- {TO_COMPLETE} Record the risk assessment and any consultation with a supervisor or "
        "counsel.",
        "",
        "## 5. Steps taken to minimise harm",
        *_bullets([f"Disclosed: {named.record(names, ref)}" for ref in finding.disclosed],
                  "The records disclosed are not listed in the disclosure log."),
        f"- {TO_COMPLETE} Record how the disclosure was limited to what was necessary and "
        "the other steps taken (safety plan, evaluation, follow-up).",
    ]
    return "\n".join(lines) + "\n"


#: What the privacy officer does next with an alert (45 CFR 164.402: a disclosure not
#: permitted is presumed a breach unless a risk assessment shows a low probability).
ALERT_NEXT_STEP = ("Next step: read the finding note (linked to this alert), assess whether "
                   "the disclosure is a breach (45 CFR 164.402) and record the outcome.")


def alert(finding: Finding, names: Mapping[str, str] = NO_NAMES) -> str:
    """The alert's message to the privacy officer and the people to notify: who received
    the disclosure (by name), why, and the next step. No ids (its `about` is the disclosure)."""
    reasons = "; ".join(coded(code) for code in finding.reasons) or "none"
    return (f"{wording.decision(finding.decision)}: {disclosure(finding, names)} "
            f"({finding.occurred}): {finding.explanation} Reasons: {reasons}. "
            f"{ALERT_NEXT_STEP}")


def reminder(finding: Finding, names: Mapping[str, str] = NO_NAMES) -> str:
    """The reminder that the client notice 1.4 requires is missing."""
    return (
        f"The client has not been told of {disclosure(finding, names)} "
        f"({_purposes(finding, 'no purpose recorded')}). Inform the client if it is "
        "safe and possible, as a Communication to the patient about this disclosure; if it is "
        "not, record that as a Communication with status not-done and a statusReason."
    )


def client_notice(finding: Finding, sent: bool, reason: str = "",
                  names: Mapping[str, str] = NO_NAMES) -> str:
    """The clinician's record that the client was told, or why not."""
    if sent:
        return f"The client was informed of {disclosure(finding, names)}."
    return f"The client was not informed of {disclosure(finding, names)}. Reason: {reason}"


__all__ = [
    "CONSENT_COVERS", "DRAFT_TITLE", "NO_NAMES", "TO_COMPLETE", "alert", "client_notice",
    "coded", "disclosure", "documentation_draft", "finding_note", "finding_note_title",
    "next_steps", "reminder",
]
