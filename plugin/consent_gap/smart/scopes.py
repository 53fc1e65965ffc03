"""What a granted SMART scope lets the app do (SMART App Launch 2.x scopes, and v1's).

The server may grant less than the app asked for; the panel offers only the writes the token
can perform, and refuses the others itself, rather than letting a user press a button that the
EHR will refuse. Pure: reads a scope string.

Conservative on purpose: a scope narrowed by search parameters
(`patient/Communication.c?category=...`) is not counted, since whether a given resource fits
the narrowing is the server's to decide; an unknown form grants nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: `<context>/<type>.<permissions>`: v2 permissions are an ordered subset of c r u d s;
#: v1 used `read`, `write` and `*`.
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_V2 = re.compile(r"^c?r?u?d?s?$")


def interactions(scope: str) -> tuple[str, str] | None:
    """(resource type or `*`, the cruds letters) a single scope grants; None if none."""
    match = _SCOPE.match(scope)
    if not match:
        return None
    _, rtype, permissions = match.groups()
    letters = _V1.get(permissions)
    if letters is None:
        letters = permissions if permissions and _V2.match(permissions) else ""
    return (rtype, letters) if letters else None


def permits(granted: Iterable[str], resource_type: str, interaction: str) -> bool:
    """Whether any of the `granted` scopes allows `interaction` (one of c r u d s) on
    `resource_type`, in the patient, user or system context."""
    for scope in granted:
        found = interactions(scope)
        if found and found[0] in ("*", resource_type) and interaction in found[1]:
            return True
    return False


def may_create(granted: Iterable[str], resource_types: Iterable[str]) -> bool:
    """Whether the scopes allow creating every one of `resource_types`."""
    scopes = tuple(granted)
    return all(permits(scopes, rtype, "c") for rtype in resource_types)
