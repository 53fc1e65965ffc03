"""Ensure the app's FHIR Subscriptions exist on the server (``consent-gap subscribe``).

The resources are writeback/subscriptions.py's; here they are looked up by tag, compared, and
written in one transaction each (the Subscription and its Provenance): created conditionally
when absent, updated with If-Match when they differ, left alone when they are as wanted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from consent_gap.fhir.client import FhirClient
from consent_gap.writeback import device_resource, device_search
from consent_gap.writeback import subscriptions as subs

log = logging.getLogger("consent_gap.subscribe")


def _device(client: FhirClient) -> str:
    _type, params = device_search()
    created = client.conditional_create(
        device_resource(), "&".join(f"{k}={v}" for k, v in params.items()))
    return f"Device/{created.resource['id']}"


def ensure_subscriptions(client: FhirClient, endpoint: str, secret: str, *,
                         mappings: Path | None = None,
                         dry_run: bool = False) -> Iterator[str]:
    """Make the server hold the four Subscriptions; yields one line per Subscription (kind,
    what was done, id: never the secret)."""
    from consent_gap.mappings import load_rules

    rules = load_rules(mappings)
    device: str | None = None
    timestamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    for want in subs.wanted(rules):
        desired = subs.subscription(want, endpoint, secret)
        tag = subs.tag_search(want.kind, endpoint).removeprefix("_tag=")
        found = [r for r in client.search("Subscription", [("_tag", tag)])
                 if r.get("resourceType") == "Subscription"]
        current = found[0] if found else None
        if current is not None and subs.up_to_date(current, desired):
            yield f"{want.kind}: up to date (Subscription/{current['id']}, " \
                  f"status {current.get('status')})"
            continue
        action = "create" if current is None else "update"
        if dry_run:
            yield f"{want.kind}: would {action} ({want.criteria})"
            continue
        device = device or _device(client)
        bundle = subs.transaction(desired, endpoint=endpoint, kind=want.kind, device=device,
                                  timestamp=timestamp, current=current)
        response = client.transaction(bundle)
        location = ((response.get("entry") or [{}])[0].get("response") or {}).get("location", "")
        rid = location.split("/_history")[0]
        log.info("subscription %s: %sd %s", want.kind, action, rid)
        yield f"{want.kind}: {action}d ({rid or 'Subscription'}, {want.criteria})"


def remove_subscriptions(client: FhirClient, endpoint: str, *,
                         mappings: Path | None = None) -> Iterator[str]:
    """Delete this endpoint's Subscriptions with the Provenance that records them (one
    transaction each: a server enforcing referential integrity refuses to delete a resource
    a Provenance still targets). Yields one line per Subscription removed."""
    from consent_gap.mappings import load_rules

    for want in subs.wanted(load_rules(mappings)):
        tag = subs.tag_search(want.kind, endpoint).removeprefix("_tag=")
        for found in [r for r in client.search("Subscription", [("_tag", tag)])
                      if r.get("resourceType") == "Subscription"]:
            target = f"Subscription/{found['id']}"
            provenance = [r["id"] for r in client.search("Provenance", [("target", target)])
                          if r.get("resourceType") == "Provenance"]
            client.transaction(subs.removal(target, provenance))
            log.info("subscription %s: removed %s", want.kind, target)
            yield f"{want.kind}: removed ({target})"
