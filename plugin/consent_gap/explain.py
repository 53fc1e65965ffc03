"""Plain words for a finding: one or two sentences a clinician can act on.

Built only from the engine's outcome (decision, basis, reasons, Consents checked, 1.4 state);
wording lives here so the engine stays free of prose.
"""

from __future__ import annotations

from consent_gap.domain import ClientNotice, Decision, Disclosure, Documentation
from consent_gap.engine import Outcome

BASIS = {
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

REASONS = {
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

_DOCUMENTATION = {
    Documentation.PRESENT: "the decision is documented",
    Documentation.MISSING: "a note documenting it is missing",
}
_NOTICE = {
    ClientNotice.SENT: "the client was told",
    ClientNotice.WITHHELD: "telling the client was withheld with a reason",
    ClientNotice.MISSING: "the client has not been told",
    ClientNotice.NOT_REQUIRED: "no client notice is due",
}


def _phrase(code: str) -> str:
    return REASONS.get(code, code.replace("-", " "))


def _checked(outcome: Outcome) -> str:
    """'Consent/c1 (the authorization had expired)' for each candidate that did not cover."""
    parts = [f"{r.reference} ({_phrase(r.reason)})" for r in outcome.candidates
             if r.reason is not None]
    return "; ".join(parts[:3]) + ("; ..." if len(parts) > 3 else "")


def explain(disclosure: Disclosure, outcome: Outcome) -> str:
    """One or two sentences: what was decided and why, then what is still owed."""
    when = disclosure.occurred.date().isoformat()
    decision = outcome.decision
    if decision is Decision.AUTHORIZED:
        first = (f"The disclosure on {when} is covered by the client's signed authorization "
                 f"{outcome.basis}.")
    elif decision in (Decision.PERMITTED, Decision.REQUIRED):
        verb = "was permitted" if decision is Decision.PERMITTED else "was required by law"
        why = BASIS.get(outcome.basis or "", outcome.basis or "an exception applies")
        first = f"No authorization covers the disclosure on {when}, but it {verb}: {why}."
    else:
        word = "is not permitted" if decision is Decision.UNAUTHORIZED else "needs review"
        cause = f" because {_phrase(outcome.cause)}" if outcome.cause else ""
        if outcome.converted == "near-miss" and not outcome.cause:
            cause = " because an authorization on file may cover it but the record cannot show it"
        elif not cause and outcome.candidates:
            cause = " because no authorization covers it"
        elif not cause:
            cause = f" because {_phrase('no-authorization')}"
        first = f"The disclosure on {when} {word}{cause}."
    if outcome.documentation is not Documentation.NOT_REQUIRED:
        return (f"{first} Because it broke confidentiality, "
                f"{_DOCUMENTATION[outcome.documentation]} and {_NOTICE[outcome.client_notice]}.")
    checked = _checked(outcome)
    if decision in (Decision.UNAUTHORIZED, Decision.REVIEW) and checked:
        return f"{first} Authorizations checked: {checked}."
    if decision is Decision.UNAUTHORIZED:
        return f"{first} Tell the privacy officer; it belongs in the accounting of disclosures."
    if decision is Decision.REVIEW:
        return f"{first} A privacy officer should confirm whether it was allowed."
    if outcome.accountable:
        return f"{first} It belongs in the client's accounting of disclosures."
    return first
