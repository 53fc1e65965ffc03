"""sandbox/app's APP_PORT reaches the launcher's registration: sandbox/up passes it as
`--app-origin`, and the consent-gap clients' launch, redirect and CDS URLs move with it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "sandbox" / "smart"))

from smart_launcher.config import load_config  # noqa: E402

CLIENTS = ROOT / "sandbox" / "smart" / "clients.toml"


def config(tmp_path: Path, app_origin: str | None):
    return load_config(CLIENTS, origin="http://127.0.0.1:8081",
                       upstream="http://127.0.0.1:8080/fhir", keys_dir=tmp_path,
                       app_origin=app_origin)


def test_the_app_origin_moves_the_app_clients_urls(tmp_path):
    moved = config(tmp_path, "http://127.0.0.1:9182").clients["consent-gap"]
    assert moved.redirect_uris == ("http://127.0.0.1:9182/callback",)
    assert moved.launch_url == "http://127.0.0.1:9182/launch"
    assert moved.cds_services == "http://127.0.0.1:9182/cds-services"


def test_without_it_the_file_is_as_written(tmp_path):
    spec = config(tmp_path, None).clients["consent-gap"]
    assert spec.redirect_uris == ("http://127.0.0.1:8082/callback",)


def test_the_scripts_pass_app_port_through():
    lib = (ROOT / "sandbox" / "lib.sh").read_text()
    up = (ROOT / "sandbox" / "up").read_text()
    app = (ROOT / "sandbox" / "app").read_text()
    assert 'APP_PORT="${APP_PORT:-8082}"' in lib
    assert '--app-origin "http://127.0.0.1:$APP_PORT"' in up
    assert 'CONSENT_GAP_PUBLIC_URL="$APP_URL"' in app and "--port \"$APP_PORT\"" in app
