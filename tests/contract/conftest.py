"""Shared fixtures for the contract tests: HTTP is mocked with `responses`; nothing listens."""

from __future__ import annotations

import pytest
import responses
from consent_gap.fhir import FhirClient, RetryPolicy
from fhirfakes import BASE, SleepRecorder


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def sleeps():
    return SleepRecorder()


@pytest.fixture
def client(sleeps):
    """A client whose backoff is deterministic (always the ceiling) and never sleeps."""
    policy = RetryPolicy(max_attempts=4, backoff_base=0.5, max_delay=30, max_total_wait=60)
    c = FhirClient(BASE, retries=policy, sleep=sleeps, rng=lambda lo, hi: hi)
    yield c
    c.close()
