"""The few direct reads the launcher's own pages make on HAPI (patient lists, a chart header).

These calls bypass the proxy: they are the EHR reading its own database.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import requests

#: a FHIR id (R4: 1-64 of A-Z a-z 0-9 - .)
_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")

log = logging.getLogger("smart_launcher.upstream")
TIMEOUT = 10


@dataclass(frozen=True)
class PatientSummary:
    """What the chart header and the pickers show of a Patient."""

    id: str
    name: str
    gender: str
    birth_date: str
    state: str


def summarize(patient: dict[str, Any]) -> PatientSummary:
    names = patient.get("name") or [{}]
    first = names[0] if isinstance(names[0], dict) else {}
    text = first.get("text") or " ".join([*first.get("given", []), first.get("family", "")]).strip()
    addresses = patient.get("address") or [{}]
    state = addresses[0].get("state", "") if isinstance(addresses[0], dict) else ""
    return PatientSummary(
        id=str(patient.get("id", "")),
        name=text or "(no name)",
        gender=str(patient.get("gender", "")),
        birth_date=str(patient.get("birthDate", "")),
        state=str(state),
    )


class Upstream:
    """Reads on the upstream FHIR server for the launcher's pages."""

    def __init__(self, base: str, http: requests.Session) -> None:
        self.base = base.rstrip("/")
        self.http = http

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        response = self.http.get(
            f"{self.base}/{path}",
            params=params,
            headers={"Accept": "application/fhir+json"},
            timeout=TIMEOUT,
        )
        if response.status_code in (404, 410):
            return None
        response.raise_for_status()
        return response.json()

    def list_patients(self, name: str | None = None, count: int = 50) -> list[PatientSummary]:
        """The picker's patients: those whose name matches (by family name, at most `count`)
        and, first, the one whose id is exactly what was typed, as an EHR's picker finds a
        chart by its number however many share the name."""
        params: dict[str, Any] = {"_count": count, "_sort": "family"}
        if name:
            params["name"] = name
        bundle = self._get("Patient", params) or {}
        found = [summarize(e["resource"]) for e in bundle.get("entry", []) if "resource" in e]
        if name and _ID_RE.fullmatch(name.strip()):
            exact = self._get("Patient", {"_id": name.strip()}) or {}
            first = [summarize(e["resource"]) for e in exact.get("entry", []) if "resource" in e]
            found = first + [p for p in found if p.id not in {f.id for f in first}]
        return found

    def get_patient(self, patient_id: str) -> PatientSummary | None:
        resource = self._get(f"Patient/{patient_id}")
        return summarize(resource) if resource else None

    def latest_encounter(self, patient_id: str) -> str | None:
        bundle = (
            self._get("Encounter", {"patient": patient_id, "_sort": "-date", "_count": 1}) or {}
        )
        entries = bundle.get("entry") or []
        return str(entries[0]["resource"]["id"]) if entries else None

    def ensure_practitioner(self, practitioner_id: str, display: str) -> bool:
        """Create the sandbox user's Practitioner (client-assigned id) if it does not exist, so an
        app can read its `fhirUser`. Best effort: a failure is logged (False); the launch goes
        on."""
        try:
            if self._get(f"Practitioner/{practitioner_id}") is not None:
                return True
            *given, family = display.split() or ["Sandbox"]
            resource = {
                "resourceType": "Practitioner",
                "id": practitioner_id,
                "active": True,
                "name": [{"family": family, "given": given}],
            }
            response = self.http.put(
                f"{self.base}/Practitioner/{practitioner_id}",
                json=resource,
                headers={"Content-Type": "application/fhir+json"},
                timeout=TIMEOUT,
            )
            response.raise_for_status()
            log.info("created Practitioner/%s for the sandbox user", practitioner_id)
            return True
        except (requests.RequestException, ValueError) as exc:
            log.warning("could not ensure Practitioner/%s: %s", practitioner_id, type(exc).__name__)
            return False
