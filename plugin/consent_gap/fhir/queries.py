"""Fetch plans: every resource the engine needs for a set of patients, in few round trips.

For a batch of patients, four searches each covering the whole batch (`patient=a,b,c`):

1. `Patient?_id=a,b,c&_revinclude=RelatedPerson:patient`: the patients (birth date for the
   minor checks) and their representatives (who may sign, who may receive the notice).
2. `Consent?patient=...&_revinclude=Provenance:target`: the authorizations with the
   Provenance that signs or revokes them.
3. `AuditEvent?patient=...&subtype=<iso-21089 disclose>&_include=AuditEvent:entity
   &_revinclude=DocumentReference:related`: the disclosures, the resources they name (the data
   disclosed with its labels, legal instruments), and the notes that document them
   (`DocumentReference.context.related`). Where the server declares a `Communication:about`
   reverse include (R4 has no `about` search parameter; a server may add one), client notices
   come with it too and step 4 is skipped.
4. `Communication?recipient=Patient/a,...,RelatedPerson/r,...&_tag:not=<consent-gap>`: notices
   sent to the patients or their representatives, without our own alerts and reminders.

The plans are pure data (`Search`), so the benchmark's bare sweep can run exactly the same
searches. Results are plain resource dicts, each once; what they mean is normalize.py's job:
only `resourceType` and `id` are looked at here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from consent_gap.fhir.capabilities import CapabilityIndex

DISCLOSE_SUBTYPE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle|disclose"
CONSENT_GAP_TAG = "https://consent-gap.dev/fhir/tag|consent-gap"
DEFAULT_PAGE_SIZE = 200


class SearchClient(Protocol):
    def search(self, rtype: str, params: Any = None, *, page_size: int | None = None
               ) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True)
class Search:
    """One search: a resource type and its parameters as (name, value) pairs."""

    type: str
    params: tuple[tuple[str, str], ...]


def _refs(kind: str, ids: Iterable[str]) -> str:
    return ",".join(f"{kind}/{rid}" for rid in ids)


def communication_about_supported(caps: CapabilityIndex | None) -> bool:
    """True when the server can reverse-include Communications by `about` from AuditEvent."""
    return caps is not None and caps.supports_search_param("Communication", "about") and \
        caps.supports_revinclude("AuditEvent", "Communication:about")


def chart_searches(
    patient_ids: Sequence[str], *, communication_about: bool = False,
    disclosed_since: str | None = None,
) -> list[Search]:
    """Steps 1-3 of the module's plan for one batch. `disclosed_since` (a FHIR dateTime)
    narrows the disclosures to those recorded since then (`date=ge...`); the Consents are
    never narrowed, as an old authorization can cover a new disclosure."""
    if not patient_ids:
        return []
    patients = _refs("Patient", patient_ids)
    audit = [("patient", patients), ("subtype", DISCLOSE_SUBTYPE),
             ("_include", "AuditEvent:entity"), ("_revinclude", "DocumentReference:related")]
    if communication_about:
        audit.append(("_revinclude", "Communication:about"))
    if disclosed_since:
        audit.append(("date", f"ge{disclosed_since}"))
    return [
        Search("Patient", (("_id", ",".join(patient_ids)),
                           ("_revinclude", "RelatedPerson:patient"))),
        Search("Consent", (("patient", patients), ("_revinclude", "Provenance:target"))),
        Search("AuditEvent", tuple(audit)),
    ]


def notice_search(patient_ids: Sequence[str], related_person_ids: Sequence[str]) -> Search:
    """Step 4: Communications to the patients or their representatives, not our own."""
    recipients = ",".join(p for p in (_refs("Patient", patient_ids),
                                      _refs("RelatedPerson", related_person_ids)) if p)
    return Search("Communication", (("recipient", recipients), ("_tag:not", CONSENT_GAP_TAG)))


def _key(resource: dict[str, Any]) -> tuple[str, str]:
    return str(resource.get("resourceType")), str(resource.get("id"))


def run_searches(
    client: SearchClient, searches: Iterable[Search], found: dict[tuple[str, str], dict],
    page_size: int = DEFAULT_PAGE_SIZE,
) -> None:
    """Run each search across all its pages, adding each resource once to `found`."""
    for s in searches:
        for resource in client.search(s.type, list(s.params), page_size=page_size):
            found.setdefault(_key(resource), resource)


def fetch_charts(
    client: SearchClient,
    patient_ids: Sequence[str],
    *,
    caps: CapabilityIndex | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    disclosed_since: str | None = None,
) -> list[dict[str, Any]]:
    """Every resource the engine needs for these patients, each once (see the module doc).
    Pass the server's CapabilityIndex to use `_revinclude=Communication:about` where declared.
    Feed the result to `evaluate()` as a list of resources."""
    about = communication_about_supported(caps)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    run_searches(client, chart_searches(patient_ids, communication_about=about,
                                        disclosed_since=disclosed_since), found, page_size)
    if not about and patient_ids:
        related = sorted(rid for rtype, rid in found if rtype == "RelatedPerson")
        run_searches(client, [notice_search(patient_ids, related)], found, page_size)
    return list(found.values())


def fetch_chart(client: SearchClient, patient_id: str, **kw: Any) -> list[dict[str, Any]]:
    """One patient's records (the panel): `fetch_charts` for a batch of one."""
    return fetch_charts(client, [patient_id], **kw)


def _patient_ids(resources: Iterable[dict[str, Any]]) -> set[str]:
    return {str(r["id"]) for r in resources if r.get("resourceType") == "Patient" and r.get("id")}


def all_patient_ids(client: SearchClient, page_size: int = 1000) -> list[str]:
    """Every Patient id on the server (ids only: `_elements=id`), sorted."""
    return sorted(_patient_ids(client.search("Patient", [("_elements", "id")],
                                             page_size=page_size)))


def changed_patient_searches(since: str) -> list[Search]:
    """Searches whose `Patient` results are the patients with a disclosure, Consent, signing
    Provenance, or someone else's note or notice changed since `since` (our own writes, tagged
    consent-gap, are left out). The patients come as included resources, so no reference is
    parsed here."""
    ge = ("_lastUpdated", f"ge{since}")
    not_ours = ("_tag:not", CONSENT_GAP_TAG)
    return [
        Search("AuditEvent", (ge, ("subtype", DISCLOSE_SUBTYPE),
                              ("_include", "AuditEvent:patient"), ("_elements", "id"))),
        Search("Consent", (ge, ("_include", "Consent:patient"), ("_elements", "id"))),
        Search("Provenance", (ge, ("_include", "Provenance:target:Consent"),
                              ("_include:iterate", "Consent:patient"), ("_elements", "id"))),
        Search("DocumentReference", (ge, not_ours, ("_include", "DocumentReference:patient"),
                                     ("_elements", "id"))),
        Search("Communication", (ge, not_ours, ("_include", "Communication:patient"),
                                 ("_include", "Communication:recipient:Patient"),
                                 ("_elements", "id"))),
    ]


def changed_patient_ids(
    client: SearchClient, since: str, page_size: int = DEFAULT_PAGE_SIZE,
) -> list[str]:
    """Patients with a relevant change since `since` (a FHIR instant), sorted."""
    ids: set[str] = set()
    for s in changed_patient_searches(since):
        ids |= _patient_ids(client.search(s.type, list(s.params), page_size=page_size))
    return sorted(ids)
