"""A fault-injecting HTTP proxy for the integration tests: it stands in front of a FHIR server
(the sandbox's HAPI) and breaks a seeded share of the exchanges the way networks, proxies and
servers break them.

Faults come in two phases, because they mean different things to a writer:

- *before* the request reaches the server (nothing happened there): an error status (500,
  503, 429 with ``Retry-After: 0``), the connection dropped without an answer, or a delay;
- *after* the server answered (a write has committed): the body cut short (a ``Content-Length``
  promising more than is sent, or a chunked body that stops), the body garbled (not JSON, with
  a consistent length), the answer replaced by a 500 or 502, the connection dropped without an
  answer, or the answer held back longer than the client waits (``stall``).

A client that retries what it may retry, and only that, must end with exactly what it would have
written without the faults. Each exchange draws from one ``random.Random(seed)`` under a lock:
the same seed gives the same sequence of draws (which request gets which draw can vary with
thread timing). Loopback only; ports are the caller's.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import urllib3

BEFORE = ("status-500", "status-503", "status-429", "drop", "delay")
AFTER = ("cut", "cut-chunked", "garble", "status-500-after", "status-502-after", "drop-after",
         "stall")
KINDS = BEFORE + AFTER
#: Response headers passed through from the server (the rest are the proxy's own).
PASSED = ("content-type", "location", "content-location", "etag", "last-modified",
          "retry-after")
#: Request headers passed on to the server.
FORWARDED = ("accept", "content-type", "if-none-exist", "if-match", "prefer", "cache-control",
             "authorization", "user-agent")


class FaultProxy:
    """Forwards to ``upstream`` (a FHIR base URL) and breaks ``rate`` of the exchanges that
    ``only`` selects (all by default) with one of ``kinds``, seeded. ``stats`` counts the
    faults injected by kind, ``forwarded`` the requests the server saw."""

    def __init__(
        self,
        upstream: str,
        ports: Iterable[int],
        *,
        rate: float,
        seed: int,
        kinds: Sequence[str] = KINDS,
        only: Callable[[str, str], bool] | None = None,
        delay: float = 0.2,
        stall: float = 2.5,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self.upstream = upstream.rstrip("/")
        self.rate = rate
        self.kinds = tuple(kinds)
        self.only = only or (lambda method, path: True)
        self.delay = delay
        self.stall = stall
        self.stats: Counter[str] = Counter()
        self.forwarded = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._http = urllib3.PoolManager(maxsize=8, retries=False)
        self._server = self._bind(ports)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="faultproxy")
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}" + urlsplit(
            self.upstream).path

    def _bind(self, ports: Iterable[int]) -> ThreadingHTTPServer:
        handler = type("Handler", (_Handler,), {"proxy": self})
        error: OSError | None = None
        for port in ports:
            try:
                server = ThreadingHTTPServer(("127.0.0.1", port), handler)
            except OSError as exc:  # in use: try the next one
                error = exc
                continue
            server.daemon_threads = True
            return server
        raise OSError(f"no free port for the fault proxy: {error}")

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._http.clear()

    @property
    def injected(self) -> int:
        return sum(self.stats.values())

    def choose(self, method: str, path: str) -> str | None:
        """The fault for this exchange, or None (and it is counted)."""
        with self._lock:
            draw, pick = self._rng.random(), self._rng.choice(self.kinds)
            if draw >= self.rate or not self.only(method, path):
                return None
            self.stats[pick] += 1
            return pick

    def pause(self) -> float:
        """Seconds of one injected delay (seeded)."""
        with self._lock:
            return self._rng.uniform(0, self.delay)

    def forward(self, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """The server's answer, its URLs rewritten to point at the proxy (paging links must
        stay on the client's base)."""
        origin = urlsplit(self.upstream)
        url = f"{origin.scheme}://{origin.netloc}{path}"
        with self._lock:
            self.forwarded += 1
        answer = self._http.request(method, url, body=body or None, headers=headers,
                                    redirect=False, preload_content=True, decode_content=True,
                                    timeout=urllib3.Timeout(connect=5, read=120))
        payload = answer.data.replace(self.upstream.encode(), self.base.encode())
        passed = [(name, value.replace(self.upstream, self.base))
                  for name, value in answer.headers.items() if name.lower() in PASSED]
        return answer.status, passed, payload


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read the proxy's counters, not its log."""

    def do_GET(self) -> None:
        self._exchange()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _exchange(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = self.proxy.choose(self.command, urlsplit(self.path).path)
        if fault in BEFORE and fault != "delay":
            self._before(fault)
            return
        if fault == "delay":
            time.sleep(self.proxy.pause())
        headers = {k: v for k, v in self.headers.items() if k.lower() in FORWARDED}
        headers["Accept-Encoding"] = "identity"
        try:
            status, passed, payload = self.proxy.forward(self.command, self.path, headers, body)
        except urllib3.exceptions.HTTPError:
            self._reply(502, [("Content-Type", "text/plain")], b"upstream unreachable")
            return
        if fault is None:
            self._reply(status, passed, payload)
        else:
            self._after(fault, status, passed, payload)

    def _before(self, fault: str) -> None:
        if fault == "drop":
            self.close_connection = True
            return
        status = int(fault.split("-")[1])
        extra = [("Retry-After", "0")] if status == 429 else []
        self._reply(status, [("Content-Type", "text/plain"), *extra], b"injected fault")

    def _after(self, fault: str, status: int, passed: list[tuple[str, str]],
               payload: bytes) -> None:
        half = payload[: max(1, len(payload) // 2)]
        if fault == "cut":
            self._head(status, passed, [("Content-Length", str(len(payload)))])
            self.wfile.write(half)
            self._hang_up()
        elif fault == "cut-chunked":
            self._head(status, passed, [("Transfer-Encoding", "chunked")])
            self.wfile.write(f"{len(payload):x}\r\n".encode() + half)
            self._hang_up()
        elif fault == "garble":
            self._reply(status, passed, b"\x00garbled " + half[: len(half) // 2])
        elif fault in ("status-500-after", "status-502-after"):
            self._reply(int(fault.split("-")[1]), [("Content-Type", "text/html")],
                        b"<html>upstream error</html>")
        elif fault == "drop-after":
            self.close_connection = True
        elif fault == "stall":
            time.sleep(self.proxy.stall)
            self.close_connection = True

    def _head(self, status: int, passed: list[tuple[str, str]],
              extra: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in passed + extra:
            self.send_header(name, value)
        self.end_headers()

    def _reply(self, status: int, passed: list[tuple[str, str]], payload: bytes) -> None:
        self._head(status, passed, [("Content-Length", str(len(payload)))])
        self.wfile.write(payload)

    def _hang_up(self) -> None:
        self.wfile.flush()
        self.close_connection = True
