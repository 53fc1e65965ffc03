"""deploy/ (README, "Deployment"): the compose file, the systemd units and the example settings
say what the product does: every variable exists, the app never gets the private key, the
scheduler runs `consent-gap schedule` on the app's volume, the image runs either."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from consent_gap.cli import COMMANDS
from consent_gap.settings import CONFIG_VARIABLE, VARIABLES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KNOWN = {var.env for var in VARIABLES} | {CONFIG_VARIABLE}


def _variables(text: str) -> set[str]:
    return set(re.findall(r"\b(CONSENT_GAP_[A-Z_]+)", text))


@pytest.mark.parametrize("name", ["compose.yaml", "consent-gap.env.example",
                                  "consent-gap-scheduler.service", "consent-gap-app.service"])
def test_every_variable_named_is_a_setting(name):
    named = _variables((DEPLOY / name).read_text())
    assert named, name
    assert named <= KNOWN, sorted(named - KNOWN)


def test_the_example_settings_load(tmp_path):
    from consent_gap.settings import load_settings

    environ = {}
    for line in (DEPLOY / "consent-gap.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            environ[key] = value
    assert "CONSENT_GAP_PRIVATE_KEY" not in environ  # the app reads this file too
    settings = load_settings(environ)
    assert settings.fhir_base and settings.allowed_issuers and settings.jwks_file


def test_compose_runs_the_app_and_the_scheduler_on_one_volume():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    app, scheduler = compose["services"]["app"], compose["services"]["scheduler"]
    assert scheduler["command"] == ["consent-gap", "schedule"]
    assert app["image"] == scheduler["image"]
    state = {v.split(":")[0] for v in app["volumes"]} & {v.split(":")[0]
                                                         for v in scheduler["volumes"]}
    assert state == {"state"} and "state" in compose["volumes"]
    assert "CONSENT_GAP_PRIVATE_KEY" not in app.get("environment", {})
    assert "secrets" not in app
    assert scheduler["environment"]["CONSENT_GAP_AUTH"] == "backend"
    assert app["environment"]["CONSENT_GAP_JWKS_FILE"]


def test_the_systemd_units_run_commands_that_exist():
    names = {command.name for command in COMMANDS}
    for unit in ("consent-gap-scheduler.service", "consent-gap-app.service"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string((DEPLOY / unit).read_text())
        exec_start = parser["Service"]["ExecStart"].split()
        assert parser["Service"]["User"] == "consentgap"
        if exec_start[0].endswith("/consent-gap"):
            assert exec_start[1] in names
        else:
            assert exec_start[0].endswith("/gunicorn") and "consent_gap.web:create_app()" \
                in parser["Service"]["ExecStart"]
    app_unit = (DEPLOY / "consent-gap-app.service").read_text()
    assert "PRIVATE_KEY" not in app_unit.replace("private key", "")
