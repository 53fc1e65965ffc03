"""What a bearer token may do on the FHIR proxy (pure: no I/O).

`classify` turns an HTTP request on the FHIR base into a FHIR interaction; `decide` says whether
the token's scopes allow it and what the proxy must still check around the upstream call
(an existing resource before an update or delete, the resources that come back). The rules are
listed in sandbox/smart/README.md; this module is their only implementation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .scopes import ScopeSet

Query = Mapping[str, Sequence[str]]

_TYPE_RE = re.compile(r"^[A-Z][A-Za-z]+$")
_ID_RE = re.compile(r"^(?!\.+$)[A-Za-z0-9\-.]{1,64}$")
_PATIENT_REF_RE = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")

# Search parameters that name the patient a resource belongs to.
PATIENT_PARAMS = ("patient", "subject", "beneficiary")
# Types whose patient-level searches must name the launch patient (patient=/subject=). Other types
# are searched freely and only their results are checked (e.g. Provenance?target=...,
# DocumentReference?related=..., Device?identifier=... are how the app finds its own records).
REQUIRED_PATIENT_PARAM = frozenset(
    {
        "AllergyIntolerance",
        "AuditEvent",
        "CarePlan",
        "Communication",
        "Condition",
        "Consent",
        "DiagnosticReport",
        "Encounter",
        "Goal",
        "Immunization",
        "MedicationRequest",
        "Observation",
        "Procedure",
        "QuestionnaireResponse",
        "ServiceRequest",
    }
)
#: The R4 patient compartment (CompartmentDefinition/patient), for writes: per resource type,
#: the elements (dotted paths) whose Patient reference puts a resource in that patient's
#: compartment. A strict EHR lets a patient/ scope create or update only such a resource; a
#: type not listed (Device, Organization, Practitioner, ...) is in no patient's compartment.
#: Task is not in R4's definition; it is placed by `for` (its `patient` search parameter), as
#: SMART's patient/Task scopes presuppose.
PATIENT_COMPARTMENT: dict[str, tuple[str, ...]] = {
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "AuditEvent": ("agent.who", "entity.what"),
    "CarePlan": ("subject", "activity.detail.performer"),
    "CareTeam": ("subject", "participant.member"),
    "Communication": ("subject", "sender", "recipient"),
    "CommunicationRequest": ("subject", "sender", "recipient", "requester"),
    "Composition": ("subject", "author", "attester.party"),
    "Condition": ("subject", "asserter"),
    "Consent": ("patient",),
    "DiagnosticReport": ("subject",),
    "DocumentReference": ("subject", "author"),
    "Encounter": ("subject",),
    "Flag": ("subject",),
    "Goal": ("subject",),
    "Immunization": ("patient",),
    "List": ("subject", "source"),
    "MedicationRequest": ("subject",),
    "Observation": ("subject", "performer"),
    "Procedure": ("subject", "performer.actor"),
    "Provenance": ("target",),
    "QuestionnaireResponse": ("subject", "author"),
    "RelatedPerson": ("patient",),
    "ServiceRequest": ("subject", "performer"),
    "Task": ("for",),
}
_LETTER = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search": "s",
    "history-type": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}


@dataclass(frozen=True)
class Interaction:
    """A request on the FHIR base, in FHIR RESTful terms."""

    kind: str
    resource_type: str | None = None
    resource_id: str | None = None
    operation: str | None = None
    conditional: bool = False
    compartment_of: tuple[str, str] | None = None  # Patient/<id>/Consent -> ("Patient", id)


@dataclass
class Decision:
    """The outcome of `decide`. When `allowed`, the proxy forwards the request, first fetching
    each of `existing` (type, id) and refusing if one lies outside `patient`'s compartment."""

    allowed: bool
    reason: str = ""
    status: int = 403
    existing: list[tuple[str, str]] = field(default_factory=list)
    check_response: bool = True


def allow(**kwargs: Any) -> Decision:
    return Decision(True, **kwargs)


def refuse(reason: str, status: int = 403) -> Decision:
    return Decision(False, reason, status)


def classify(method: str, path: str, query: Query) -> Interaction:
    """Map method + path (relative to the FHIR base, no leading slash) to an interaction."""
    method = method.upper()
    parts = [p for p in path.split("/") if p]
    if not parts:
        if method == "GET":
            return Interaction("paging" if "_getpages" in query else "system-search")
        if method == "POST":
            return Interaction("bundle")
        return Interaction("unsupported")
    head = parts[0]
    if head == "metadata" and len(parts) == 1 and method == "GET":
        return Interaction("capabilities")
    if head.startswith("$"):
        if len(parts) != 1:
            return Interaction("unsupported")
        return Interaction(_op_kind(method), operation=head[1:])
    if head == "_history" and len(parts) == 1 and method == "GET":
        return Interaction("history-system")
    if head == "_search" and len(parts) == 1 and method == "POST":
        return Interaction("system-search")
    if not _TYPE_RE.match(head):
        return Interaction("unsupported")
    return _classify_typed(method, head, parts[1:], query)


def _classify_typed(method: str, rtype: str, rest: list[str], query: Query) -> Interaction:
    if not rest:
        kinds = {
            "GET": "search",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }
        kind = kinds.get(method, "unsupported")
        conditional = kind in ("update", "patch", "delete")
        if conditional and not query:
            return Interaction("unsupported", rtype)
        return Interaction(kind, rtype, conditional=conditional)
    first = rest[0]
    if first == "_search" and len(rest) == 1 and method == "POST":
        return Interaction("search", rtype)
    if first == "_history" and len(rest) == 1 and method == "GET":
        return Interaction("history-type", rtype)
    if first.startswith("$") and len(rest) == 1:
        return Interaction(_op_kind(method), rtype, operation=first[1:])
    if not _ID_RE.match(first):
        return Interaction("unsupported", rtype)
    rid = first
    if len(rest) == 1:
        kinds = {"GET": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
        return Interaction(kinds.get(method, "unsupported"), rtype, rid)
    second = rest[1]
    if second == "_history" and method == "GET" and len(rest) in (2, 3):
        return Interaction("history-instance" if len(rest) == 2 else "vread", rtype, rid)
    if second.startswith("$") and len(rest) == 2:
        return Interaction(_op_kind(method), rtype, rid, operation=second[1:])
    if _TYPE_RE.match(second) and len(rest) == 2 and method == "GET":
        return Interaction("search", second, compartment_of=(rtype, rid))
    return Interaction("unsupported", rtype, rid)


def _op_kind(method: str) -> str:
    return "operation" if method == "GET" else "operation-post"


def decide(
    scopes: ScopeSet,
    patient: str | None,
    inter: Interaction,
    query: Query,
    body: Any = None,
) -> Decision:
    """Whether a token (its scopes and launch patient) may perform `inter`.

    Writes (create/update) are checked against `body` (the parsed JSON resource or Bundle).
    """
    kind = inter.kind
    if kind == "capabilities":
        return allow(check_response=False)
    if kind == "unsupported":
        return refuse("This request is not supported by the sandbox proxy.", 400)
    if kind == "bundle":
        return _decide_bundle(scopes, patient, body)
    if kind in ("paging", "system-search"):
        return allow()  # every resource that comes back is checked against the scopes
    if kind == "history-system":
        if scopes.has_wildcard("rs"):
            return allow()
        return refuse("System-level history needs a user/ or system/ scope on all types (*.rs).")
    if kind == "operation":
        return _decide_operation(scopes, patient, inter, query)
    if kind == "operation-post":
        return decide_post_operation(scopes, inter)
    letter = _LETTER.get(kind)
    if letter is None or inter.resource_type is None:
        return refuse("This request is not supported by the sandbox proxy.", 400)
    ctx = scopes.context_for(inter.resource_type, letter, query)
    if ctx is None:
        return refuse(f"No granted scope allows '{letter}' on {inter.resource_type}.")
    if ctx != "patient":
        return allow(check_response=letter in "rs")
    if patient is None:
        return refuse("A patient/ scope needs a patient in the launch context.")
    return _decide_in_compartment(patient, inter, letter, query, body)


def _decide_in_compartment(
    patient: str, inter: Interaction, letter: str, query: Query, body: Any
) -> Decision:
    rtype, rid = inter.resource_type or "", inter.resource_id
    if inter.compartment_of is not None and inter.compartment_of != ("Patient", patient):
        return refuse("Only the launch patient's compartment may be searched.")
    if rtype == "Patient":
        if inter.kind == "create":
            return refuse("A patient/ scope cannot create another Patient.")
        if rid is not None and rid != patient:
            return refuse("A patient/ scope only reaches the launch patient.")
    if inter.kind == "history-type":
        return refuse("Type-level history is not available with patient/ scopes.")
    if letter == "s":
        in_path = inter.compartment_of is not None  # Patient/<launch patient>/<Type>
        problem = _check_patient_params(rtype, patient, query, named=in_path)
        return refuse(problem) if problem else allow()
    if inter.conditional:
        problem = _check_patient_params(rtype, patient, query, required=True)
        if problem:
            return refuse(problem)
    if letter in "cu" and inter.kind != "patch":
        if not in_compartment(body, patient):
            return refuse("The resource refers to a patient other than the launch patient.")
        problem = outside_compartment(body, patient)
        if problem:
            return refuse(problem)
    existing = [(rtype, rid)] if rid is not None and letter in "ud" and rtype != "Patient" else []
    return allow(existing=existing, check_response=letter == "r")


def _check_patient_params(
    rtype: str, patient: str, query: Query, *, required: bool = False, named: bool = False
) -> str | None:
    """A refusal reason when a patient-level search could reach another patient, else None."""
    for name, values in query.items():
        base = name.split(":", 1)[0]
        root = base.split(".", 1)[0]
        if rtype == "Patient" and base == "_id":
            named = True
            if any(v != patient for value in values for v in value.split(",")):
                return "A patient/ scope only reaches the launch patient."
            continue
        if root not in PATIENT_PARAMS:
            continue
        if "." in base:
            return f"Chained '{name}' is not allowed with patient/ scopes; use {root}=<id>."
        named = True
        for value in values:
            for one in value.split(","):
                if _patient_id(one) != patient:
                    return f"'{name}' must name the launch patient."
    if not named and (required or rtype in REQUIRED_PATIENT_PARAM) and rtype != "Patient":
        return f"A patient-level search on {rtype} must carry patient=<launch patient>."
    return None


def _patient_id(value: str) -> str | None:
    if _ID_RE.match(value):
        return value
    match = _PATIENT_REF_RE.search(value)
    return match.group(1) if match else None


def _decide_operation(
    scopes: ScopeSet, patient: str | None, inter: Interaction, query: Query
) -> Decision:
    rtype, rid = inter.resource_type, inter.resource_id
    if rtype is None:  # base level: $export, $export-poll-status, ...
        if scopes.has_wildcard("rs"):
            return allow()
        return refuse(f"${inter.operation} needs a user/ or system/ scope on all types (*.rs).")
    letter = "r" if rid is not None else "s"
    ctx = scopes.context_for(rtype, letter, query)
    if ctx is None:
        return refuse(f"No granted scope allows '{letter}' on {rtype} (for ${inter.operation}).")
    if ctx == "patient":
        if patient is None:
            return refuse("A patient/ scope needs a patient in the launch context.")
        if rid is None:
            return refuse(f"Type-level ${inter.operation} is not available with patient/ scopes.")
        if rtype == "Patient" and rid != patient:
            return refuse("A patient/ scope only reaches the launch patient.")
        if rtype != "Patient":
            return allow(existing=[(rtype, rid)])
    return allow()


def decide_post_operation(scopes: ScopeSet, inter: Interaction) -> Decision:
    """POSTed operations may change data: instance level needs `u`, type level `c`, base level
    a user/ or system/ scope with all letters on all types. Patient-level tokens may not."""
    rtype = inter.resource_type
    if rtype is None:
        if scopes.has_wildcard("cruds"):
            return allow()
        return refuse(f"POST ${inter.operation} needs a user/ or system/ *.cruds scope.")
    letter = "u" if inter.resource_id is not None else "c"
    ctx = scopes.context_for(rtype, letter, None)
    if ctx is None or ctx == "patient":
        return refuse(
            f"POST ${inter.operation} on {rtype} needs a user/ or system/ '{letter}' scope."
        )
    return allow()


def _decide_bundle(scopes: ScopeSet, patient: str | None, body: Any) -> Decision:
    """A transaction or batch is allowed only if every entry is, checked one by one."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return refuse("POST on the base needs a transaction or batch Bundle.", 400)
    if body.get("type") not in ("transaction", "batch"):
        return refuse("POST on the base needs a Bundle of type transaction or batch.", 400)
    existing: list[tuple[str, str]] = []
    for index, entry in enumerate(body.get("entry") or []):
        request = (entry or {}).get("request") or {}
        method = str(request.get("method", "")).upper()
        url = str(request.get("url", ""))
        path, _, raw_query = url.partition("?")
        entry_query = _parse_query(raw_query)
        inter = classify(method, path, entry_query)
        if inter.kind in ("bundle", "capabilities", "operation-post"):
            return refuse(f"Bundle entry {index}: {method} {path} is not allowed inside a Bundle.")
        if inter.kind == "create" and request.get("ifNoneExist"):
            entry_query = entry_query or _parse_query(str(request["ifNoneExist"]))
        decision = decide(scopes, patient, inter, entry_query, entry.get("resource"))
        if not decision.allowed:
            return refuse(
                f"Bundle entry {index} ({method} {path}): {decision.reason}", decision.status
            )
        existing.extend(decision.existing)
    return allow(existing=existing, check_response=body.get("type") == "batch")


def _parse_query(raw: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        out.setdefault(name, []).append(value)
    return out


def patient_refs(resource: Any) -> set[str]:
    """Ids of every Patient the resource refers to (any `reference` anywhere in it)."""
    found: set[str] = set()
    for ref in _references(resource):
        match = _PATIENT_REF_RE.search(ref)
        if match:
            found.add(match.group(1))
    return found


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def in_compartment(resource: Any, patient: str) -> bool:
    """Whether a resource may be seen or written under a patient/ scope for `patient`.

    A Patient must be the launch patient; any other resource must either refer to the launch
    patient or to no patient at all (a Device, an Organization, a Provenance about a Communication).
    """
    if not isinstance(resource, dict):
        return True
    if resource.get("resourceType") == "Patient":
        return resource.get("id", patient) == patient
    refs = patient_refs(resource)
    return not refs or patient in refs


def outside_compartment(resource: Any, patient: str) -> str | None:
    """Why a strict EHR refuses to let a patient/ scope write `resource`, else None: it must
    lie in the launch patient's R4 compartment (PATIENT_COMPARTMENT), placed there by one of
    its type's compartment elements."""
    if not isinstance(resource, dict):
        return "A write under a patient/ scope needs a resource."
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        return None
    paths = PATIENT_COMPARTMENT.get(str(rtype))
    if paths is None:
        return f"{rtype} is not in the patient compartment; a patient/ scope cannot write it."
    for path in paths:
        for node in _at(resource, path.split(".")):
            ref = node.get("reference") if isinstance(node, dict) else None
            if isinstance(ref, str) and _patient_id_of(ref) == patient:
                return None
    return (f"The {rtype} is not in the launch patient's compartment: none of "
            f"{', '.join(paths)} names Patient/{patient}.")


def _at(node: Any, path: list[str]) -> Iterator[Any]:
    """The values at a dotted path (lists flattened at every step)."""
    if isinstance(node, list):
        for item in node:
            yield from _at(item, path)
        return
    if not path:
        yield node
        return
    if isinstance(node, dict) and path[0] in node:
        yield from _at(node[path[0]], path[1:])


def _patient_id_of(ref: str) -> str | None:
    match = _PATIENT_REF_RE.search(ref)
    return match.group(1) if match else None


def check_resources(
    scopes: ScopeSet, patient: str | None, payload: Any, query: Query | None = None
) -> str | None:
    """A refusal reason if the response carries a resource the token may not see, else None.

    Bundles are walked entry by entry (nested Bundles too, as in batch responses); each resource
    must be of a type the token may read or search, and under a patient/ scope inside the launch
    patient's compartment. OperationOutcomes pass.
    """
    for resource in _resources(payload):
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or rtype == "OperationOutcome":
            continue
        contexts = [scopes.context_for(rtype, letter, query) for letter in "rs"]
        ctx = _widest([c for c in contexts if c])
        if ctx is None:
            return f"The response holds {rtype}, which no granted scope allows reading."
        if ctx == "patient":
            if patient is None:
                return "A patient/ scope needs a patient in the launch context."
            if not in_compartment(resource, patient):
                return f"The response holds a {rtype} outside the launch patient's compartment."
    return None


def drop_unreadable_includes(
    scopes: ScopeSet, patient: str | None, bundle: Any, query: Query | None = None
) -> int:
    """Remove `search.mode = include` entries the token may not see; return how many.

    As EHRs do: an `_include`/`_revinclude` of a type (or a patient) outside the token's reach is
    left out of the page rather than failing the search. Matches are never dropped: a match the
    token may not see fails the request in check_resources.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return 0
    entries = bundle.get("entry") or []
    kept = [
        entry
        for entry in entries
        if not (
            isinstance(entry, dict)
            and (entry.get("search") or {}).get("mode") == "include"
            and check_resources(scopes, patient, entry.get("resource"), query) is not None
        )
    ]
    if len(kept) != len(entries):
        bundle["entry"] = kept
    return len(entries) - len(kept)


def _widest(contexts: list[str]) -> str | None:
    for ctx in ("system", "user", "patient"):
        if ctx in contexts:
            return ctx
    return None


def _resources(payload: Any) -> Iterator[dict]:
    if not isinstance(payload, dict):
        return
    if payload.get("resourceType") == "Bundle":
        for entry in payload.get("entry") or []:
            if isinstance(entry, dict):
                yield from _resources(entry.get("resource"))
        return
    yield payload
