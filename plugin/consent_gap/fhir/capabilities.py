"""What the app needs from a FHIR server, checked against its CapabilityStatement.

A requirement names, per resource type, the interactions (`read`, `search-type`, `create`...),
search parameters, and `_include`/`_revinclude` values the app uses. `missing()` lists, in plain
words, each one the server does not declare, so the scan can refuse to start with a message an
operator can forward to the EHR vendor instead of failing on the first 400 deep into a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Result parameters that servers do not list as search parameters; never reported missing.
RESULT_PARAMETERS = frozenset(
    {"_count", "_include", "_revinclude", "_sort", "_summary", "_elements", "_total",
     "_contained", "_containedType", "_format", "_pretty"}
)


@dataclass(frozen=True)
class ResourceRequirement:
    """What the app needs for one resource type (each set may be empty)."""

    type: str
    interactions: frozenset[str] = field(default_factory=frozenset)
    search_params: frozenset[str] = field(default_factory=frozenset)
    includes: frozenset[str] = field(default_factory=frozenset)
    revincludes: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls,
        rtype: str,
        *,
        interactions: Iterable[str] = (),
        search: Iterable[str] = (),
        include: Iterable[str] = (),
        revinclude: Iterable[str] = (),
    ) -> ResourceRequirement:
        """Build one from plain iterables; a search parameter implies `search-type`."""
        search = frozenset(search)
        inter = frozenset(interactions) | ({"search-type"} if search else frozenset())
        return cls(rtype, inter, search, frozenset(include), frozenset(revinclude))


Requirements = Sequence[ResourceRequirement]
RequirementsSpec = Requirements | Mapping[str, Any]


def requirements_from_mapping(spec: Mapping[str, Any]) -> list[ResourceRequirement]:
    """Read the short form used in configuration and tests.

    `{"Consent": ["search-type"], "AuditEvent": {"search": ["patient", "date"],
    "interactions": ["read"], "include": ["AuditEvent:entity"], "revinclude": [...]}}`:
    a list means interactions; a mapping may hold the four keys.
    """
    out = []
    for rtype, value in spec.items():
        if isinstance(value, Mapping):
            unknown = set(value) - {"interactions", "search", "include", "revinclude"}
            if unknown:
                raise ValueError(f"{rtype}: unknown requirement keys {sorted(unknown)}")
            out.append(ResourceRequirement.of(
                rtype,
                interactions=value.get("interactions", ()),
                search=value.get("search", ()),
                include=value.get("include", ()),
                revinclude=value.get("revinclude", ()),
            ))
        elif isinstance(value, str):
            raise ValueError(f"{rtype}: give interactions as a list, not a string")
        else:
            out.append(ResourceRequirement.of(rtype, interactions=value))
    return out


class CapabilityIndex:
    """Fast answers about one CapabilityStatement (a plain dict, as the server sent it)."""

    def __init__(self, statement: Mapping[str, Any]) -> None:
        if statement.get("resourceType") != "CapabilityStatement":
            raise ValueError("not a CapabilityStatement")
        self.fhir_version = str(statement.get("fhirVersion", ""))
        self._resources: dict[str, Mapping[str, Any]] = {}
        self._global_params: set[str] = set()
        for rest in statement.get("rest") or []:
            if rest.get("mode", "server") != "server":
                continue
            self._global_params |= {p.get("name") for p in rest.get("searchParam") or []}
            for res in rest.get("resource") or []:
                self._resources[res.get("type")] = res

    def supports_type(self, rtype: str) -> bool:
        return rtype in self._resources

    def interactions(self, rtype: str) -> set[str]:
        res = self._resources.get(rtype, {})
        return {i.get("code") for i in res.get("interaction") or []}

    def search_params(self, rtype: str) -> set[str]:
        res = self._resources.get(rtype, {})
        return {p.get("name") for p in res.get("searchParam") or []} | self._global_params

    def supports_search_param(self, rtype: str, name: str) -> bool:
        return name in RESULT_PARAMETERS or name in self.search_params(rtype)

    def supports_include(self, rtype: str, value: str) -> bool:
        declared = set(self._resources.get(rtype, {}).get("searchInclude") or [])
        return value in declared or "*" in declared

    def supports_revinclude(self, rtype: str, value: str) -> bool:
        declared = set(self._resources.get(rtype, {}).get("searchRevInclude") or [])
        return value in declared or "*" in declared

    def missing(self, required: RequirementsSpec) -> list[str]:
        """One line per requirement the server does not declare; empty when all are met."""
        reqs = requirements_from_mapping(required) if isinstance(required, Mapping) else required
        lines: list[str] = []
        for req in reqs:
            if not self.supports_type(req.type):
                lines.append(f"{req.type}: resource type not supported")
                continue
            have = self.interactions(req.type)
            lines += [f"{req.type}: interaction '{i}' not supported"
                      for i in sorted(req.interactions - have)]
            lines += [f"{req.type}: search parameter '{p}' not supported"
                      for p in sorted(req.search_params)
                      if not self.supports_search_param(req.type, p)]
            lines += [f"{req.type}: _include '{v}' not supported"
                      for v in sorted(req.includes) if not self.supports_include(req.type, v)]
            lines += [f"{req.type}: _revinclude '{v}' not supported"
                      for v in sorted(req.revincludes) if not self.supports_revinclude(req.type, v)]
        return lines
