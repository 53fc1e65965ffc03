"""The retry policy's pure parts: Retry-After parsing, waits, what may be replayed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from consent_gap.fhir.retry import (
    RetryPolicy,
    next_delay,
    parse_retry_after,
    transaction_is_idempotent,
)

NOW = datetime(2026, 11, 29, 6, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), (" 0 ", 0.0),
    ("Sun, 29 Nov 2026 06:01:30 GMT", 90.0),
    ("Sun, 29 Nov 2026 05:00:00 GMT", 0.0),  # in the past: go now
    ("soon", None), ("-5", None), ("", None), (None, None),
])
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, NOW) == seconds


def test_backoff_doubles_up_to_the_cap_with_full_jitter():
    policy = RetryPolicy(max_attempts=10, backoff_base=1.0, max_delay=5.0, max_total_wait=1e9)
    ceilings = [next_delay(policy, n, None, 0.0, rng=lambda lo, hi: hi) for n in range(1, 6)]
    assert ceilings == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert next_delay(policy, 3, None, 0.0, rng=lambda lo, hi: lo) == 0.0


def test_attempts_and_total_wait_are_capped():
    policy = RetryPolicy(max_attempts=3, backoff_base=1.0, max_delay=10.0, max_total_wait=12.0)
    assert next_delay(policy, 3, None, 0.0) is None  # third attempt was the last
    assert next_delay(policy, 1, 10.0, 0.0) == 10.0
    assert next_delay(policy, 2, 10.0, 10.0) is None  # would pass the 12 s budget
    assert next_delay(policy, 1, 11.0, 0.0) is None  # beyond one wait's cap


@pytest.mark.parametrize(("entries", "safe"), [
    ([{"request": {"method": "POST", "url": "Communication", "ifNoneExist": "identifier=a|b"}},
      {"request": {"method": "PUT", "url": "Device/d1"}},
      {"request": {"method": "GET", "url": "Patient/p1"}}], True),
    ([{"request": {"method": "POST", "url": "Communication"}}], False),
    ([{"request": {"method": "PATCH", "url": "Consent/c1"}}], False),
    ([{"resource": {"resourceType": "Basic"}}], False),
    ([], True),
])
def test_which_transactions_may_be_replayed(entries, safe):
    assert transaction_is_idempotent({"resourceType": "Bundle", "entry": entries}) is safe
