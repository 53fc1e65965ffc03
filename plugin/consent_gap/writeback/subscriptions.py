"""The FHIR R4 Subscriptions the app needs (``consent-gap subscribe``): pure builders.

Four rest-hook Subscriptions, one per kind of change that can alter a decision:

- ``disclosures``: AuditEvents with a disclosure type and subtype (mappings/disclosures.toml);
- ``sent-disclosures``: completed Communications on a disclosure channel (CONTRACT 1.1);
- ``consents``: every Consent (a new, revoked or amended authorization);
- ``signatures``: every Provenance not written by consent-gap (R4 cannot say "a Provenance
  whose target is a Consent" in a criteria string; the drain keeps only those that lead to a
  patient through a Consent, scan/notifications.py).

Each is delivered as ``application/fhir+json`` to the app's ``/fhir-notify`` (HAPI then calls
``PUT /fhir-notify/<type>/<id>``) with the header ``X-Consent-Gap-Secret``. R4 Subscription has
no ``identifier``, so its deterministic key is a ``meta.tag``
``https://consent-gap.dev/fhir/subscription|<kind>-<hash of the endpoint>``: one app (one
endpoint) has one Subscription of each kind, found and created conditionally on that tag, and a
second deployment with another endpoint gets its own. The secret is part of the resource (that
is how rest-hook works): anyone who can read Subscriptions on the server can read it, so give it
its own value, never a password used elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from consent_gap.writeback import CS, TAG, WritebackError

SUBSCRIPTION_TAG_SYSTEM = f"{CS}/subscription"
SECRET_HEADER = "X-Consent-Gap-Secret"  # noqa: S105 (a header name)
PAYLOAD = "application/fhir+json"
_OWN_TAG = f"{TAG['system']}|{TAG['code']}"
#: Every R4 Consent status: "any Consent" in a form HAPI matches in memory (a criteria such
#: as `_lastUpdated=gt...` makes it query its database for every change on the server).
CONSENT_STATUSES = "draft,proposed,active,rejected,inactive,entered-in-error"


@dataclass(frozen=True)
class Wanted:
    """One Subscription as the app wants it."""

    kind: str
    criteria: str
    reason: str


def _codes(codings: Iterable[Any]) -> str:
    return ",".join(f"{system}|{code}" for system, code in sorted(codings))


def wanted(rules: Any) -> list[Wanted]:
    """The four Subscriptions, with codes read from the rules (mappings/disclosures.toml)."""
    codes = rules.disclosures
    statuses = ",".join(sorted(codes.communication_status))
    return [
        Wanted("disclosures",
               f"AuditEvent?type={_codes(codes.type)}&subtype={_codes(codes.subtype)}",
               "consent-gap: re-check a patient when a disclosure is recorded"),
        Wanted("sent-disclosures",
               f"Communication?category={_codes(codes.channels)}&status={statuses}",
               "consent-gap: re-check a patient when a disclosure is sent as a Communication"),
        Wanted("consents", f"Consent?status={CONSENT_STATUSES}",
               "consent-gap: re-check a patient when an authorization changes"),
        Wanted("signatures", f"Provenance?_tag:not={_OWN_TAG}",
               "consent-gap: re-check a patient when an authorization is signed or revoked"),
    ]


def tag_code(kind: str, endpoint: str) -> str:
    """The Subscription's key: its kind and a hash of the endpoint it delivers to."""
    return f"{kind}-{hashlib.sha256(endpoint.encode()).hexdigest()[:12]}"


def tag_search(kind: str, endpoint: str) -> str:
    """The conditional create's ``If-None-Exist`` (and the search finding it)."""
    return f"_tag={SUBSCRIPTION_TAG_SYSTEM}|{tag_code(kind, endpoint)}"


def subscription(want: Wanted, endpoint: str, secret: str) -> dict[str, Any]:
    """The Subscription resource, validated as FHIR R4 (fhir.resources R4B)."""
    resource = {
        "resourceType": "Subscription",
        "meta": {"tag": [dict(TAG), {"system": SUBSCRIPTION_TAG_SYSTEM,
                                     "code": tag_code(want.kind, endpoint)}]},
        "status": "requested",
        "reason": want.reason,
        "criteria": want.criteria,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": PAYLOAD,
            "header": [f"{SECRET_HEADER}: {secret}"],
        },
    }
    validate(resource)
    return resource


def up_to_date(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """True when the server's Subscription already does what `desired` asks (status
    ``requested`` or ``active``: HAPI activates a requested one itself)."""
    channel, want = current.get("channel") or {}, desired["channel"]
    return (current.get("status") in ("requested", "active")
            and current.get("criteria") == desired["criteria"]
            and channel.get("type") == want["type"]
            and channel.get("endpoint") == want["endpoint"]
            and channel.get("payload") == want["payload"]
            and list(channel.get("header") or []) == want["header"])


def validate(resource: dict[str, Any]) -> None:
    from fhir.resources.R4B.subscription import Subscription

    try:
        Subscription.model_validate(resource)
    except Exception as error:  # pydantic's ValidationError and fhir-core's own errors
        raise WritebackError(f"Subscription does not validate: {error}") from None


def _fingerprint(resource: dict[str, Any]) -> str:
    import json

    text = json.dumps({k: resource[k] for k in ("criteria", "channel")}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def provenance(resource: dict[str, Any], target: str, device: str,
               timestamp: str) -> dict[str, Any]:
    """The Provenance of a Subscription written (created or updated) by the app: keyed on
    the Subscription's tag and the content written, so a rerun matches it."""
    from consent_gap.writeback import PROVENANCE_TAG_SYSTEM, SECURITY

    key = [t["code"] for t in resource["meta"]["tag"] if t["system"] == SUBSCRIPTION_TAG_SYSTEM]
    value = f"subscription-{key[0]}-{_fingerprint(resource)}"
    result = {
        "resourceType": "Provenance",
        "meta": {"tag": [dict(TAG), {"system": PROVENANCE_TAG_SYSTEM, "code": value}],
                 "security": [dict(SECURITY[0])]},
        "target": [{"reference": target}],
        "recorded": timestamp,
        "activity": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": "CREATE" if target.startswith("urn:") else "UPDATE"}]},
        "agent": [{"type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
            "code": "author"}]}, "who": {"reference": device}}],
    }
    from fhir.resources.R4B.provenance import Provenance

    try:
        Provenance.model_validate(result)
    except Exception as error:
        raise WritebackError(f"Provenance does not validate: {error}") from None
    return result


def provenance_search(prov: dict[str, Any]) -> str:
    from consent_gap.writeback import PROVENANCE_TAG_SYSTEM

    code = next(t["code"] for t in prov["meta"]["tag"] if t["system"] == PROVENANCE_TAG_SYSTEM)
    return f"_tag={PROVENANCE_TAG_SYSTEM}|{code}"


def transaction(resource: dict[str, Any], *, endpoint: str, kind: str, device: str,
                timestamp: str, current: dict[str, Any] | None) -> dict[str, Any]:
    """The transaction writing one Subscription and its Provenance: a conditional create
    when `current` is None, else an update of `current` with If-Match on its version."""
    import uuid

    from consent_gap.writeback import urn

    if current is None:
        full_url = urn(tag_code(kind, endpoint))
        request = {"method": "POST", "url": "Subscription",
                   "ifNoneExist": tag_search(kind, endpoint)}
        target = full_url
        body = resource
    else:
        rid = current["id"]
        full_url = f"Subscription/{rid}"
        body = {**resource, "id": rid}
        request = {"method": "PUT", "url": f"Subscription/{rid}"}
        version = (current.get("meta") or {}).get("versionId")
        if version:
            request["ifMatch"] = f'W/"{version}"'
        target = f"Subscription/{rid}"
    prov = provenance(resource, target, device, timestamp)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": full_url, "resource": body, "request": request},
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": prov,
             "request": {"method": "POST", "url": "Provenance",
                         "ifNoneExist": provenance_search(prov)}},
        ],
    }


def removal(target: str, provenance_ids: Iterable[str]) -> dict[str, Any]:
    """The transaction deleting a Subscription and the Provenance recording it."""
    entries = [{"request": {"method": "DELETE", "url": f"Provenance/{pid}"}}
               for pid in provenance_ids]
    entries.append({"request": {"method": "DELETE", "url": target}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
