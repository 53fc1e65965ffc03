"""Browser tests: Debian's Chromium driven by Playwright, the sandbox EHR page launching the app
(`consent-gap serve` on 8082) in its iframe.

Every test here is marked `e2e`. When the sandbox, Chromium or the app's port is not available
they are skipped on a developer machine and fail when `CI` is set (a CI that cannot run them must
not pass). Playwright never downloads a browser: the launch arguments name /usr/bin/chromium.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.fhir import register_app_device

HERE = Path(__file__).parent
REPO = HERE.parents[1]
FHIR_BASE = os.environ.get("SANDBOX_FHIR_BASE", "http://127.0.0.1:8080/fhir").rstrip("/")
LAUNCHER_BASE = os.environ.get("SANDBOX_LAUNCHER_BASE", "http://127.0.0.1:8081").rstrip("/")
ISS = f"{LAUNCHER_BASE}/fhir"
APP_PORT = int(os.environ.get("CONSENT_GAP_E2E_PORT", "8082"))
APP_URL = f"http://127.0.0.1:{APP_PORT}"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts"
PRIVACY_OFFICER = "Practitioner/sandbox-practitioner"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


def unavailable(message: str) -> None:
    """Skip on a developer machine; fail under CI."""
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=10).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def sandbox() -> dict[str, str]:
    if not _answers(f"{FHIR_BASE}/metadata"):
        unavailable(f"HAPI FHIR is not reachable at {FHIR_BASE}; start it with sandbox/up")
    if not _answers(f"{ISS}/.well-known/smart-configuration"):
        unavailable(f"the SMART launcher is not reachable at {LAUNCHER_BASE}; sandbox/up")
    register_app_device(FHIR_BASE)  # as the scan does in a deployment (strict-EHR writes)
    return {"fhir": FHIR_BASE, "launcher": LAUNCHER_BASE, "iss": ISS}


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class AppServer:
    """`consent-gap serve` on APP_PORT with the sandbox's settings, plus what a test module
    adds (a jurisdiction, the practice): one process at a time, restarted only when the
    settings asked for differ from the running ones."""

    def __init__(self, sandbox: dict[str, str], log_dir: Path) -> None:
        self.sandbox = sandbox
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.extra: dict[str, str] | None = None
        self.starts = 0

    def ensure(self, extra: dict[str, str] | None = None) -> str:
        extra = dict(extra or {})
        if self.process is not None and self.process.poll() is None and self.extra == extra:
            return APP_URL
        self.stop()
        if not _port_free(APP_PORT):
            unavailable(f"port {APP_PORT} is taken; the browser tests start the app there")
        self.starts += 1
        log_path = self.log_dir / f"serve-{self.starts}.log"
        env = {
            **os.environ,
            "CONSENT_GAP_ALLOWED_ISSUERS": self.sandbox["iss"],
            "CONSENT_GAP_PUBLIC_URL": APP_URL,
            "CONSENT_GAP_DEV_INSECURE_COOKIES": "true",
            "CONSENT_GAP_SECRET_KEY": "e2e-only-secret",
            "CONSENT_GAP_PRIVACY_OFFICER": PRIVACY_OFFICER,
            # The sandbox EHR calls the app's CDS Hooks service as a client with its own key.
            "CONSENT_GAP_CDS_CLIENTS": f"{LAUNCHER_BASE}={LAUNCHER_BASE}/sandbox/cds/jwks.json",
        }
        env.pop("CONSENT_GAP_CONFIG", None)
        env.pop("CONSENT_GAP_JURISDICTION", None)
        env.update(extra)
        command = [sys.executable, "-m", "consent_gap.cli", "serve", "--port", str(APP_PORT)]
        with log_path.open("w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=REPO)
        self.extra = extra
        deadline = time.monotonic() + 30
        while not _answers(f"{APP_URL}/healthz"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"consent-gap serve did not start:\n{log_path.read_text()}",
                            pytrace=False)
            time.sleep(0.2)
        return APP_URL

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        deadline = time.monotonic() + 10
        while not _port_free(APP_PORT) and time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.fixture(scope="session")
def app_servers(sandbox: dict[str, str],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    manager = AppServer(sandbox, tmp_path_factory.mktemp("app"))
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture(scope="session")
def app_server(app_servers: AppServer) -> str:
    """The app with the sandbox's settings (federal rules), for the whole session. A module
    that needs other settings asks `app_servers.ensure(...)` and puts these back after."""
    return app_servers.ensure()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch arguments: Debian's Chromium, headless, nothing fetched."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS,
            "headless": True}
