"""Plain words for a finding: one or two sentences a clinician can act on.

Built only from the engine's outcome (decision, basis, reasons, Consents checked, 1.4 state)
and the Consents' names (`wording.names.consents`: "the authorization signed on 2025-01-02");
the words of each code come from `wording`; this module only composes them, so the engine
stays free of prose. The explanation is human text: it names no resource by id (the finding's
`basis` and the note's `context.related` carry the ids).
"""

from __future__ import annotations

from collections.abc import Mapping

from consent_gap import wording
from consent_gap.domain import Decision, Disclosure, Documentation
from consent_gap.engine import Outcome
from consent_gap.wording import names as named

# The values every explanation compares with, as module globals (an enum member read through
# its class is a slow attribute lookup, 70 ns; explain made five to eight per finding)
_AUTHORIZED, _PERMITTED, _REQUIRED = Decision.AUTHORIZED, Decision.PERMITTED, Decision.REQUIRED
_UNAUTHORIZED, _REVIEW = Decision.UNAUTHORIZED, Decision.REVIEW
_NOT_REQUIRED = Documentation.NOT_REQUIRED


def _checked(outcome: Outcome, consents: Mapping[str, str]) -> str:
    """'the authorization signed on 2025-01-02 (the authorization had expired)' for each
    candidate that did not cover: every one of them (an explanation cut at three hid the
    Consent the officer looked for)."""
    parts = [f"{named.consent(consents, r[0])} ({wording.reason(r[1])})"  # (Consent, reason)
             for r in outcome.candidates if r[1] is not None]
    return "; ".join(parts)


def explain(disclosure: Disclosure, outcome: Outcome,
            consents: Mapping[str, str] | None = None) -> str:
    """One or two sentences: what was decided and why, then what is still owed. `consents`:
    each Consent's name by reference (`wording.names.consents`)."""
    consents = consents or {}
    when = disclosure.occurred.date().isoformat()
    decision = outcome.decision
    if decision is _AUTHORIZED:
        first = (f"The disclosure on {when} is covered by the client's "
                 f"{_authorization(consents, outcome.basis)}.")
    elif decision in (_PERMITTED, _REQUIRED):
        verb = "was permitted" if decision is _PERMITTED else "was required by law"
        why = wording.basis(outcome.basis) if outcome.basis else "an exception applies"
        first = f"No authorization covers the disclosure on {when}, but it {verb}: {why}."
    else:
        word = "is not permitted" if decision is _UNAUTHORIZED else "needs review"
        cause = f" because {wording.reason(outcome.cause)}" if outcome.cause else ""
        if outcome.converted == "near-miss" and not outcome.cause:
            cause = " because an authorization on file may cover it but the record cannot show it"
        elif not cause and outcome.candidates:
            cause = " because no authorization covers it"
        elif not cause:
            cause = f" because {wording.reason('no-authorization')}"
        first = f"The disclosure on {when} {word}{cause}."
    if outcome.documentation is not _NOT_REQUIRED:
        return (f"{first} Because it broke confidentiality, "
                f"{wording.documentation(outcome.documentation)} and "
                f"{wording.client_notice(outcome.client_notice)}.")
    if decision is _UNAUTHORIZED or decision is _REVIEW:
        checked = _checked(outcome, consents)  # worded only where it is printed
        if checked:
            return f"{first} Authorizations checked: {checked}."
    if decision is _UNAUTHORIZED:
        return f"{first} Tell the privacy officer; it belongs in the accounting of disclosures."
    if decision is _REVIEW:
        return f"{first} A privacy officer should confirm whether it was allowed."
    if outcome.accountable:
        return f"{first} It belongs in the client's accounting of disclosures."
    return first


def _authorization(consents: Mapping[str, str], reference: str | None) -> str:
    """The covering Consent as "authorization signed on 2025-01-02" (after "the client's")."""
    name = named.consent(consents, reference)
    return name.removeprefix("the ").removeprefix("an ")
