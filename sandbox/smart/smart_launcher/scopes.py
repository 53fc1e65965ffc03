"""SMART App Launch 2.x scopes: parsing, granting and matching (pure, no I/O).

authlib treats scopes as literal strings; SMART needs wildcards (`patient/*.rs`), the v1 forms
(`.read`, `.write`, `.*`) and three contexts (patient, user, system). This module is the one
place that knows that grammar, so the token endpoint (what a client may be granted) and the FHIR
proxy (what a token may do) agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

CONTEXTS = ("patient", "user", "system")
LETTERS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE_RE = re.compile(
    r"^(?P<ctx>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<perm>[a-z*]+)"
    r"(?:\?(?P<query>.+))?$"
)
# Scopes not about resources; a client may be granted them when its registration lists them.
SPECIAL_SCOPES = frozenset(
    {
        "launch",
        "launch/patient",
        "launch/encounter",
        "openid",
        "fhirUser",
        "profile",
        "offline_access",
        "online_access",
    }
)
# Widest first: a request allowed under system/ or user/ is not limited to a patient compartment.
_WIDTH = {"system": 3, "user": 2, "patient": 1}


@dataclass(frozen=True)
class ResourceScope:
    """One resource scope, e.g. `patient/Consent.rs` or v1 `user/*.read` (stored as letters)."""

    context: str
    resource_type: str  # a FHIR type or "*"
    letters: frozenset[str]
    params: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def covers_type(self, resource_type: str) -> bool:
        return self.resource_type in ("*", resource_type)

    def as_v2(self) -> str:
        perm = "".join(letter for letter in LETTERS if letter in self.letters)
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return f"{self.context}/{self.resource_type}.{perm}" + (f"?{query}" if query else "")


def parse_resource_scope(text: str) -> ResourceScope | None:
    """Parse one scope; None when it is not a (well-formed) resource scope.

    v2 letters must appear in the order c, r, u, d, s (SMART 2.x, "scopes-and-launch-context").
    """
    match = _SCOPE_RE.match(text)
    if not match:
        return None
    perm = match.group("perm")
    if perm in _V1:
        letters = _V1[perm]
    elif perm and all(ch in LETTERS for ch in perm) and _in_order(perm):
        letters = perm
    else:
        return None
    query = match.group("query")
    params = tuple(parse_qsl(query, keep_blank_values=True)) if query else ()
    return ResourceScope(
        context=match.group("ctx"),
        resource_type=match.group("type"),
        letters=frozenset(letters),
        params=params,
        text=text,
    )


def _in_order(perm: str) -> bool:
    positions = [LETTERS.index(ch) for ch in perm]
    return positions == sorted(set(positions))


def split_scope(scope: str | None) -> list[str]:
    return [part for part in (scope or "").split() if part]


def intersect(requested: ResourceScope, allowed: ResourceScope) -> ResourceScope | None:
    """The part of `requested` that `allowed` permits, or None.

    Used at grant time: a client registered for `patient/*.rs` asking `patient/Consent.cruds`
    is granted `patient/Consent.rs` (a server may grant less than asked).
    """
    if requested.context != allowed.context:
        return None
    if allowed.resource_type == "*":
        rtype = requested.resource_type
    elif requested.resource_type in ("*", allowed.resource_type):
        rtype = allowed.resource_type
    else:
        return None
    letters = requested.letters & allowed.letters
    if not letters:
        return None
    if allowed.params and not set(allowed.params) <= set(requested.params):
        return None
    if letters == requested.letters and rtype == requested.resource_type:
        return requested
    narrowed = ResourceScope(requested.context, rtype, frozenset(letters), requested.params)
    return replace(narrowed, text=narrowed.as_v2())


def grantable_scope(requested: str | None, registered: str) -> str:
    """The scope string to grant: what was asked, cut down to what the client is registered for."""
    allowed_special = {s for s in split_scope(registered) if s in SPECIAL_SCOPES}
    allowed_resource = [p for p in map(parse_resource_scope, split_scope(registered)) if p]
    granted: list[str] = []
    for text in split_scope(requested):
        if text in SPECIAL_SCOPES:
            if text in allowed_special:
                granted.append(text)
            continue
        asked = parse_resource_scope(text)
        if asked is None:
            continue
        for allowed in allowed_resource:
            part = intersect(asked, allowed)
            if part is not None:
                granted.append(part.text)
                if part is asked:
                    break
    return " ".join(dict.fromkeys(granted))


@dataclass(frozen=True)
class ScopeSet:
    """The resource scopes a token carries, with the questions the proxy asks of them."""

    scopes: tuple[ResourceScope, ...]

    @classmethod
    def parse(cls, scope: str | None) -> ScopeSet:
        return cls(tuple(p for p in map(parse_resource_scope, split_scope(scope)) if p))

    def context_for(
        self,
        resource_type: str,
        letter: str,
        query: Mapping[str, Iterable[str]] | None = None,
    ) -> str | None:
        """The widest context ("system" > "user" > "patient") under which `letter` is allowed on
        `resource_type`, or None.

        A scope narrowed by search parameters (`patient/Observation.rs?category=laboratory`) only
        ever allows a search (`s`) whose query carries all of its parameters.
        """
        best: str | None = None
        for scope in self.scopes:
            if letter not in scope.letters or not scope.covers_type(resource_type):
                continue
            if scope.params and (letter != "s" or not _query_has(query, scope.params)):
                continue
            if best is None or _WIDTH[scope.context] > _WIDTH[best]:
                best = scope.context
        return best

    def has_wildcard(self, letters: str, contexts: Iterable[str] = ("system", "user")) -> bool:
        """True when some `<ctx>/*.<...>` scope (without parameters) carries all `letters`."""
        wanted = set(letters)
        return any(
            s.resource_type == "*"
            and not s.params
            and wanted <= s.letters
            and s.context in contexts
            for s in self.scopes
        )


def _query_has(
    query: Mapping[str, Iterable[str]] | None, params: tuple[tuple[str, str], ...]
) -> bool:
    if query is None:
        return False
    return all(value in list(query.get(name, ())) for name, value in params)
