"""`consent-gap accounting --fhir-base` against the live HAPI server: every example chart is
loaded under ids of its own, read back with the project's fetch plan (with the parties its
disclosures name), and must give exactly the accounting the same chart gives offline: the same
entries, names and addresses; the window cut at its end; an unknown patient exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from consent_gap.cli import main
from support.fhir import renamed

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "examples"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
AS_OF = "2026-12-02T00:00:00Z"


def _examples() -> list[tuple[str, str | None]]:
    out = []
    for path in sorted(EXAMPLES.glob("[0-9][0-9]-*.expected.json")):
        name = path.name.removesuffix(".expected.json")
        out.append((name, json.loads(path.read_text()).get("jurisdiction")))
    return out


@pytest.fixture(scope="module")
def charts(fhir_base: str, run_id: str) -> dict[str, tuple[list[dict], str, str | None]]:
    """Each example loaded under its own suffix: name -> (its resources as loaded, patient
    id, jurisdiction)."""
    loaded: dict[str, tuple[list[dict], str, str | None]] = {}
    entries = []
    for name, jurisdiction in _examples():
        own = f"{run_id}x{name[:2]}"
        resources = []
        for entry in json.loads((EXAMPLES / f"{name}.json").read_text())["entry"]:
            resource = renamed(entry["resource"], own)
            resource["id"] = f"{resource['id']}-{own}"
            resources.append(resource)
        patient = next(r["id"] for r in resources if r["resourceType"] == "Patient")
        loaded[name] = (resources, patient, jurisdiction)
        entries += [{"resource": r, "request": {"method": "PUT",
                                                "url": f"{r['resourceType']}/{r['id']}"}}
                    for r in resources]
    response = requests.post(fhir_base, json={"resourceType": "Bundle", "type": "transaction",
                                              "entry": entries}, headers=FHIR_JSON, timeout=300)
    assert response.status_code == 200, response.text[:1000]
    return loaded


def _accounting(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(["accounting", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


@pytest.mark.parametrize("name", [name for name, _ in _examples()])
def test_the_server_gives_the_accounting_the_chart_gives_offline(
        name, charts, fhir_base, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CONSENT_GAP_CONFIG", raising=False)
    monkeypatch.setenv("CONSENT_GAP_AUTH", "none")
    resources, patient, jurisdiction = charts[name]
    where = ["--jurisdiction", jurisdiction] if jurisdiction else []
    chart = tmp_path / "chart.json"
    chart.write_text(json.dumps(resources))
    code, offline, err = _accounting(capsys, str(chart), "--patient", patient,
                                     "--as-of", AS_OF, *where)
    assert code == 0, err
    code, live, err = _accounting(capsys, "--fhir-base", fhir_base, "--patient", patient,
                                  "--as-of", AS_OF, *where)
    assert code == 0, err
    assert live == offline
    for entry in live["entries"]:  # the names came from the server's resources
        reference = entry["recipient"]["reference"]
        if reference and reference.split("/")[0] in ("Organization", "Practitioner",
                                                     "RelatedPerson"):
            assert entry["recipient"]["name"], entry


def test_the_window_cuts_on_the_server_too(charts, fhir_base, capsys, monkeypatch):
    monkeypatch.setenv("CONSENT_GAP_AUTH", "none")
    _, patient, jurisdiction = charts["06-duty-to-warn-ca"]
    base = ["--fhir-base", fhir_base, "--patient", f"Patient/{patient}",
            "--jurisdiction", str(jurisdiction)]
    code, both, err = _accounting(capsys, *base, "--as-of", "2025-09-03T22:25:00Z")
    assert code == 0, err
    assert [e["disclosure"].split("/")[1].split("-")[2] for e in both["entries"]] == [
        "police", "victim"]
    code, one, _ = _accounting(capsys, *base, "--as-of", "2025-09-03T22:24:59Z")
    assert [e["recipient"]["name"] for e in one["entries"]] == [
        "Alden Valley Police Department"]
    code, summary, _ = _accounting(capsys, *base, "--as-of", "2031-09-03T22:10:00Z",
                                   "--summarize")
    assert [(e["count"], e["first"]) for e in summary["entries"]] == [(1, "2025-09-03")] * 2


def test_an_unknown_patient_on_the_server_is_exit_2(fhir_base, run_id, capsys, monkeypatch):
    monkeypatch.setenv("CONSENT_GAP_AUTH", "none")
    code, _, err = _accounting(capsys, "--fhir-base", fhir_base, "--patient",
                               f"nobody-{run_id}")
    assert code == 2
    assert err.count("\n") == 1 and f"no patient Patient/nobody-{run_id}" in err


def test_backend_services_through_the_launcher(charts, proxy_base, capsys, monkeypatch):
    """The scan's authorization for real: discovery on the proxy's base, a private_key_jwt
    assertion with the key the launcher registered, system/ scopes enforced by the proxy (the
    recipients' Organization and Practitioner reads included)."""
    key = Path(__file__).parents[2] / "sandbox" / "var" / "keys" / "consent-gap-scan.pem"
    if not key.exists():
        pytest.fail(f"{key} is missing: the launcher creates it on its first start")
    monkeypatch.delenv("CONSENT_GAP_CONFIG", raising=False)
    monkeypatch.setenv("CONSENT_GAP_PRIVATE_KEY", str(key))
    monkeypatch.setenv("CONSENT_GAP_CLIENT_ID", "consent-gap-scan")
    resources, patient, jurisdiction = charts["10-court-order"]
    practice = next(r for r in resources if r["resourceType"] == "Organization"
                    and r["id"].startswith("org-cedar-hollow"))
    monkeypatch.setenv("CONSENT_GAP_ORGANIZATION", f"Organization/{practice['id']}")
    code, got, err = _accounting(capsys, "--fhir-base", proxy_base, "--auth", "backend",
                                 "--patient", patient, "--as-of", AS_OF,
                                 "--jurisdiction", str(jurisdiction))
    assert code == 0, err
    (entry,) = got["entries"]
    assert entry["recipient"]["name"] == "Superior Court of California, County of Alden"
    assert entry["request"].startswith("DocumentReference/dr-cnakamura-order")
    html_code = main(["accounting", "--fhir-base", proxy_base, "--auth", "backend",
                      "--patient", patient, "--as-of", AS_OF, "--format", "html"])
    html = capsys.readouterr().out
    assert html_code == 0 and "Cedar Hollow Counseling Associates" in html
