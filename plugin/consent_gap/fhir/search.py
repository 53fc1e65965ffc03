"""Searches as values and the generic walks over their results.

A `Search` is a resource type and its parameters: plans are built as data (fetch_plan.py), so
a benchmark's bare sweep, a test or a CDS client's prefetch can run exactly the same searches.
Nothing here knows what a disclosure or a Consent is: only `resourceType`, `id`, `reference`
strings and a search's OperationOutcome are looked at.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from consent_gap.fhir.errors import FhirHttpError

log = logging.getLogger("consent_gap.fhir")

DEFAULT_PAGE_SIZE = 200
#: Ids (or references) per follow-up search: short enough for a GET on any server.
ID_CHUNK = 50
#: Statuses that mean "not for you" or "not there": the resource is left out.
LEFT_OUT = (401, 403, 404, 410)
#: A relative reference, possibly to a version (`Type/id/_history/v`): what is fetched is `Type/id`.
_RELATIVE = re.compile(
    r"^([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")

Key = tuple[str, str]


class SearchClient(Protocol):
    def search(self, rtype: str, params: Any = None, *, page_size: int | None = None
               ) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True)
class Search:
    """One search: a resource type and its parameters as (name, value) pairs. `tolerant`
    marks a search the decision can do without (refused or absent leaves its resources out)."""

    type: str
    params: tuple[tuple[str, str], ...]
    tolerant: bool = False

    def url(self) -> str:
        """The search as a relative URL (`Type?a=b&c=d`), as CDS Hooks prefetch templates and
        logs write it; values are left as they are (templates hold `{{context.patientId}}`)."""
        return self.type + ("?" + "&".join(f"{k}={v}" for k, v in self.params)
                            if self.params else "")


def refs(kind: str, ids: Iterable[str]) -> str:
    """`kind/id` for each id, comma-joined: one search parameter's list of references."""
    return ",".join(f"{kind}/{rid}" for rid in ids)


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


def run(client: SearchClient, search: Search, found: dict[Key, dict[str, Any]] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE) -> list[dict[str, Any]]:
    """One search across all its pages: every resource it returned (OperationOutcomes
    included), each data resource also added once to `found`. A tolerant search that the
    server refuses (401/403/404/410) returns nothing; any other failure raises."""
    try:
        got = list(client.search(search.type, list(search.params), page_size=page_size))
    except FhirHttpError as error:
        if not (search.tolerant and error.status in LEFT_OUT):
            raise
        log.info("search of %s skipped: HTTP %s", search.type, error.status)
        return []
    if found is not None:
        collect(found, got)
    return got


def run_all(client: SearchClient, searches: Iterable[Search], found: dict[Key, dict[str, Any]],
            page_size: int = DEFAULT_PAGE_SIZE) -> None:
    """Run each search across all its pages, adding each resource once to `found`."""
    for search in searches:
        run(client, search, found, page_size)


def says_incomplete(results: Iterable[dict[str, Any]]) -> bool:
    """The server put an OperationOutcome with an `incomplete` issue among the results."""
    return any(
        r.get("resourceType") == "OperationOutcome" and any(
            isinstance(i, dict) and i.get("code") == "incomplete" for i in r.get("issue") or [])
        for r in results)


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
