"""What people call the chart's things, in the product's human text (the explanation, the
notes and alerts it writes, the panel): a Consent by its kind and the day it was signed, a
party by its name, a record by its title. Never a resource id: the machine output (the
finding's JSON fields, a note's `context.related`, an alert's `about`) carries the ids.

Pure: built from what normalize.py read (domain values), never from FHIR shapes.

Why the day and not the narrative for a Consent: a Consent has no title in R4, its narrative
may be a page long, and the explanation must stay one or two sentences. Two Consents of the
same kind signed on the same day are told apart by the time of signing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date

from consent_gap import wording
from consent_gap.domain import Authorization, Coding, DataItem, Finding, Releases

AUTHORIZATION = "authorization"
#: A patient-privacy Consent that is not an authorization (a restriction, a notice).
OTHER_CONSENT = "consent form"
SIGNED = "the {kind} signed on {day}"
SIGNED_AT = "the {kind} signed on {day} at {time} UTC"
UNDATED = "an undated {kind}"
UNNAMED_RECIPIENT = wording.PANEL_UNNAMED
UNDESCRIBED_RECORD = "a record the disclosure log does not describe"
UNDESCRIBED_INSTRUMENT = "a legal request on file"
#: The patient as a recipient (the right of access): the notes never name the client.
THE_CLIENT = "the client"


def consents(authorizations: Iterable[Authorization],
             is_authorization: Callable[[Authorization], bool] | None = None) -> dict[str, str]:
    """Each Consent's name by reference: "the authorization signed on 2025-01-02" (or "the
    consent form ..." when `is_authorization` says it is not one, e.g. a restriction); the
    time of signing is added where two of one kind share a day."""
    items = list(authorizations)
    # each Consent's kind asked once (it was asked twice), the days counted in a plain dict:
    # evaluate names every patient's Consents (0.03 CPU s per 2,000 patients before)
    kinds = [AUTHORIZATION if is_authorization is None or is_authorization(auth)
             else OTHER_CONSENT for auth in items]
    days: dict[tuple[str, date], int] = {}
    for what, auth in zip(kinds, items, strict=True):
        if auth.signed_at is not None:
            key = (what, auth.signed_at.date())
            days[key] = days.get(key, 0) + 1
    names: dict[str, str] = {}
    for what, auth in zip(kinds, items, strict=True):
        when = auth.signed_at
        if when is None:
            names[auth.reference] = UNDATED.format(kind=what)
            continue
        day = when.date()
        if days[(what, day)] > 1:
            names[auth.reference] = SIGNED_AT.format(kind=what, day=day.isoformat(),
                                                     time=when.strftime("%H:%M"))
        else:
            names[auth.reference] = SIGNED.format(kind=what, day=day.isoformat())
    return names


def of_releases(releases: Releases, findings: Iterable[Finding]) -> dict[str, str]:
    """What the findings' disclosures name, by reference (the finding's `recipient`, which
    may be an identifier, for the recipient): the recipient's name (the patient as "the
    client": nothing the product writes names the client), each record disclosed and each
    legal instrument in words (`record_words`)."""
    names: dict[str, str] = {}
    for finding in findings:
        released = releases.disclosures.get(finding.disclosure)
        if released is None:
            continue
        party = released.recipient
        if finding.recipient and (party.reference or "").startswith("Patient/"):
            names[finding.recipient] = THE_CLIENT
        elif finding.recipient and party.name:
            names[finding.recipient] = party.name
        for item in (*released.data, *released.instruments):
            if item.reference is not None:
                names[item.reference] = record_words(item)
    return names


def consent(names: Mapping[str, str], reference: str | None) -> str:
    """A Consent by its name (`consents`), never its id."""
    return names.get(reference or "") or wording.CONSENT_UNKNOWN


def recipient(names: Mapping[str, str], reference: str | None) -> str:
    """A recipient by its name, never its id."""
    return names.get(reference or "") or UNNAMED_RECIPIENT


def record(names: Mapping[str, str], reference: str | None) -> str:
    """A disclosed record by its type and title, never its id."""
    return names.get(reference or "") or UNDESCRIBED_RECORD


def instrument(names: Mapping[str, str], reference: str | None) -> str:
    """A legal instrument (a court order, a subpoena) by its type and title, never its id."""
    return names.get(reference or "") or UNDESCRIBED_INSTRUMENT


def listed(words: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c", capitalized: the start of a sentence."""
    said = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return said[0].upper() + said[1:]


def _labels_meaning(labels: Iterable[Coding]) -> str | None:
    words = list(dict.fromkeys(wording.label(code) for _system, code in labels))
    return listed(words) if words else None


def _record_type(resource_type: str | None) -> str:
    if resource_type is None:
        return "Record"
    if resource_type in wording.RECORD_TYPES:
        return wording.RECORD_TYPES[resource_type]
    return "".join(f" {c.lower()}" if c.isupper() and i else c
                   for i, c in enumerate(resource_type))


def record_words(item: DataItem) -> str:
    """A disclosed record in words, without its id: its type and title, description or code
    display ("Progress note: Session 3"); data described only by labels (or unresolved, with
    labels), as what the labels mean ("Psychotherapy notes")."""
    kind = item.kind or _record_type(item.resource_type)
    title = item.title if item.title and item.title != kind else None
    if item.reference is None:
        return _labels_meaning(item.labels) or title or wording.UNDESCRIBED
    if not item.resolved and title is None and (meaning := _labels_meaning(item.labels)):
        return meaning
    return f"{kind}: {title}" if title else kind
