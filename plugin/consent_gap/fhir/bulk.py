"""FHIR Bulk Data Access (Flat FHIR) `$export`: kick-off, status polling, NDJSON download.

Generic: it knows the async request pattern and nothing of what the files hold.

- Kick-off: ``GET [base]/$export`` or ``[base]/Group/<id>/$export`` with ``_type``,
  ``_typeFilter`` and ``_since``, ``Accept: application/fhir+json`` and
  ``Prefer: respond-async``; the answer is 202 with ``Content-Location`` (the status URL).
- Polling: ``GET`` the status URL; 202 means in progress, with ``X-Progress`` (shown to the
  person running the scan) and ``Retry-After`` (seconds or an HTTP date), which is honoured
  (bounded by `MIN_WAIT` and `max_wait`, ``CONSENT_GAP_BULK_MAX_WAIT``, so a server is
  neither hammered nor waited on for minutes after a job of seconds); 200 is the manifest
  (``transactionTime``, ``requiresAccessToken``, ``output``, ``error``); 4xx/5xx is an
  error with its OperationOutcome. 429/5xx at the transport level go through the client's
  retry policy (fhir/retry.py).
- Download: each output file is streamed line by line (never held whole), with the client's
  authorization only when the manifest says ``requiresAccessToken`` and only to the FHIR base's
  own origin (a token never leaves for another host); otherwise without any.
- Cancel: ``DELETE`` the status URL (a stopped scan, or a finished one: the server may then
  drop the files).

Status and file URLs must be absolute http(s); the status URL must be on the FHIR base's origin
(it is polled with the token).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from consent_gap.fhir.client import FhirClient, _origin
from consent_gap.fhir.errors import FhirError, FhirHttpError

log = logging.getLogger("consent_gap.fhir")

NDJSON = "application/fhir+ndjson"
#: Bounds on the wait between two status polls, whatever Retry-After says.
MIN_WAIT, MAX_WAIT, DEFAULT_WAIT = 0.5, 120.0, 2.0
#: Give up on an export that is not done after this many seconds.
DEFAULT_TIMEOUT = 6 * 3600.0


class BulkExportError(FhirError):
    """The export failed, was refused, or its manifest is unusable."""


@dataclass(frozen=True)
class OutputFile:
    type: str
    url: str
    count: int | None = None


@dataclass(frozen=True)
class Manifest:
    transaction_time: str
    requires_access_token: bool
    output: tuple[OutputFile, ...]
    error: tuple[OutputFile, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date (seconds from now)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, moment - (time.time() if now is None else now))


def _instant(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def updated_before(resource: Mapping[str, Any], since: str | None) -> bool:
    """True when `resource`'s ``meta.lastUpdated`` is before `since`: an export asked
    ``_since`` should not hold it, but HAPI's Group export does (its compartment searches lose
    ``_since``), so the caller drops it. Without a readable time, False (kept)."""
    if not since:
        return False
    meta = resource.get("meta")
    updated = meta.get("lastUpdated") if isinstance(meta, Mapping) else None
    if not isinstance(updated, str):
        return False
    moment, start = _instant(updated), _instant(since)
    return moment is not None and start is not None and moment < start


def manifest_of(body: Any) -> Manifest:
    """The completion manifest, checked (BulkExportError when it is not one)."""
    if not isinstance(body, dict) or not isinstance(body.get("output"), list):
        raise BulkExportError("$export: the completion answer is not a manifest")

    def files(items: Any) -> tuple[OutputFile, ...]:
        out = []
        for item in items or []:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise BulkExportError("$export: a manifest entry has no url")
            count = item.get("count")
            out.append(OutputFile(str(item.get("type", "")), item["url"],
                                  count if isinstance(count, int) else None))
        return tuple(out)

    return Manifest(str(body.get("transactionTime", "")), bool(body.get("requiresAccessToken")),
                    files(body["output"]), files(body.get("error")), body)


class BulkExport:
    """One export job on `client`'s server. Use as a context manager: leaving the block
    before the files are read (an error, Ctrl-C, SIGTERM) cancels the job."""

    def __init__(self, client: FhirClient, *, group: str | None = None,
                 types: Sequence[str] = (), type_filters: Sequence[str] = (),
                 since: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_progress: Callable[[str], None] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, max_wait: float = MAX_WAIT) -> None:
        """`max_wait` caps the wait between two polls, whatever Retry-After asks (a server
        asking 120 s for a job of seconds would make a small export take minutes)."""
        self.client = client
        self.group = group
        self.types = tuple(types)
        self.type_filters = tuple(type_filters)
        self.since = since
        self.sleep = sleep
        self.on_progress = on_progress or (lambda text: log.info("export: %s", text))
        self.timeout = timeout
        self.max_wait = max_wait
        self.status_url: str | None = None
        self.manifest: Manifest | None = None
        self.polls = 0

    # -- the job

    def kick_off(self) -> str:
        """Start the export; returns the status URL."""
        path = f"Group/{self.group}/$export" if self.group else "$export"
        params: list[tuple[str, str]] = []
        if self.types:
            params.append(("_type", ",".join(self.types)))
        params += [("_typeFilter", f) for f in self.type_filters]
        if self.since:
            params.append(("_since", self.since))
        resp = self.client._send(
            "GET", f"{self.client.base_url}/{path}", label=path, replay_safe=True,
            params=params, headers={"Accept": "application/fhir+json", "Prefer": "respond-async"})
        if resp.status_code != 202:
            self.client._raise_for_status(resp, "GET", path)
            raise BulkExportError(f"GET {path}: expected 202 Accepted, got {resp.status_code}")
        location = resp.headers.get("Content-Location")
        if not location:
            raise BulkExportError(f"GET {path}: 202 without Content-Location")
        url = urljoin(self.client.base_url + "/", location)
        if _origin(url) != _origin(self.client.base_url):
            raise BulkExportError("$export: the status URL is on another origin; refusing to "
                                  "send the token there")
        self.status_url = url
        log.info("export started: %s", path)
        return url

    def wait(self) -> Manifest:
        """Poll until done (honouring Retry-After, reporting X-Progress)."""
        assert self.status_url, "kick_off first"
        deadline = time.monotonic() + self.timeout
        while True:
            self.polls += 1
            resp = self.client._send("GET", self.status_url, label="$export status",
                                     replay_safe=True, headers={"Accept": "application/json"})
            if resp.status_code == 200:
                self.manifest = manifest_of(self.client._json(resp, "GET", "$export status"))
                if self.manifest.error:
                    log.warning("export: the server reported %d error file(s)",
                                len(self.manifest.error))
                return self.manifest
            if resp.status_code != 202:
                self.client._raise_for_status(resp, "GET", "$export status")
                raise BulkExportError(f"$export status: unexpected HTTP {resp.status_code}")
            progress = resp.headers.get("X-Progress")
            if progress:
                self.on_progress(progress[:100])
            if time.monotonic() > deadline:
                raise BulkExportError(f"$export not done after {self.timeout:.0f} s")
            wait = retry_after_seconds(resp.headers.get("Retry-After"))
            self.sleep(min(self.max_wait,
                           max(MIN_WAIT, DEFAULT_WAIT if wait is None else wait)))

    def lines(self, output: OutputFile) -> Iterator[bytes]:
        """The lines of one output file, streamed (blank lines skipped)."""
        assert self.manifest is not None
        url = urljoin(self.status_url or self.client.base_url, output.url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise BulkExportError("$export: an output URL is not http(s)")
        auth = None
        if self.manifest.requires_access_token:
            if _origin(url) != _origin(self.client.base_url):
                raise BulkExportError("$export: a file needing the token is on another "
                                      "origin; refusing to send the token there")
            auth = self.client.auth
        with self.client._lock:
            self.client.request_count += 1
        with self.client.session.get(url, stream=True, auth=auth, timeout=self.client.timeout,
                                     headers={"Accept": NDJSON}, allow_redirects=False) as resp:
            if resp.status_code != 200:
                raise FhirHttpError(resp.status_code, None, method="GET",
                                    path=f"$export file ({output.type})")
            for line in resp.iter_lines(chunk_size=1 << 16):
                if line.strip():
                    yield line

    def resources(self, output: OutputFile) -> Iterator[dict[str, Any]]:
        for line in self.lines(output):
            try:
                yield json.loads(line)
            except ValueError as error:
                raise BulkExportError(f"$export file ({output.type}): a line is not "
                                      "JSON") from error

    def cancel(self) -> None:
        """DELETE the job (a stopped scan; or a finished one, so the server may drop the
        files). Failures are logged, never raised: this runs while stopping."""
        if not self.status_url:
            return
        url, self.status_url = self.status_url, None
        try:
            resp = self.client._send("DELETE", url, label="$export status", replay_safe=True)
            log.info("export job deleted (HTTP %s)", resp.status_code)
        except FhirError as error:
            log.warning("could not delete the export job: %s", error)

    def __enter__(self) -> BulkExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()
