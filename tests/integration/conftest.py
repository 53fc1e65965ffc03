"""Fixtures for the tests that run against the live sandbox (`sandbox/up`).

Every test in this folder is marked `integration` (select with `-m integration`, leave out with
`-m "not integration"`). The sandbox's addresses come from INTERFACES (overridable by environment
for a sandbox on other ports): when a part is not reachable, the tests that need it are skipped on
a developer machine and fail when `CI` is set, so a broken sandbox never passes CI silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

HERE = Path(__file__).parent

FHIR_BASE = os.environ.get("SANDBOX_FHIR_BASE", "http://127.0.0.1:8080/fhir").rstrip("/")
LAUNCHER_BASE = os.environ.get("SANDBOX_LAUNCHER_BASE", "http://127.0.0.1:8081").rstrip("/")
PROXY_BASE = f"{LAUNCHER_BASE}/fhir"
FHIR_JSON = "application/fhir+json"

_reachable: dict[str, str | None] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected from this folder `integration`."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


def _probe(url: str) -> str | None:
    """None when `url` answers 200, else why not (cached: one probe per URL per session)."""
    if url not in _reachable:
        try:
            status = requests.get(url, timeout=10, headers={"Accept": FHIR_JSON}).status_code
            _reachable[url] = None if status == 200 else f"HTTP {status}"
        except requests.RequestException as exc:
            _reachable[url] = type(exc).__name__
    return _reachable[url]


def require(url: str, what: str) -> None:
    """Skip (developer machine) or fail (CI) when the sandbox part at `url` is not reachable."""
    problem = _probe(url)
    if problem is None:
        return
    message = f"{what} is not reachable at {url} ({problem}); start it with sandbox/up"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def fhir_base() -> str:
    """HAPI FHIR's own base URL (no authorization in front of it)."""
    require(f"{FHIR_BASE}/metadata", "HAPI FHIR")
    return FHIR_BASE


@pytest.fixture(scope="session")
def launcher_base() -> str:
    """The SMART launcher's root URL (authorize, token, the EHR page)."""
    require(f"{PROXY_BASE}/.well-known/smart-configuration", "the SMART launcher")
    return LAUNCHER_BASE


@pytest.fixture(scope="session")
def proxy_base(launcher_base: str) -> str:
    """The FHIR base the launcher serves (the `iss`): HAPI behind scope enforcement."""
    return f"{launcher_base}/fhir"


@pytest.fixture(scope="session")
def run_id() -> str:
    """A token unique to this test run, for client-assigned ids and identifiers, so that a rerun
    against the same database never collides with an earlier run's resources. Starts with a
    letter: HAPI (like the public sandbox) refuses client ids made only of digits."""
    return "it" + uuid.uuid4().hex[:12]


class Fhir:
    """A few lines of FHIR REST over requests, for tests of the server itself (the product's own
    client is tested elsewhere). Searches send `Cache-Control: no-cache`: HAPI, like the public
    sandbox, otherwise serves an identical search from a 60-second cache, missing fresh writes."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers.update({"Accept": FHIR_JSON, "Content-Type": FHIR_JSON})

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base}/{path.lstrip('/')}"

    def get(self, path: str, params: Any = None, **kw: Any) -> requests.Response:
        headers = {"Cache-Control": "no-cache", **kw.pop("headers", {})}
        return self.http.get(self.url(path), params=params, headers=headers, timeout=60, **kw)

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Create or update a resource with a client-assigned id; returns the stored resource."""
        path = f"{resource['resourceType']}/{resource['id']}"
        r = self.http.put(self.url(path), json=resource, timeout=60)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def post(self, path: str, body: dict[str, Any], **kw: Any) -> requests.Response:
        return self.http.post(self.url(path), json=body, timeout=120, **kw)

    def search(self, rtype: str, params: Any) -> dict[str, Any]:
        """One search page as a Bundle; fails the test on a non-200 answer."""
        r = self.get(rtype, params)
        assert r.status_code == 200, f"{rtype}?{params}: HTTP {r.status_code} {r.text[:500]}"
        return r.json()


    @staticmethod
    def entries(bundle: dict[str, Any], mode: str | None = None) -> list[dict[str, Any]]:
        """A Bundle's resources, optionally only those with `search.mode` = mode."""
        return [
            e["resource"]
            for e in bundle.get("entry", [])
            if mode is None or e.get("search", {}).get("mode") == mode
        ]

    @staticmethod
    def ids(resources: list[dict[str, Any]], rtype: str | None = None) -> set[str]:
        """`Type/id` of each resource (only of `rtype` when given)."""
        return {
            f"{r['resourceType']}/{r['id']}"
            for r in resources
            if rtype is None or r["resourceType"] == rtype
        }

    def found(self, rtype: str, params: Any, mode: str | None = "match") -> set[str]:
        """`Type/id` of the resources one search page returns (matches only, by default)."""
        return self.ids(self.entries(self.search(rtype, params), mode))


@pytest.fixture(scope="session")
def fhir(fhir_base: str) -> Iterator[Fhir]:
    """A Fhir helper on HAPI direct."""
    client = Fhir(fhir_base)
    yield client
    client.http.close()
