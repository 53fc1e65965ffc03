"""One client per scenario of "New disclosure" (CONTRACT 6.4), to try the guide on.

Each is a Californian client of Sacramento Counseling Associates with no disclosure yet: a
progress note to share, and what the scenario needs (the intended victim, a parent, the
subpoena, the court order). Recipients come from the shared directory (police, CPS, APS,
courts, law firms, payers, outside providers, the supervisor). Ids are `p-guide-<scenario>`
(plus a suffix for tests, so a test's data never meets the demo's); loading twice changes
nothing (PUT at client ids).

    .venv/bin/python -m sandbox.data.guide_clients --load http://127.0.0.1:8080/fhir
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

import requests

from . import fhirbuild as fb
from .output import transaction

Json = fb.Json
WHEN = dt.datetime(2026, 11, 2, 16, 0, tzinfo=dt.UTC)
THERAPIST = "Practitioner/pr-ca-1"
#: scenario: (given name, birth date, extra builder)
CLIENTS = {
    "suicidal-ideation-no-plan": ("Rowan", dt.date(1990, 3, 14)),
    "suicide-risk-imminent": ("Marisol", dt.date(1986, 7, 2)),
    "threat-to-person": ("Dorian", dt.date(1979, 11, 23)),
    "child-abuse": ("Kit", dt.date(2011, 5, 9)),
    "elder-or-dependent-adult-abuse": ("Harriet", dt.date(1958, 1, 30)),
    "subpoena": ("Ezra", dt.date(1983, 9, 17)),
    "court-order": ("Noor", dt.date(1992, 4, 4)),
    "client-request": ("Jules", dt.date(1988, 12, 1)),
    "emergency": ("Tamsin", dt.date(1995, 6, 21)),
    "treatment-coordination": ("Ines", dt.date(1975, 8, 8)),
    "billing": ("Otto", dt.date(1969, 2, 27)),
    "consultation-or-supervision": ("Priya", dt.date(1998, 10, 12)),
}


def patient_id(scenario: str, suffix: str = "") -> str:
    return f"p-guide-{scenario}{suffix}"


def client(scenario: str, suffix: str = "") -> list[Json]:
    """The resources of the client for one scenario."""
    given, birth = CLIENTS[scenario]
    pid = patient_id(scenario, suffix)
    resources = [
        fb.patient(pid, f"MRN-G-{scenario[:12]}{suffix}", "Guidewell", given,
                   "other", birth, fb.address("CA", "Sacramento", "77 Guide Lane", "95818")),
        fb.document(f"dr-{pid}-note", pid, WHEN,
                    fb.concept(fb.LOINC, "11506-3", "Progress note"), "Progress note",
                    ["R", "MH"], THERAPIST, description="Progress note, last session",
                    content_type="text/plain"),
    ]
    if scenario == "threat-to-person":
        resources.append(fb.related_person(
            f"rp-{pid}-target", pid, "Ashgrove", "Lena",
            fb.concept(fb.ROLE_CODE, "NBOR", "neighbor")))
    if scenario in ("suicide-risk-imminent", "child-abuse"):
        resources.append(fb.related_person(
            f"rp-{pid}-mother", pid, "Guidewell", "Mara",
            fb.concept(fb.ROLE_CODE, "MTH", "mother")))
    if scenario == "subpoena":
        resources.append(fb.document(
            f"dr-{pid}-subpoena", pid, WHEN - dt.timedelta(days=3),
            fb.concept(fb.LEGAL_INSTRUMENT, "subpoena", "Subpoena"),
            "Deposition subpoena for records", [], None,
            description="Attorney-issued subpoena; no court order"))
    if scenario == "court-order":
        resources.append(fb.document(
            f"dr-{pid}-order", pid, WHEN - dt.timedelta(days=3),
            fb.concept(fb.LEGAL_INSTRUMENT, "court-order", "Court order"),
            "Order to produce records", [], None,
            description="Order of the Sacramento County Superior Court"))
    return resources


def resources(suffix: str = "") -> list[Json]:
    return [r for scenario in CLIENTS for r in client(scenario, suffix)]


def load(base: str, suffix: str = "", session: requests.Session | None = None) -> int:
    """PUT every guide client into the server at `base`; the number of resources."""
    http = session or requests.Session()
    items = resources(suffix)
    response = http.post(base.rstrip("/"), data=json.dumps(transaction(items)), timeout=60,
                         headers={"Content-Type": "application/fhir+json",
                                  "Accept": "application/fhir+json"})
    response.raise_for_status()
    return len(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", metavar="BASE", required=True, help="FHIR base URL")
    parser.add_argument("--suffix", default="", help="added to every id (tests)")
    args = parser.parse_args(argv)
    try:
        count = load(args.load, args.suffix)
    except requests.RequestException as error:
        print(f"guide clients: not loaded: {error}", file=sys.stderr)
        return 1
    print(f"guide clients: {len(CLIENTS)} clients ({count} resources) loaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
