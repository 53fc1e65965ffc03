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
here only `resourceType`, `id`, the `reference` strings (a generic walk, no element read by
name except the one `_include` follows) and a search's OperationOutcome are looked at.

Completeness does not rest on the page size. A server may return fewer `_include`d or
`_revinclude`d resources than exist (HAPI caps them per page, 1,000 by default, and says
nothing), so after the searches:

- Referenced but absent (always): every relative reference in the disclosures to a type the
  engine looks up in the data set (anything but Patient, Practitioner, PractitionerRole,
  Organization, Device, Location, Endpoint, CareTeam, HealthcareService, AuditEvent: those are
  read by reference only), and every RelatedPerson named by a Consent or a notice, that is not
  in the results is fetched by `Type?_id=a,b,c` (`ID_CHUNK` ids per search). Nothing missing,
  no request. A 401/403/404/410 leaves it out, and the engine reports the entity unresolved.
- Reverse includes (only when a truncation is detectable): a search's `_revinclude`s are
  re-run as plain searches (`DocumentReference?related=AuditEvent/a,...`,
  `Provenance?target=Consent/...`, `RelatedPerson?patient=...`) for all its matches when
  (a) the server put an OperationOutcome with issue code `incomplete` in the results (as the
  Microsoft FHIR server does), or (b) a resource the search's `_include` should have brought
  was absent and then found by `_id`: the server dropped includes, and HAPI, which loads the
  reverse includes first and the forward ones from what is left of its budget, has then run
  out on the reverse ones too. A refusal here raises (the batch fails): a missing note or
  signature cannot be reported as unresolved, it would silently change a decision.

Still undetectable, so still bounded by the page size (the scan asks 100 at a time, well
under HAPI's 1,000): a server that drops reverse includes and says nothing, on a search with
no `_include` to give it away (the Patient search's RelatedPersons, the Consent search's
Provenance: a Consent may legitimately have no Provenance, so an absent one proves nothing),
or on the AuditEvent search when the server spends its budget on forward includes first, or
when the disclosures name no data (only their Patient). Absolute references
(`http://.../Type/id`) are not followed up: they may name another server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from consent_gap.domain import PARTY_TYPES
from consent_gap.fhir.capabilities import CapabilityIndex
from consent_gap.fhir.errors import FhirHttpError

log = logging.getLogger("consent_gap.fhir")

DISCLOSE_SUBTYPE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle|disclose"
CONSENT_GAP_TAG = "https://consent-gap.dev/fhir/tag|consent-gap"
DEFAULT_PAGE_SIZE = 200
#: Ids (or references) per follow-up search: short enough for a GET on any server.
ID_CHUNK = 50
#: Types the engine reads by reference only (normalize.py never looks them up in the data
#: set, or the batch brings them anyway): never fetched in a follow-up.
NOT_FETCHED = frozenset({
    "Patient", "Practitioner", "PractitionerRole", "Organization", "Device", "AuditEvent",
    "Location", "Endpoint", "CareTeam", "HealthcareService",
})
#: The element each `_include` we send follows (R4 search parameter -> element path).
_INCLUDED_ELEMENT = {"AuditEvent:entity": "entity"}
#: Statuses that mean "not for you" or "not there": the resource is left out.
_LEFT_OUT = (401, 403, 404, 410)
#: A relative reference, possibly to a version (`Type/id/_history/v`): what is fetched is `Type/id`.
_RELATIVE = re.compile(
    r"^([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


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


Key = tuple[str, str]


def resource_key(resource: dict[str, Any]) -> Key:
    """A resource's identity in a result set: (type, id)."""
    return str(resource.get("resourceType")), str(resource.get("id"))


def collect(found: dict[Key, dict[str, Any]], resources: Iterable[dict[str, Any]]) -> None:
    """Add each data resource to `found` once (the first copy wins): a resource included by
    several searches or pages is the same resource. OperationOutcomes are not data."""
    for resource in resources:
        if resource.get("resourceType") != "OperationOutcome":
            found.setdefault(resource_key(resource), resource)


def chunks(items: Sequence[str], size: int = ID_CHUNK) -> Iterator[list[str]]:
    """`items` in runs of at most `size`: one follow-up search per run."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _run(client: SearchClient, search: Search, found: dict[Key, dict[str, Any]],
         page_size: int) -> list[dict[str, Any]]:
    """One search across all its pages: every resource it returned (OperationOutcomes
    included), each data resource also added once to `found`."""
    got = list(client.search(search.type, list(search.params), page_size=page_size))
    collect(found, got)
    return got


def run_searches(
    client: SearchClient, searches: Iterable[Search], found: dict[tuple[str, str], dict],
    page_size: int = DEFAULT_PAGE_SIZE,
) -> None:
    """Run each search across all its pages, adding each resource once to `found`."""
    for s in searches:
        _run(client, s, found, page_size)


def references(node: Any) -> set[Key]:
    """Every relative `Type/id` reference anywhere under `node`, as (type, id). A generic walk:
    it reads no element by name, it only collects what may have to be fetched."""
    found: set[Key] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            value = item.get("reference")
            match = _RELATIVE.match(value) if isinstance(value, str) else None
            if match:
                found.add((match[1], match[2]))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def wanted_references(found: dict[Key, dict[str, Any]]) -> set[Key]:
    """What the engine may look up in the data set: whatever a disclosure names (disclosed
    data, legal instruments, recipients) but the types in NOT_FETCHED, and the RelatedPersons
    a Consent or a notice names (who signs, who is told)."""
    wanted: set[Key] = set()
    for (rtype, _rid), resource in found.items():
        if rtype == "AuditEvent":
            wanted |= {r for r in references(resource) if r[0] not in NOT_FETCHED}
        elif rtype in ("Consent", "Communication"):
            wanted |= {r for r in references(resource) if r[0] == "RelatedPerson"}
    return wanted


def tolerant_search(client: SearchClient, rtype: str, params: Any,
                    page_size: int = DEFAULT_PAGE_SIZE) -> list[dict[str, Any]]:
    """A search the decision can do without (a follow-up, or one outside the granted scopes):
    refused or absent leaves its resources out (the engine then reports what it could not
    resolve); any other failure raises. `params` as `client.search` takes them."""
    try:
        return list(client.search(rtype, params, page_size=page_size))
    except FhirHttpError as error:
        if error.status in _LEFT_OUT:
            log.info("search of %s skipped: HTTP %s", rtype, error.status)
            return []
        raise


def fetch_missing(
    client: SearchClient, found: dict[Key, dict[str, Any]], tried: set[Key],
    page_size: int = DEFAULT_PAGE_SIZE,
) -> set[Key]:
    """Fetch by `_id` what `wanted_references` names and `found` lacks (each at most once over
    the calls sharing `tried`); returns the keys it added to `found`."""
    missing = wanted_references(found) - found.keys() - tried
    tried |= missing
    added = fetch_by_id(client, found, missing, page_size)
    if missing:
        log.info("follow-up: %d referenced resource(s) absent from the searches, %d fetched",
                 len(missing), len(added))
    return added


def _says_incomplete(results: Iterable[dict[str, Any]]) -> bool:
    """The server put an OperationOutcome with an `incomplete` issue among the results."""
    return any(
        r.get("resourceType") == "OperationOutcome" and any(
            isinstance(i, dict) and i.get("code") == "incomplete" for i in r.get("issue") or [])
        for r in results)


def includes_lost(search: Search, results: list[dict[str, Any]], recovered: set[Key]) -> bool:
    """True when this search's results are known to lack included resources: the server said
    so, or something its `_include` should have brought was found later by `_id`."""
    if _says_incomplete(results):
        return True
    for name, value in search.params:
        element = _INCLUDED_ELEMENT.get(value) if name == "_include" else None
        if element and any(references(r.get(element)) & recovered
                           for r in results if r.get("resourceType") == search.type):
            return True
    return False


def reverse_searches(search: Search, results: list[dict[str, Any]]) -> list[Search]:
    """Each `_revinclude=Type:param` of `search` as a plain search `Type?param=<matches>`,
    `ID_CHUNK` references at a time."""
    matches = sorted({f"{search.type}/{r['id']}" for r in results
                      if r.get("resourceType") == search.type and r.get("id")})
    out = []
    for name, value in search.params:
        if name != "_revinclude":
            continue
        rtype, param = value.split(":")[:2]
        out += [Search(rtype, ((param, ",".join(chunk)),)) for chunk in chunks(matches)]
    return out


def fetch_charts(
    client: SearchClient,
    patient_ids: Sequence[str],
    *,
    caps: CapabilityIndex | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    disclosed_since: str | None = None,
) -> list[dict[str, Any]]:
    """Every resource the engine needs for these patients, each once (see the module doc:
    the four searches, then the follow-ups that make the result complete whatever the server
    left out of its includes). Pass the server's CapabilityIndex to use
    `_revinclude=Communication:about` where declared. Feed the result to `evaluate()` as a
    list of resources."""
    about = communication_about_supported(caps)
    found: dict[Key, dict[str, Any]] = {}
    searches = chart_searches(patient_ids, communication_about=about,
                              disclosed_since=disclosed_since)
    results = [(s, _run(client, s, found, page_size)) for s in searches]
    tried: set[Key] = set()
    recovered = fetch_missing(client, found, tried, page_size)
    for search, got in results:
        if includes_lost(search, got, recovered):
            log.warning("%s search: the server left out included resources; searching "
                        "for its reverse includes one by one", search.type)
            run_searches(client, reverse_searches(search, got), found, page_size)
    if not about and patient_ids:
        related = sorted(rid for rtype, rid in found if rtype == "RelatedPerson")
        run_searches(client, [notice_search(patient_ids, related)], found, page_size)
        fetch_missing(client, found, tried, page_size)
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


# --------------------------------------------------------------------------------------------
# The accounting of disclosures (CONTRACT 8): the chart, plus whom and what it names.
# --------------------------------------------------------------------------------------------

#: Never followed for the accounting: the chart's own records, already searched.
_NOT_NAMED = frozenset({"Patient", "AuditEvent", "Communication", "Consent", "Provenance"})


def disclosure_communication_search(patient_ids: Sequence[str]) -> Search:
    """Communications about the patients (`subject`), not our own: the disclosures sent as a
    letter, fax or message (CONTRACT 1.1), which the plan's searches above do not bring."""
    return Search("Communication", (("subject", _refs("Patient", patient_ids)),
                                    ("_tag:not", CONSENT_GAP_TAG)))


def named_references(found: dict[Key, dict[str, Any]]) -> set[Key]:
    """What the disclosures (AuditEvents, Communications) name and `found` lacks: recipients
    and other parties by name and address, data and instruments by title; and the
    practitioner and organization of each PractitionerRole (a recipient's name and address)."""
    named: set[Key] = set()
    for (rtype, _rid), resource in found.items():
        if rtype in ("AuditEvent", "Communication"):
            named |= {r for r in references(resource) if r[0] not in _NOT_NAMED}
        elif rtype == "PractitionerRole":
            named |= {r for r in references(resource) if r[0] in PARTY_TYPES}
    return named - found.keys()


def fetch_by_id(client: SearchClient, found: dict[Key, dict[str, Any]], keys: Iterable[Key],
                page_size: int = DEFAULT_PAGE_SIZE,
                params: Any = None) -> set[Key]:
    """Fetch `keys` by `Type?_id=a,b,c` (`ID_CHUNK` at a time; `params(type)` adds search
    parameters, e.g. the patient a patient-scoped token must name), adding them to `found`;
    refused or absent ones are left out. Returns the keys added."""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in sorted(keys):
        by_type.setdefault(rtype, []).append(rid)
    added: set[Key] = set()
    for rtype, ids in by_type.items():
        for chunk in chunks(ids):
            query = [("_id", ",".join(chunk)), *(params(rtype) if params else ())]
            for resource in tolerant_search(client, rtype, query, page_size):
                key = resource_key(resource)
                if key not in found and resource.get("resourceType") != "OperationOutcome":
                    found[key] = resource
                    added.add(key)
    return added


def fetch_named(client: SearchClient, found: dict[Key, dict[str, Any]],
                extra: Iterable[str | None] = (), page_size: int = DEFAULT_PAGE_SIZE,
                params: Any = None) -> None:
    """Complete `found` with what its disclosures name (`named_references`, two hops for a
    PractitionerRole's practitioner and organization) and the `extra` references (the
    practice), so the accounting can give names and addresses instead of ids."""
    wanted = {tuple(ref.split("/", 1)) for ref in extra if ref and _RELATIVE.match(ref)}
    keys = named_references(found) | {k for k in wanted if k not in found}
    for _hop in range(2):
        if not keys:
            return
        fetch_by_id(client, found, keys, page_size, params)
        keys = named_references(found) - keys


def fetch_accounting_chart(client: SearchClient, patient_id: str, *,
                           extra: Iterable[str | None] = (),
                           page_size: int = DEFAULT_PAGE_SIZE) -> list[dict[str, Any]]:
    """One patient's chart for the accounting: the fetch plan's (`fetch_chart`), the
    disclosures sent as Communications, and whom and what the disclosures name."""
    found: dict[Key, dict[str, Any]] = {}
    collect(found, fetch_chart(client, patient_id, page_size=page_size))
    run_searches(client, [disclosure_communication_search([patient_id])], found, page_size)
    fetch_named(client, found, extra, page_size)
    return list(found.values())
