"""The wheel a newcomer installs holds the whole product: every subpackage, the rule tables,
the templates and static files, the migrations; its dependencies are the ones the code
imports; constraints.txt pins them; `python -m consent_gap` runs."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "plugin" / "consent_gap"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(out), str(ROOT)], check=True, cwd=out)
    [built] = out.glob("consent_gap-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def test_the_wheel_holds_every_subpackage(wheel):
    names = set(wheel.namelist())
    subpackages = sorted(p.parent.relative_to(ROOT / "plugin")
                         for p in PACKAGE.rglob("__init__.py"))
    assert len(subpackages) >= 8
    for package in subpackages:
        assert f"{package.as_posix()}/__init__.py" in names, package
    modules = {p.relative_to(ROOT / "plugin").as_posix() for p in PACKAGE.rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules <= names, sorted(modules - names)
    assert "consent_gap/__main__.py" in names


def test_the_wheel_holds_the_mappings_templates_static_files_and_migrations(wheel):
    names = set(wheel.namelist())
    tables = {f"consent_gap/mappings_data/{p.relative_to(ROOT / 'mappings').as_posix()}"
              for p in (ROOT / "mappings").rglob("*.toml")}
    assert tables and tables <= names, sorted(tables - names)
    for folder in ("templates", "static"):
        files = {f"consent_gap/web/{folder}/{p.name}"
                 for p in (PACKAGE / "web" / folder).iterdir() if p.is_file()}
        assert files and files <= names, sorted(files - names)
    assert "consent_gap/migrations/env.py" in names
    assert "consent_gap/migrations/script.py.mako" in names
    revisions = {p.name for p in (PACKAGE / "migrations" / "versions").glob("0*.py")}
    assert {f"consent_gap/migrations/versions/{r}" for r in revisions} <= names


def _requirements(wheel) -> list[Requirement]:
    [metadata] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    message = Parser().parsestr(wheel.read(metadata).decode())
    return [Requirement(line) for line in message.get_all("Requires-Dist") or []]


def test_the_dependencies_are_what_the_product_imports(wheel):
    runtime = {r.name.lower() for r in _requirements(wheel) if not r.marker}
    assert {"joserfc", "sqlalchemy", "alembic", "flask", "apscheduler"} <= runtime
    assert "authlib" not in runtime  # only the sandbox's launcher uses it
    assert "python-dateutil" not in runtime
    extras = {r.name.lower() for r in _requirements(wheel)
              if r.marker and "postgresql" in str(r.marker)}
    assert extras == {"psycopg"}
    imported = " ".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    assert "import authlib" not in imported and "from authlib" not in imported
    assert "dateutil" not in imported


def test_the_constraints_pin_every_dependency_within_its_range():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-").replace(".", "-")] = version
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    declared = config["options"]["install_requires"].split("\n")
    declared += config["options.extras_require"]["postgresql"].split("\n")
    for line in filter(None, (item.strip() for item in declared)):
        requirement = Requirement(line)
        key = requirement.name.lower().replace("_", "-").replace(".", "-")
        assert key in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[key]), (requirement, pins[key])


def test_python_dash_m_consent_gap_runs_the_command_line():
    result = subprocess.run([sys.executable, "-m", "consent_gap", "--version"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("consent-gap ")
    result = subprocess.run([sys.executable, "-m", "consent_gap", "keys", "--help"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "rotate" in result.stdout
