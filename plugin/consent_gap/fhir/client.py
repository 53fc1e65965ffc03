"""A FHIR R4 REST client on requests: a pooled session and transport policy, nothing more.

Layers, as in requests itself: the `requests.Session` moves bytes (pooling, TLS, auth hooks such
as the SMART token renewal); `FhirClient._send` adds the policy (timeouts, retries, request
counting, logging); the public methods speak FHIR interactions (read, search with paging,
conditional create, transaction, capabilities). Resources go in and come out as plain dicts; what
they mean is read elsewhere (normalize.py).

Logging: one line per attempt at DEBUG with method, the path below the base (resource type and
id, never the query string, whose values can be names), status and duration; retries at
WARNING. Tokens never reach a log: they live in the session's auth object.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import NewConnectionError

from consent_gap import __version__
from consent_gap.fhir.capabilities import CapabilityIndex, RequirementsSpec
from consent_gap.fhir.errors import (
    FhirError,
    FhirHttpError,
    FhirPagingError,
    FhirTransactionError,
    FhirTransportError,
    outcome_issues,
)
from consent_gap.fhir.retry import (
    NOT_PROCESSED_STATUSES,
    RETRY_STATUSES,
    RetryPolicy,
    next_delay,
    parse_retry_after,
    transaction_is_idempotent,
)

log = logging.getLogger("consent_gap.fhir")

FHIR_JSON = "application/fhir+json"
#: Above this many characters a search goes by POST to `[type]/_search` (form body). 2,000 is
#: the conventional safe limit across proxies and servers (Tomcat's default header limit is 8 KB).
DEFAULT_MAX_URL_LENGTH = 2000
#: (connect, read) seconds. HAPI can take tens of seconds on a large search with includes.
DEFAULT_TIMEOUT = (5.0, 60.0)
_TYPE_RE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

Params = Mapping[str, Any] | Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class CreateResult:
    """A create's outcome: the stored resource, and whether this call created it (201)
    or a conditional create found an existing match (200)."""

    resource: dict[str, Any]
    created: bool
    location: str | None = None


def param_pairs(params: Params | None) -> list[tuple[str, str]]:
    """Normalise search parameters to (name, value) pairs; a list value repeats the name."""
    if not params:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        if isinstance(value, list | tuple | set | frozenset):
            pairs += [(name, str(v)) for v in value]
        elif value is not None:
            pairs.append((name, str(value)))
    return pairs


def _not_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the server (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError)
    return False


def _transient(exc: requests.RequestException) -> bool:
    """True for a failure that another attempt may not meet: no connection, no answer in
    time, an answer cut short or garbled on the way. A bad URL or a redirect loop is not."""
    return isinstance(exc, requests.Timeout | requests.ConnectionError
                      | requests.exceptions.ChunkedEncodingError
                      | requests.exceptions.ContentDecodingError)


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.ReadTimeout):
        return "read timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "response cut short"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return "response body could not be decoded"
    return type(exc).__name__


def _body(resp: requests.Response, *, strict: bool = True) -> Any:
    """The response's JSON, None when it has no body or is an error page that is not JSON.

    A body that should be JSON (a success, or anything labelled JSON) and does not parse
    raises ValueError when `strict`: it was cut short or garbled on the way."""
    if not resp.content:
        return None
    ctype = resp.headers.get("Content-Type", "").lower()
    if resp.status_code >= 300 and "json" not in ctype:
        return None
    try:
        return json.loads(resp.content)
    except ValueError:
        if strict:
            raise
        return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


class FhirClient:
    """Talks to one FHIR base URL. Safe to share between threads (requests.Session mostly is;
    the counters are locked)."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: AuthBase | None = None,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retries: RetryPolicy | int | None = None,
        max_url_length: int = DEFAULT_MAX_URL_LENGTH,
        fresh_searches: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[float, float], float] = random.uniform,
    ) -> None:
        """`retries`: a RetryPolicy, or an int for max attempts. `fresh_searches` sends
        `Cache-Control: no-cache` on searches so HAPI does not answer from its one-minute search
        cache (a scan run right after a write-back must see what was written). `sleep` and
        `rng` are injectable so tests never wait."""
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("FHIR base URL must be http(s)")
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self._owns_session = session is None
        self.session = session or self._new_session()
        self.timeout = timeout
        if retries is None:
            retries = RetryPolicy()
        elif isinstance(retries, int):
            retries = RetryPolicy(max_attempts=max(1, retries))
        self.retry_policy = retries
        self.max_url_length = max_url_length
        self.fresh_searches = fresh_searches
        self._sleep = sleep
        self._rng = rng
        self._lock = threading.Lock()
        self.request_count = 0
        self.retry_count = 0
        self._capabilities: dict[str, Any] | None = None
        self._origin = _origin(self.base_url)
        self._base_path = urlsplit(self.base_url).path.rstrip("/")

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    # -- context management -------------------------------------------------------------
    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport with policy --------------------------------------------------------------
    def _send(
        self,
        method: str,
        url: str,
        *,
        label: str,
        replay_safe: bool,
        params: list[tuple[str, str]] | None = None,
        data: str | bytes | list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        need_body: bool = True,
    ) -> tuple[requests.Response, Any]:
        """One logical request: attempts, waits and retries per the policy (see retry.py).

        Returns the last response, whatever its status (the caller decides what an error is),
        with its body parsed as JSON (None when it has none, or when an error page is not
        JSON). An answer cut short or garbled on the way counts as a failed attempt, like a
        5xx: a replay-safe request is retried within the same budget, any other is raised,
        since the server may have acted on it. Raises FhirTransportError when no usable
        response could be had."""
        hdrs = {"Accept": FHIR_JSON, "User-Agent": f"consent-gap/{__version__}"}
        hdrs.update(headers or {})
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self.request_count += 1
            started = time.monotonic()
            retry_after: float | None = None
            try:
                resp = self.session.request(
                    method, url, params=params, data=data, headers=hdrs, auth=self.auth,
                    timeout=self.timeout, allow_redirects=False,
                )
            except requests.RequestException as exc:
                ms = (time.monotonic() - started) * 1000
                reason = _describe(exc)
                log.debug("%s %s failed (%s) after %.0f ms", method, label, reason, ms)
                if isinstance(exc, requests.exceptions.SSLError):
                    raise self._transport_error(f"{method} {label}: TLS error") from exc
                if not _transient(exc):
                    raise self._transport_error(f"{method} {label}: {reason}") from exc
                if not (replay_safe or _not_sent(exc)):
                    raise self._transport_error(
                        f"{method} {label}: {reason}; not retried because the request "
                        "may have reached the server"
                    ) from exc
                failure: BaseException | None = exc
            else:
                ms = (time.monotonic() - started) * 1000
                log.debug("%s %s -> %s in %.0f ms", method, label, resp.status_code, ms)
                status = resp.status_code
                if status in RETRY_STATUSES and (replay_safe or status in NOT_PROCESSED_STATUSES):
                    reason, failure = f"HTTP {status}", None
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                else:
                    try:
                        return resp, self._answer(resp, method, label, replay_safe, need_body)
                    except ValueError as exc:
                        reason, failure = f"HTTP {status} with a body that is not JSON", exc
            delay = next_delay(self.retry_policy, attempt, retry_after, waited, self._rng)
            if delay is None:
                if failure is None:
                    return resp, _body(resp, strict=False)
                raise self._transport_error(
                    f"{method} {label}: {reason} after {attempt} attempt(s)") from failure
            if failure is None:
                resp.close()
            with self._lock:
                self.retry_count += 1
            log.warning("%s %s: %s; retry %d in %.1f s", method, label, reason, attempt, delay)
            self._sleep(delay)
            waited += delay

    def _answer(self, resp: requests.Response, method: str, label: str, replay_safe: bool,
                need_body: bool) -> Any:
        """The body of a response that ends the attempts; ValueError when it is missing
        (`need_body`: every success carries one) or not JSON where JSON was due, and the
        request may be replayed; FhirTransportError when it may not."""
        status = resp.status_code
        try:
            body = _body(resp, strict=replay_safe or status < 300)
            if body is None and need_body and status < 300:
                raise ValueError("no body")
        except ValueError as exc:
            if replay_safe:
                raise
            raise self._transport_error(
                f"{method} {label}: HTTP {status} with a body that is not JSON; not retried "
                "because the server may have acted on it") from exc
        return body

    def _transport_error(self, message: str) -> FhirTransportError:
        """A transport failure, naming the server (the message goes to a person as is)."""
        return FhirTransportError(f"FHIR server {self.base_url}: {message}")

    @staticmethod
    def _raise_for_status(
        resp: requests.Response, body: Any, method: str, label: str,
        error_cls: type[FhirHttpError] = FhirHttpError,
    ) -> None:
        if resp.status_code < 400 and resp.status_code not in (301, 302, 303, 307, 308):
            return
        outcome = body if isinstance(body, dict) and body.get(
            "resourceType") == "OperationOutcome" else None
        raise error_cls(resp.status_code, outcome, method=method, path=label)

    def _url(self, *parts: str) -> str:
        return "/".join([self.base_url, *parts])

    @staticmethod
    def _check_type(rtype: str) -> None:
        if not _TYPE_RE.match(rtype):
            raise ValueError(f"not a FHIR resource type: {rtype!r}")

    # -- read ---------------------------------------------------------------------------
    def read(self, rtype: str, rid: str) -> dict[str, Any]:
        """GET [type]/[id] -> the resource; FhirHttpError (404, 410...) otherwise."""
        self._check_type(rtype)
        if not _ID_RE.match(rid):
            raise ValueError(f"not a FHIR id: {rid!r}")
        url = self._url(rtype, rid)
        label = f"{rtype}/{rid}"
        resp, body = self._send("GET", url, label=label, replay_safe=True)
        self._raise_for_status(resp, body, "GET", label)
        if not isinstance(body, dict) or body.get("resourceType") != rtype:
            raise FhirError(f"GET {label}: the response is not a {rtype}")
        return body

    # -- search ---------------------------------------------------------------------------
    def search_pages(
        self, rtype: str, params: Params | None = None, *, page_size: int | None = None,
        max_pages: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield each searchset Bundle, following `link[next]` until there is none.

        The first request is a GET, or a POST to `[type]/_search` with a form body when the URL
        would exceed `max_url_length`. Next links must stay on the base's origin (scheme, host,
        port) and under its path: a server or proxy pointing elsewhere would receive our token,
        so that is a FhirPagingError, as is a link seen twice (a loop)."""
        self._check_type(rtype)
        pairs = param_pairs(params)
        if page_size and not any(n == "_count" for n, _ in pairs):
            pairs.append(("_count", str(page_size)))
        headers = {"Cache-Control": "no-cache"} if self.fresh_searches else {}
        url = self._url(rtype)
        prepared = requests.Request("GET", url, params=pairs).prepare().url or url
        if len(prepared) > self.max_url_length:
            label = f"{rtype}/_search"
            resp, body = self._send("POST", self._url(rtype, "_search"), label=label,
                              replay_safe=True, data=pairs, headers=headers)
            method = "POST"
        else:
            label = rtype
            resp, body = self._send("GET", url, label=label, replay_safe=True, params=pairs,
                              headers=headers)
            method = "GET"
        seen: set[str] = set()
        page = 1
        while True:
            self._raise_for_status(resp, body, method, label)
            bundle = body
            if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                raise FhirPagingError(f"{method} {label}: the response is not a Bundle")
            yield bundle
            nxt = self._next_link(bundle)
            if nxt is None or (max_pages is not None and page >= max_pages):
                return
            if nxt in seen:
                raise FhirPagingError(f"{rtype}: the server repeated a paging link (a loop)")
            seen.add(nxt)
            page += 1
            method, label = "GET", f"{rtype} (page {page})"
            resp, body = self._send("GET", nxt, label=label, replay_safe=True,
                                    headers=headers)

    def search(
        self, rtype: str, params: Params | None = None, *, page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every resource of every page, matches and `_include`/`_revinclude`d ones alike,
        in server order. An included resource may appear on more than one page."""
        for bundle in self.search_pages(rtype, params, page_size=page_size):
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(resource, dict):
                    yield resource

    def first_page(self, rtype: str, params: Params | None = None) -> dict[str, Any]:
        """The first searchset Bundle of a search (a page a person looks at)."""
        return next(self.search_pages(rtype, params, max_pages=1))

    def page(self, url: str) -> dict[str, Any]:
        """A paging link of this server's (``next`` of an earlier page), fetched once; a link
        off the base's origin or path is refused (FhirPagingError), as the token would go
        with it."""
        url = urljoin(self.base_url + "/", url)
        self._check_same_origin(url)
        headers = {"Cache-Control": "no-cache"} if self.fresh_searches else {}
        resp, bundle = self._send("GET", url, label="search page", replay_safe=True,
                                  headers=headers)
        self._raise_for_status(resp, bundle, "GET", "search page")
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise FhirPagingError("GET search page: the response is not a Bundle")
        return bundle

    def next_link(self, bundle: Mapping[str, Any]) -> str | None:
        """The Bundle's ``next`` link, absolute, on this server (else FhirPagingError)."""
        return self._next_link(bundle)

    def _next_link(self, bundle: Mapping[str, Any]) -> str | None:
        for link in bundle.get("link") or []:
            if isinstance(link, Mapping) and link.get("relation") == "next" and link.get("url"):
                nxt = urljoin(self.base_url + "/", str(link["url"]))
                self._check_same_origin(nxt)
                return nxt
        return None

    def _check_same_origin(self, url: str) -> None:
        if _origin(url) != self._origin:
            scheme, host, port = _origin(url)
            raise FhirPagingError(
                f"paging link points to {scheme}://{host}:{port}, not to the FHIR base's origin; "
                "refusing to follow it (check the server's or proxy's base URL setting)"
            )
        path = urlsplit(url).path.rstrip("/")
        if not (path == self._base_path or path.startswith(self._base_path + "/")):
            raise FhirPagingError("paging link leaves the FHIR base path; refusing to follow it")

    # -- create ---------------------------------------------------------------------------
    def conditional_create(
        self, resource: Mapping[str, Any], if_none_exist: str | Params | None,
    ) -> CreateResult:
        """POST [type] with `If-None-Exist` (e.g. `identifier=system|value`, or pairs).

        201 -> created=True; 200 -> a match existed, created=False, the existing resource is
        returned. 412 (more than one match) and other errors raise FhirHttpError. Without
        `if_none_exist` this is a plain create, which is not retried once it may have been sent.
        """
        rtype = str(resource.get("resourceType", ""))
        self._check_type(rtype)
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = (
                if_none_exist if isinstance(if_none_exist, str)
                else urlencode(param_pairs(if_none_exist))
            )
        resp, body = self._send("POST", self._url(rtype), label=rtype,
                                replay_safe=bool(if_none_exist), data=json.dumps(resource),
                                headers=headers, need_body=False)
        self._raise_for_status(resp, body, "POST", rtype)
        location = resp.headers.get("Location") or resp.headers.get("Content-Location")
        if not (isinstance(body, dict) and body.get("resourceType") == rtype):
            body = self._read_location(location, rtype)
        return CreateResult(body, resp.status_code == 201, location)

    def create(
        self, resource: Mapping[str, Any], if_none_exist: str | Params | None = None,
    ) -> dict[str, Any]:
        """Create (conditionally when `if_none_exist` is given); returns the stored resource.
        Use conditional_create() to learn whether it was created or already there."""
        return self.conditional_create(resource, if_none_exist).resource

    def _read_location(self, location: str | None, rtype: str) -> dict[str, Any]:
        """The server answered without a body: read the resource it points to."""
        if not location:
            raise FhirError(f"POST {rtype}: no resource and no Location in the response")
        path = urlsplit(urljoin(self.base_url + "/", location)).path
        parts = [p for p in path.split("/") if p]
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if len(parts) < 2 or parts[-2] != rtype:
            raise FhirError(f"POST {rtype}: unexpected Location in the response")
        return self.read(rtype, parts[-1])

    # -- transaction / batch ------------------------------------------------------------
    def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle; returns the transaction-response Bundle.

        A rejected transaction (nothing was written) raises FhirTransactionError whose issues
        are the server's OperationOutcome lines (HAPI names the failing entry in them); an entry
        with an error status in a 200 response (non-conforming servers) is reported by index.
        Retried after a lost response only when every entry is idempotent (see retry.py)."""
        return self._post_bundle(bundle, "transaction", raise_on_entry=True)

    def batch(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """POST a batch Bundle; returns the batch-response, entries failing independently
        (read each `entry.response.status`; `entry_errors()` lists them)."""
        return self._post_bundle(bundle, "batch", raise_on_entry=False)

    def _post_bundle(
        self, bundle: Mapping[str, Any], kind: str, *, raise_on_entry: bool,
    ) -> dict[str, Any]:
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != kind:
            raise ValueError(f"expected a Bundle of type {kind}")
        label = f"({kind})"
        resp, body = self._send("POST", self.base_url, label=label,
                                replay_safe=transaction_is_idempotent(bundle),
                                data=json.dumps(bundle), headers={"Content-Type": FHIR_JSON})
        self._raise_for_status(resp, body, "POST", label, FhirTransactionError)
        if not isinstance(body, dict) or body.get("type") != f"{kind}-response":
            raise FhirError(f"POST {label}: the response is not a {kind}-response Bundle")
        errors = entry_errors(bundle, body)
        if raise_on_entry and errors:
            first = int(str(errors[0][1]).split()[0]) if errors[0][1] else 500
            raise FhirTransactionError(first, None, method="POST", path=label,
                                       issues=[e[2] for e in errors])
        return body

    # -- capabilities -----------------------------------------------------------------------
    def capabilities(self, *, refresh: bool = False) -> dict[str, Any]:
        """GET [base]/metadata (cached for the client's life unless `refresh`)."""
        if self._capabilities is None or refresh:
            resp, body = self._send("GET", self._url("metadata"), label="metadata",
                                    replay_safe=True)
            self._raise_for_status(resp, body, "GET", "metadata")
            if not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
                raise FhirError("GET metadata: the response is not a CapabilityStatement")
            self._capabilities = body
        return self._capabilities

    def capability_index(self) -> CapabilityIndex:
        return CapabilityIndex(self.capabilities())

    def check_capabilities(self, required: RequirementsSpec) -> list[str]:
        """What the server lacks of `required` (see capabilities.py), one line each."""
        return self.capability_index().missing(required)


def entry_errors(
    request_bundle: Mapping[str, Any], response_bundle: Mapping[str, Any],
) -> list[tuple[int, str, str]]:
    """(index, status, readable line) for each response entry with a 4xx/5xx status."""
    requests_ = request_bundle.get("entry") or []
    out = []
    for i, entry in enumerate(response_bundle.get("entry") or []):
        response = entry.get("response") or {}
        status = str(response.get("status", ""))
        if status[:1] not in ("4", "5"):
            continue
        req = requests_[i].get("request", {}) if i < len(requests_) else {}
        what = f"{req.get('method', '?')} {str(req.get('url', '?')).split('?')[0]}"
        issues = outcome_issues(response.get("outcome")) or ["no OperationOutcome"]
        out.append((i, status, f"entry {i} ({what}): {status}: {'; '.join(issues)}"))
    return out
