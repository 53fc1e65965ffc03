"""The one fetch plan: what the engine reads about a set of patients, as searches (values),
with the codes taken from the rules in use (mappings/disclosures.toml), and the runners that
make the result complete whatever the server left out. The scan, the panel, the CDS Hooks card
and every later reader fetch a chart through this module; fhir/ stays a generic client.

**A batch of patients** (the scan, `system/` scopes), each search covering the whole batch:

1. `Patient?_id=a,b,c&_revinclude=RelatedPerson:patient`: the patients (birth date for the
   minor checks) and their representatives (who may sign, who may receive the notice).
2. `Consent?patient=...&_revinclude=Provenance:target`: the authorizations with the
   Provenance that signs or revokes them.
3. `AuditEvent?patient=...&subtype=<disclose>&_include=AuditEvent:entity
   &_revinclude=DocumentReference:related`: the disclosures, the resources they name (the data
   disclosed with its labels, legal instruments), and the notes that document them.
4. `Communication?patient=...&category=<disclosure channels>&_revinclude=DocumentReference:related`:
   the disclosures sent as letters, faxes or messages (CONTRACT 1.1) and their notes.
   Where the server declares a `Communication:about` reverse include (R4 has no `about` search
   parameter; a server may add one), client notices come with 3 and 4 and step 5 is skipped.
5. `Communication?recipient=Patient/a,...,RelatedPerson/r,...&_tag:not=<consent-gap>`: notices
   sent to the patients or their representatives, without our own alerts and reminders.
6. `Organization?_id=...`, `Practitioner?_id=...` (one search per type for the batch, tolerant):
   whom the disclosures went to (`recipient_references`), which the engine reads by reference
   only but the alerts and notes name ("sent to Alden Valley Police"), and a PractitionerRole's
   practitioner and organization.

**One patient** (the panel and the card, `patient/` scopes: every search names the patient, as
a patient-scoped server refuses one that does not): the Patient read, then concurrently its
Consents, disclosure AuditEvents, DocumentReferences, Communications (by subject and, where the
server allows, by recipient) and RelatedPersons; then the Provenance of each Consent and the
recipients of its disclosures (to name them).

**Completeness does not rest on the page size.** A server may return fewer `_include`d or
`_revinclude`d resources than exist (HAPI caps them per page, 1,000 by default, and says
nothing), so after the searches:

- Referenced but absent (always): every relative reference in the disclosures (AuditEvents and
  Communications) to a type the engine looks up in the data set (anything but `NOT_FETCHED`),
  and every RelatedPerson a Consent names, that is not in the results is fetched by
  `Type?_id=a,b,c` (`ID_CHUNK` ids per search). Nothing missing, no request. A
  401/403/404/410 leaves it out, and the engine reports the entity unresolved.
- Reverse includes (only when a truncation is detectable): a search's `_revinclude`s are re-run
  as plain searches when (a) the server put an OperationOutcome with issue code `incomplete` in
  the results (as the Microsoft FHIR server does), or (b) a resource the search's `_include`
  should have brought was absent and then found by `_id`: the server dropped includes. A
  refusal here raises (the batch fails): a missing note or signature cannot be reported as
  unresolved, it would silently change a decision.

Still undetectable, so still bounded by the page size (the scan asks 100 at a time, well under
HAPI's 1,000): a server that drops reverse includes and says nothing on a search with no
`_include` to give it away. Absolute references (`http://.../Type/id`) are not followed up: they
may name another server.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from consent_gap.domain import PARTY_TYPES
from consent_gap.fhir.capabilities import CapabilityIndex
from consent_gap.fhir.search import (
    DEFAULT_PAGE_SIZE,
    Key,
    Search,
    SearchClient,
    chunks,
    collect,
    references,
    refs,
    resource_key,
    reverse_searches,
    run,
    run_all,
    says_incomplete,
)

log = logging.getLogger("consent_gap.fhir")

#: Types the engine reads by reference only (normalize.py never looks them up in the data
#: set, or the plan brings them anyway): never fetched in a follow-up.
NOT_FETCHED = frozenset({
    "Patient", "Practitioner", "PractitionerRole", "Organization", "Device", "AuditEvent",
    "Location", "Endpoint", "CareTeam", "HealthcareService",
})
#: The element each `_include` we send follows (R4 search parameter -> element path).
_INCLUDED_ELEMENT = {"AuditEvent:entity": "entity"}
#: Types whose search takes `patient` (so a patient-scoped server accepts the search by id).
_PATIENT_SEARCH = frozenset({
    "DocumentReference", "Observation", "Condition", "Communication", "RelatedPerson",
    "Procedure", "MedicationRequest", "MedicationStatement", "Encounter", "DiagnosticReport",
    "CarePlan", "AllergyIntolerance", "Immunization", "ServiceRequest", "QuestionnaireResponse",
})


def _tokens(codings: Iterable[tuple[str, str]]) -> str:
    return ",".join(f"{system}|{code}" for system, code in sorted(codings))


@dataclass(frozen=True)
class ChartCodes:
    """The codes the searches name, as search tokens (`system|code`, comma-joined), read from
    the rules in use: a practice that adds a disclosure channel in its own tables has its
    Communications fetched too."""

    disclosure_type: str
    disclosure_subtype: str
    channels: str
    own_tag: str

    @classmethod
    def from_rules(cls, rules: Any) -> ChartCodes:
        codes = rules.disclosures
        return cls(_tokens(codes.type), _tokens(codes.subtype), _tokens(codes.channels),
                   _tokens([codes.own_tag]))


@functools.cache
def default_codes() -> ChartCodes:
    """The codes of the rule tables shipped with the package."""
    from consent_gap.mappings import load_rules

    return ChartCodes.from_rules(load_rules())


def _codes(codes: ChartCodes | None) -> ChartCodes:
    return codes if codes is not None else default_codes()


# ---- the plans (values) -------------------------------------------------------------------

def communication_about_supported(caps: CapabilityIndex | None) -> bool:
    """True when the server can reverse-include Communications by `about`."""
    return caps is not None and caps.supports_search_param("Communication", "about") and \
        caps.supports_revinclude("AuditEvent", "Communication:about")


def chart_searches(
    patient_ids: Sequence[str], codes: ChartCodes | None = None, *,
    communication_about: bool = False, disclosed_since: str | None = None,
) -> list[Search]:
    """Steps 1-4 of the batch plan. `disclosed_since` (a FHIR dateTime) narrows the
    disclosures to those made since then; the Consents are never narrowed, as an old
    authorization can cover a new disclosure."""
    if not patient_ids:
        return []
    codes = _codes(codes)
    patients = refs("Patient", patient_ids)
    about = [("_revinclude", "Communication:about")] if communication_about else []
    audit = [("patient", patients), ("subtype", codes.disclosure_subtype),
             ("_include", "AuditEvent:entity"), ("_revinclude", "DocumentReference:related"),
             *about]
    if disclosed_since:
        audit.append(("date", f"ge{disclosed_since}"))
    searches = [
        Search("Patient", (("_id", ",".join(patient_ids)),
                           ("_revinclude", "RelatedPerson:patient"))),
        Search("Consent", (("patient", patients), ("_revinclude", "Provenance:target"))),
        Search("AuditEvent", tuple(audit)),
    ]
    if codes.channels:
        sent = [("sent", f"ge{disclosed_since}")] if disclosed_since else []
        searches.append(Search("Communication", (
            ("patient", patients), ("category", codes.channels),
            ("_revinclude", "DocumentReference:related"), *about, *sent)))
    return searches


def notice_search(patient_ids: Sequence[str], related_person_ids: Sequence[str],
                  codes: ChartCodes | None = None) -> Search:
    """Step 5: Communications to the patients or their representatives, not our own."""
    recipients = ",".join(p for p in (refs("Patient", patient_ids),
                                      refs("RelatedPerson", related_person_ids)) if p)
    return Search("Communication", (("recipient", recipients),
                                    ("_tag:not", _codes(codes).own_tag)))


def patient_searches(patient_id: str, codes: ChartCodes | None = None) -> list[Search]:
    """The one-patient plan's first round (after the Patient read): every search names the
    patient. The search by recipient and the RelatedPersons are tolerant: a patient-scoped
    server may refuse them, and the decision can do without (the engine says what is
    unresolved)."""
    ref = f"Patient/{patient_id}"
    return [
        Search("Consent", (("patient", ref),)),
        Search("AuditEvent", (("patient", ref), ("subtype", _codes(codes).disclosure_subtype))),
        Search("DocumentReference", (("patient", ref),)),
        Search("Communication", (("patient", ref),)),
        Search("Communication", (("recipient", ref),), tolerant=True),
        Search("RelatedPerson", (("patient", ref),), tolerant=True),
    ]


def prefetch_templates(codes: ChartCodes | None = None) -> dict[str, str]:
    """The one-patient plan as CDS Hooks prefetch templates: simple searches a CDS client can
    answer from its own FHIR API. The Provenance that signs a Consent and the notes that
    document a disclosure come by chained searches, as no search parameter links them to the
    patient directly."""
    codes = _codes(codes)
    patient = "{{context.patientId}}"
    return {
        "patient": f"Patient/{patient}",
        "relatedPersons": f"RelatedPerson?patient={patient}",
        "consents": f"Consent?patient={patient}",
        "consentProvenance": f"Provenance?target:Consent.patient={patient}",
        "disclosures": (f"AuditEvent?patient={patient}&type={codes.disclosure_type}"
                        f"&subtype={codes.disclosure_subtype}&_include=AuditEvent:entity"),
        "disclosureNotes": f"DocumentReference?related:AuditEvent.patient={patient}",
        "documents": f"DocumentReference?patient={patient}",
        "communications": f"Communication?patient={patient}",
        "notices": f"Communication?recipient=Patient/{patient}",
    }


def by_id_searches(wanted: Iterable[Key], patient_id: str | None = None) -> list[Search]:
    """Follow-ups by `_id`, `ID_CHUNK` at a time, tolerant; the patient named where the type
    allows (a patient-scoped server accepts only those)."""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in sorted(wanted):
        by_type.setdefault(rtype, []).append(rid)
    out = []
    for rtype, ids in by_type.items():
        for chunk in chunks(ids):
            params = [("_id", ",".join(chunk))]
            if patient_id and rtype in _PATIENT_SEARCH:
                params.append(("patient", f"Patient/{patient_id}"))
            out.append(Search(rtype, tuple(params), tolerant=True))
    return out


def wanted_references(found: dict[Key, dict[str, Any]]) -> set[Key]:
    """What the engine may look up in the data set: whatever a disclosure (an AuditEvent or a
    Communication) names (disclosed data, legal instruments, recipients) but the types in
    NOT_FETCHED, and the RelatedPersons a Consent names (who signs). A Communication that is a
    notice names only what NOT_FETCHED holds or what the plan brings anyway."""
    wanted: set[Key] = set()
    for (rtype, _rid), resource in found.items():
        if rtype in ("AuditEvent", "Communication"):
            wanted |= {r for r in references(resource) if r[0] not in NOT_FETCHED}
        elif rtype == "Consent":
            wanted |= {r for r in references(resource) if r[0] == "RelatedPerson"}
    return wanted


# ---- the runners (I/O through the client) -------------------------------------------------

def fetch_missing(
    client: SearchClient, found: dict[Key, dict[str, Any]], tried: set[Key],
    page_size: int = DEFAULT_PAGE_SIZE, patient_id: str | None = None,
) -> set[Key]:
    """Fetch by `_id` what `wanted_references` names and `found` lacks (each at most once over
    the calls sharing `tried`); returns the keys it added to `found`."""
    missing = wanted_references(found) - found.keys() - tried
    tried |= missing
    added: set[Key] = set()
    for search in by_id_searches(missing, patient_id):
        for resource in run(client, search, None, page_size):
            key = resource_key(resource)
            if key not in found and resource.get("resourceType") != "OperationOutcome":
                found[key] = resource
                added.add(key)
    if missing:
        log.info("follow-up: %d referenced resource(s) absent from the searches, %d fetched",
                 len(missing), len(added))
    return added


def includes_lost(search: Search, results: list[dict[str, Any]], recovered: set[Key]) -> bool:
    """True when this search's results are known to lack included resources: the server said
    so, or something its `_include` should have brought was found later by `_id`."""
    if says_incomplete(results):
        return True
    for name, value in search.params:
        element = _INCLUDED_ELEMENT.get(value) if name == "_include" else None
        if element and any(references(r.get(element)) & recovered
                           for r in results if r.get("resourceType") == search.type):
            return True
    return False


def fetch_charts(
    client: SearchClient,
    patient_ids: Sequence[str],
    *,
    codes: ChartCodes | None = None,
    caps: CapabilityIndex | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    disclosed_since: str | None = None,
) -> list[dict[str, Any]]:
    """Every resource the engine needs for these patients, each once (the batch plan, then
    the follow-ups that make the result complete whatever the server left out of its
    includes). Pass the server's CapabilityIndex to use `_revinclude=Communication:about`
    where declared. Feed the result to `evaluate()` as a list of resources."""
    about = communication_about_supported(caps)
    found: dict[Key, dict[str, Any]] = {}
    searches = chart_searches(patient_ids, codes, communication_about=about,
                              disclosed_since=disclosed_since)
    results = [(s, run(client, s, found, page_size)) for s in searches]
    tried: set[Key] = set()
    recovered = fetch_missing(client, found, tried, page_size)
    for search, got in results:
        if includes_lost(search, got, recovered):
            log.warning("%s search: the server left out included resources; searching "
                        "for its reverse includes one by one", search.type)
            run_all(client, reverse_searches(search, got), found, page_size)
    if not about and patient_ids:
        related = sorted(rid for rtype, rid in found if rtype == "RelatedPerson")
        run_all(client, [notice_search(patient_ids, related, codes)], found, page_size)
        fetch_missing(client, found, tried, page_size)
    # Whom the disclosures went to, so that the alerts and notes say "sent to <name>": one
    # search by `_id` per type for the whole batch (and a second for PractitionerRoles).
    fetch_named(client, found, page_size=page_size, wanted=recipient_references)
    return list(found.values())


def fetch_patient_chart(
    client: Any, patient_id: str, *, codes: ChartCodes | None = None, workers: int = 6,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> list[dict[str, Any]]:
    """Everything the engine needs about one patient, as resource dicts (each once), read the
    way a patient-scoped token allows: round one (the Patient read and `patient_searches`)
    concurrently, then the Provenance of each Consent and what round one names but did not
    bring (`wanted_references`), also concurrently."""
    found: dict[Key, dict[str, Any]] = {}
    calls: list[Callable[[], list[dict[str, Any]]]] = [
        lambda: [client.read("Patient", patient_id)]]
    calls += [functools.partial(run, client, s, None, page_size)
              for s in patient_searches(patient_id, codes)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for resources in pool.map(lambda call: call(), calls):
            collect(found, resources)
        consents = sorted(f"Consent/{rid}" for rtype, rid in found if rtype == "Consent")
        second = [Search("Provenance", (("target", ",".join(chunk)),)) for chunk in
                  chunks(consents)]
        second += by_id_searches((wanted_references(found) - found.keys())
                                 | recipient_references(found), patient_id)
        for resources in pool.map(lambda s: run(client, s, None, page_size), second):
            collect(found, resources)
    return list(found.values())


def fetch_referenced(client: SearchClient, resources: list[dict[str, Any]], patient_id: str,
                     page_size: int = DEFAULT_PAGE_SIZE) -> list[dict[str, Any]]:
    """What `resources` name but do not hold, fetched by `_id` as the one-patient plan's
    second round does: for a chart that came from elsewhere (a CDS client's prefetch whose
    server ignored an `_include`). Refused or absent reads are left out; the engine reports
    them unresolved."""
    found: dict[Key, dict[str, Any]] = {}
    collect(found, resources)
    added: list[dict[str, Any]] = []
    for search in by_id_searches(wanted_references(found) - found.keys(), patient_id):
        added += [r for r in run(client, search, None, page_size)
                  if r.get("resourceType") != "OperationOutcome"]
    return added


def lacks_references(resources: list[dict[str, Any]]) -> bool:
    """True when `resources` name something the engine reads that they do not hold."""
    found: dict[Key, dict[str, Any]] = {}
    collect(found, resources)
    return bool(wanted_references(found) - found.keys())


# ---- selecting patients -------------------------------------------------------------------

def _patient_ids(resources: Iterable[dict[str, Any]]) -> set[str]:
    return {str(r["id"]) for r in resources if r.get("resourceType") == "Patient" and r.get("id")}


def all_patient_ids(client: SearchClient, page_size: int = 1000) -> list[str]:
    """Every Patient id on the server (ids only: `_elements=id`), sorted."""
    return sorted(_patient_ids(client.search("Patient", [("_elements", "id")],
                                             page_size=page_size)))


def changed_patient_searches(since: str, codes: ChartCodes | None = None) -> list[Search]:
    """Searches whose `Patient` results are the patients with a disclosure, Consent, signing
    Provenance, or someone else's note, notice or disclosure Communication changed since
    `since` (our own writes, tagged consent-gap, are left out). The patients come as included
    resources, so no reference is parsed here."""
    codes = _codes(codes)
    ge = ("_lastUpdated", f"ge{since}")
    not_ours = ("_tag:not", codes.own_tag)
    return [
        Search("AuditEvent", (ge, ("subtype", codes.disclosure_subtype),
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
    codes: ChartCodes | None = None,
) -> list[str]:
    """Patients with a relevant change since `since` (a FHIR instant), sorted."""
    ids: set[str] = set()
    for s in changed_patient_searches(since, codes):
        ids |= _patient_ids(run(client, s, None, page_size))
    return sorted(ids)


# ---------------------------------------------------------------- the privacy office's worklist

#: The code every consent-gap Task carries (CONTRACT 7).
TASK_CODE_SEARCH = "https://consent-gap.dev/fhir/CodeSystem/task|review-disclosure"
#: Priority per decision of the finding: the Task's priority is the alert's (CONTRACT 5, 7).
PRIORITY_OF = {"unauthorized": "urgent", "review": "routine"}


def worklist_search(*, decision: str | None = None, clinician: str | None = None,
                    discovered_before: str | None = None, page_size: int = 50) -> Search:
    """The open consent-gap Tasks across patients, one page at a time, by deadline then
    priority, with the Patients they are for.

    Neither completed nor cancelled: ``status:not`` twice. The deadline
    (``restriction.period.end``) has no search parameter, but it is ``authoredOn`` + 60 days on
    exactly the urgent (unauthorized) Tasks and absent on the routine ones, so sorting by
    priority (urgent first) then ``authored-on`` is sorting by deadline, then priority, then
    age. ``clinician``: a Practitioner who took part in the disclosure (an AuditEvent agent,
    through a chained search on ``focus``)."""
    params: list[tuple[str, str]] = [
        ("code", TASK_CODE_SEARCH), ("status:not", "completed"), ("status:not", "cancelled")]
    if decision in PRIORITY_OF:
        params.append(("priority", PRIORITY_OF[decision]))
    if clinician:
        params.append(("focus:AuditEvent.agent", clinician))
    if discovered_before:
        params.append(("authored-on", f"lt{discovered_before}"))
    params += [("_sort", "-priority,authored-on"), ("_include", "Task:patient"),
               ("_count", str(page_size))]
    return Search("Task", tuple(params))


def breach_log_search(year: int) -> Search:
    """The Tasks whose assessment concluded ``breach``, discovered in ``year`` (164.408(c)),
    with their Patients."""
    return Search("Task", (
        ("code", TASK_CODE_SEARCH),
        ("business-status", "https://consent-gap.dev/fhir/CodeSystem/disposition|breach"),
        ("authored-on", f"ge{year}-01-01"), ("authored-on", f"lt{year + 1}-01-01"),
        ("_sort", "authored-on"), ("_include", "Task:patient"), ("_count", "200")))

# ---- the accounting of disclosures (CONTRACT 8) -------------------------------------------

#: Never followed for the accounting's names: the patient, who is in every chart.
_NAMED_TYPES = PARTY_TYPES - {"Patient"}


def named_references(found: dict[Key, dict[str, Any]]) -> set[Key]:
    """Whom the disclosures (AuditEvents, Communications) name and `found` lacks (recipients
    above all, which the engine reads by reference only: `NOT_FETCHED`), and the practitioner
    and organization of each PractitionerRole: the accounting gives names and addresses
    (164.528(b)(2)(ii)), not ids."""
    named: set[Key] = set()
    for (rtype, _rid), resource in found.items():
        if rtype in ("AuditEvent", "Communication", "PractitionerRole"):
            named |= {r for r in references(resource) if r[0] in _NAMED_TYPES}
    return named - found.keys()


#: Whom a disclosure may be sent to that the engine reads by reference only: fetched so that
#: the alerts, notes and the panel name the recipient (the app's Device is no recipient).
_RECIPIENT_TYPES = (NOT_FETCHED & _NAMED_TYPES) - {"Device"}


def recipient_references(found: dict[Key, dict[str, Any]]) -> set[Key]:
    """Whom the disclosures send to (an AuditEvent's agents, a Communication's recipients)
    among `_RECIPIENT_TYPES`, and the practitioner and organization of each PractitionerRole,
    that `found` lacks: what the scan's alerts and notes and the panel name instead of an id
    (the RelatedPersons come with `wanted_references` already)."""
    named: set[Key] = set()
    for (rtype, _rid), resource in found.items():
        if rtype == "AuditEvent":
            named |= references(resource.get("agent"))
        elif rtype == "Communication":
            named |= references(resource.get("recipient"))
        elif rtype == "PractitionerRole":
            named |= references([resource.get("practitioner"), resource.get("organization")])
    return {key for key in named if key[0] in _RECIPIENT_TYPES} - found.keys()


def fetch_named(client: SearchClient, found: dict[Key, dict[str, Any]],
                extra: Iterable[str | None] = (), page_size: int = DEFAULT_PAGE_SIZE,
                patient_id: str | None = None,
                wanted: Callable[[dict[Key, dict[str, Any]]], set[Key]] = named_references,
                ) -> None:
    """Complete `found` with what `wanted` names (the accounting's `named_references`, or
    the scan's `recipient_references`; two hops: a PractitionerRole's practitioner and
    organization) and the `extra` references (the practice, for the header), by `_id`, one
    search per type and `ID_CHUNK` ids, tolerant (what is refused or absent keeps its id in
    the accounting and is unnamed in words elsewhere)."""
    keys = wanted(found) | {
        key for ref in extra if ref and ref.count("/") == 1
        if (key := tuple(ref.split("/", 1))) not in found}
    tried: set[Key] = set()
    for _hop in range(2):
        keys -= tried
        if not keys:
            return
        tried |= keys
        for search in by_id_searches(keys, patient_id):
            collect(found, run(client, search, None, page_size))
        keys = wanted(found)


def fetch_accounting_chart(client: SearchClient, patient_id: str, *,
                           codes: ChartCodes | None = None, extra: Iterable[str | None] = (),
                           page_size: int = DEFAULT_PAGE_SIZE) -> list[dict[str, Any]]:
    """One patient's chart for `consent-gap accounting --fhir-base` (`system/` scopes or an
    open server): the batch plan for one patient, then whom its disclosures name and the
    `extra` references."""
    found: dict[Key, dict[str, Any]] = {}
    collect(found, fetch_charts(client, [patient_id], codes=codes, page_size=page_size))
    fetch_named(client, found, extra, page_size)
    return list(found.values())
