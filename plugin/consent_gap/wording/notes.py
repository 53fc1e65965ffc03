"""The prose of what consent-gap writes into the chart (CONTRACT 5): the finding note, the
documentation draft, the alert, the reminder and the client notice the panel records.

Text only: `writeback` puts it into FHIR resources. References and codes, never names (a note
is read by people who may not see the client's name elsewhere, and logs may quote it). Every
code is worded through the `wording` lookups, so a note never shows a bare code alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from consent_gap import wording
from consent_gap.domain import Decision, Finding

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


def traced(item: str) -> str:
    """One id of the decision's trace in words, with the id after it."""
    return f"{wording.trace(item)} (`{item}`)"


def _bullets(items: Sequence[str], empty: str) -> list[str]:
    return [f"- {item}" for item in items] or [f"- {empty}"]


def _purposes(finding: Finding, none: str = "none recorded") -> str:
    return ", ".join(finding.purposes) or none


def _named(name: str | None, reference: str | None) -> str:
    """A party by its name, with the reference after it for the officer to look it up."""
    if name and reference:
        return f"{name} ({reference})"
    return name or reference or "not recorded"


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


def finding_note(finding: Finding, ruleset: str, recipient: str | None = None) -> str:
    """The finding note (markdown): what was disclosed, to whom, why it is not covered, each
    Consent checked and why it failed, and what to do next. References only; no names."""
    consents = [f"{reference}: {coded(reason)}"
                for reference, reason in finding.consents_checked]
    lines = [
        f"# {finding_note_title(finding)}",
        "",
        f"- Disclosure: {finding.disclosure}, on {finding.occurred}",
        f"- Client: {finding.patient or 'not recorded'}",
        f"- Recipient: {_named(recipient, finding.recipient)}",
        f"- Purposes: {_purposes_worded(finding)}",
        f"- Decision: {finding.decision} (basis: {finding.basis or 'none'}; "
        f"accountable: {'yes' if finding.accountable else 'no'}; rules {ruleset})",
        *[f"- Decided by: {traced(item)}" for item in finding.decided_by],
        "",
        "## What was disclosed",
        *_bullets(list(finding.disclosed), "not recorded in the disclosure log"),
        *(["", "Legal instruments on file:", *_bullets(list(finding.instruments), "")]
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


def documentation_draft(finding: Finding) -> str:
    """The five documentation elements of the seed article, pre-filled from the record; every
    part a clinician must write is marked with TO_COMPLETE."""
    lines = [
        "# Documentation of a disclosure of confidential information (draft)",
        "",
        f"Disclosure {finding.disclosure} on {finding.occurred}. This draft was prepared by "
        f"consent-gap from the record; complete every part marked {TO_COMPLETE}, then finalise "
        "and sign it as your own note.",
        "",
        "## 1. Nature of the threat or situation",
        f"- Purpose recorded: {_purposes(finding, 'none')}; legal basis: "
        f"{finding.basis or 'none determined'}.",
        f"- {TO_COMPLETE} Describe the threat or situation, its seriousness and imminence.",
        "",
        "## 2. Who was informed and why",
        f"- Recipient: {finding.recipient or 'not recorded'}; purpose "
        f"{_purposes(finding, 'not recorded')}; decision {finding.decision}.",
        f"- {TO_COMPLETE} Confirm who was informed, how, and why this recipient.",
        "",
        "## 3. How the client responded",
        f"- Client notice: {wording.client_notice(finding.client_notice)}.",
        f"- {TO_COMPLETE} Record whether and how the client was told, and the client's response.",
        "",
        "## 4. Supporting evidence or consultations",
        *_bullets([f"Legal instrument: {ref}" for ref in finding.instruments]
                  + [f"Authorization checked: {ref}" for ref, _ in finding.consents_checked],
                  "No instrument or authorization on file."),
        f"- {TO_COMPLETE} Record the risk assessment and any consultation with a supervisor or "
        "counsel.",
        "",
        "## 5. Steps taken to minimise harm",
        *_bullets([f"Disclosed: {ref}" for ref in finding.disclosed],
                  "The records disclosed are not listed in the disclosure log."),
        f"- {TO_COMPLETE} Record how the disclosure was limited to what was necessary and "
        "the other steps taken (safety plan, evaluation, follow-up).",
    ]
    return "\n".join(lines) + "\n"


#: What the privacy officer does next with an alert (45 CFR 164.402: a disclosure not
#: permitted is presumed a breach unless a risk assessment shows a low probability).
ALERT_NEXT_STEP = ("Next step: read the finding note (linked to this alert), assess whether "
                   "the disclosure is a breach (45 CFR 164.402) and record the outcome.")


def alert(finding: Finding, recipient: str | None = None) -> str:
    """The alert's message to the privacy officer and the people to notify: who received
    the disclosure (the recipient's name when the caller read it), why, and the next step."""
    reasons = "; ".join(coded(code) for code in finding.reasons) or "none"
    to = recipient or finding.recipient or "a recipient the record does not name"
    return (f"{wording.decision(finding.decision)}: disclosure {finding.disclosure} "
            f"to {to} on {finding.occurred}: {finding.explanation} Reasons: {reasons}. "
            f"{ALERT_NEXT_STEP}")


def reminder(finding: Finding) -> str:
    """The reminder that the client notice 1.4 requires is missing."""
    return (
        f"The client has not been told of disclosure {finding.disclosure} on {finding.occurred} "
        f"({_purposes(finding, 'no purpose recorded')}). Inform the client if it is "
        "safe and possible, as a Communication to the patient about this disclosure; if it is "
        "not, record that as a Communication with status not-done and a statusReason."
    )


def client_notice(finding: Finding, sent: bool, reason: str = "") -> str:
    """The clinician's record that the client was told, or why not."""
    if sent:
        return (f"The client was informed of disclosure {finding.disclosure} on "
                f"{finding.occurred}.")
    return (f"The client was not informed of disclosure {finding.disclosure} on "
            f"{finding.occurred}. Reason: {reason}")


__all__ = [
    "CONSENT_COVERS", "DRAFT_TITLE", "TO_COMPLETE", "alert", "client_notice", "coded",
    "documentation_draft", "finding_note", "finding_note_title", "next_steps", "reminder",
]
