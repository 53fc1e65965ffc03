"""When to retry a FHIR request, and how long to wait: pure functions, no sleeping here.

Which requests may be retried at all
------------------------------------
A retry after a lost response replays the request, so it must not change the outcome when the
first attempt did reach the server:

- GET, HEAD, PUT and DELETE are idempotent by HTTP's definition, and a search by POST
  (`[type]/_search`) only reads: retried on 429, 5xx, timeouts, connection errors, and an
  answer that arrives broken: cut short (requests' ChunkedEncodingError, urllib3's
  IncompleteRead), undecodable, missing, or not JSON where JSON was due. A proxy or a
  dropped connection breaks answers as often as a server fails, and the next attempt usually
  gets a whole one.
- A conditional create (POST with `If-None-Exist`) is safe to replay: if the first attempt
  committed, the replay matches it and the server answers 200 with the existing resource instead
  of creating a second one. (Two *concurrent* identical conditional creates can still race on
  some servers; the scan writes each finding from one process, so that case does not arise.)
- A transaction is atomic: either every entry committed or none did. Replaying it is safe when
  each entry is itself idempotent: GET/HEAD/PUT/DELETE, or POST with `ifNoneExist`. The
  write-back only builds such transactions. A transaction with a plain POST entry is not.
- Anything else (a plain create, a batch with plain POSTs, operations) is retried only when the
  server cannot have processed it: the connection was never made (connect timeout, refused),
  or the server answered 429 (rate limited) or 503 (unavailable), both of which say "not
  handled, come back later". A read timeout, a 500/502/504 or a broken answer there is
  ambiguous (the server may have acted) and is raised.

All of these share one budget per request (attempts and total wait): a broken body costs an
attempt exactly as a 503 does.

How long to wait
----------------
`Retry-After` wins when present (seconds or an HTTP-date), because the server knows best; else
exponential backoff with full jitter (AWS's "full jitter": uniform in [0, base * 2**n], capped),
which spreads out many clients retrying at once. Every wait counts against a total budget; when
the next wait would overrun it, the caller stops and raises instead of sleeping in vain.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Statuses that say the server did not act on the request, so even a non-idempotent one may repeat.
NOT_PROCESSED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and how long the client may wait in total between them.

    `max_attempts` counts the first try. `max_delay` caps one wait (also a `Retry-After`);
    `max_total_wait` caps the sum of waits for one request.
    """

    max_attempts: int = 5
    backoff_base: float = 0.5
    max_delay: float = 30.0
    max_total_wait: float = 120.0

    def backoff(self, retry_number: int, rng: Callable[[float, float], float]) -> float:
        """Full-jitter exponential wait before retry number `retry_number` (1-based)."""
        ceiling = min(self.max_delay, self.backoff_base * (2 ** (retry_number - 1)))
        return rng(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), or None.

    A date in the past gives 0; a value that is neither form gives None (ignored).
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def next_delay(
    policy: RetryPolicy,
    retry_number: int,
    retry_after: float | None,
    waited: float,
    rng: Callable[[float, float], float] = random.uniform,
) -> float | None:
    """The wait before retry `retry_number`, or None when the attempts or the budget are spent.

    A `Retry-After` beyond `max_delay` or beyond what is left of the budget ends the retries:
    waiting less than the server asked would only earn another 429.
    """
    if retry_number >= policy.max_attempts:
        return None
    if retry_after is not None:
        delay = retry_after
        if delay > policy.max_delay:
            return None
    else:
        delay = policy.backoff(retry_number, rng)
    if waited + delay > policy.max_total_wait:
        return None
    return delay


def transaction_is_idempotent(bundle: Mapping[str, Any]) -> bool:
    """True when replaying this transaction Bundle cannot create anything twice (see module doc)."""
    entries: Iterable[Any] = bundle.get("entry") or []
    for entry in entries:
        request = entry.get("request") if isinstance(entry, Mapping) else None
        if not isinstance(request, Mapping):
            return False
        method = str(request.get("method", "")).upper()
        if method in IDEMPOTENT_METHODS:
            continue
        if method == "POST" and request.get("ifNoneExist"):
            continue
        return False
    return True
