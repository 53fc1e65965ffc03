"""Builders for FHIR JSON answers and a stand-in for time.sleep, for the contract tests."""

from __future__ import annotations

BASE = "http://fhir.test/fhir"


def bundle(resources, next_url=None, btype="searchset"):
    """A searchset Bundle holding `resources`, with a next link when given."""
    links = [{"relation": "self", "url": BASE}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": btype,
        "link": links,
        "entry": [{"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r}
                  for r in resources],
    }


def outcome(text, severity="error", code="processing"):
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": text}]}


class SleepRecorder:
    """Stands in for time.sleep: records the waits instead of waiting."""

    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
