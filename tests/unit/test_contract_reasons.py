"""CONTRACT.md section 3: every reason code, once each, in the contract's order: the code the
decision came from, then `no-authorization` when there is no candidate, then each candidate's
reason in candidate order."""

from __future__ import annotations

import pytest
from support.engine import finding
from support.fhir import (
    consent,
    disclosure,
    document,
    instrument,
    nested,
    organization,
    patient,
    practitioner,
    provision,
    related_person,
    restriction,
)


def scene(*extra, purposes=("PATRQT",), labels=("MH",), birth_date="1980-04-01", **ae_kw):
    return [patient(birth_date=birth_date), practitioner(), organization(),
            document(labels=labels), *extra, disclosure(purposes=purposes, **ae_kw)]


def later(ref: str, **kw) -> dict:
    """A second candidate signed after the default one."""
    return consent(ref, date_time="2025-03-01T00:00:00Z", **kw)


SUBPOENA = instrument("DocumentReference/sub", "subpoena")

EVERY_CODE = [
    ("no-authorization", scene(), ["no-authorization"]),
    ("not-an-authorization", scene(consent(policy_rule="hipaa-npp")), ["not-an-authorization"]),
    ("authorization-not-active", scene(consent(status="proposed")),
     ["authorization-not-active"]),
    ("authorization-revoked",
     scene(consent(status="inactive", prov=provision(end="2025-02-01T00:00:00Z"))),
     ["authorization-revoked"]),
    ("authorization-unsigned", scene(consent(signed=False)), ["authorization-unsigned"]),
    ("authorization-not-yet-valid", scene(consent(date_time="2025-12-01T00:00:00Z")),
     ["authorization-not-yet-valid"]),
    ("authorization-expired", scene(consent(prov=provision(end="2025-02-01T00:00:00Z"))),
     ["authorization-expired"]),
    ("authorizer-not-permitted", scene(consent(performers=("Organization/org-rcpt",))),
     ["authorizer-not-permitted"]),
    ("minor-self-authorization", scene(consent(), birth_date="2010-03-01"),
     ["minor-self-authorization"]),
    ("recipient-not-covered", scene(consent(prov=provision(recipients=("Organization/x",)))),
     ["recipient-not-covered"]),
    ("purpose-not-covered", scene(consent(prov=provision(purposes=("HPAYMT",)))),
     ["purpose-not-covered"]),
    ("data-not-covered", scene(consent(prov=provision(labels=("SDV",)))), ["data-not-covered"]),
    ("psychotherapy-notes-need-specific-authorization",
     scene(consent(), labels=("PSYTHPN",)),
     ["psychotherapy-notes-need-specific-authorization"]),
    ("part2-consent-required", scene(consent(), labels=("42CFRPart2",)),
     ["part2-consent-required"]),
    ("denied-by-provision",
     scene(consent(prov=provision(provisions=(nested(labels=("MH",)),)))),
     ["denied-by-provision"]),
    ("authorization-incomplete", scene(consent(prov=provision(end=None))),
     ["authorization-incomplete"]),
    ("restricted-by-patient", scene(restriction(), purposes=("HPAYMT",)),
     ["restricted-by-patient", "not-an-authorization"]),
    ("data-unresolved", scene(purposes=("TREAT",), data=("DocumentReference/gone",)),
     ["data-unresolved", "no-authorization"]),
    ("subpoena-without-court-order",
     scene(SUBPOENA, purposes=("HLEGAL",), instruments=("DocumentReference/sub",)),
     ["subpoena-without-court-order", "no-authorization"]),
    ("legal-review-needed", scene(purposes=("GOV",)), ["legal-review-needed", "no-authorization"]),
    ("family-involvement-review", scene(purposes=("SUPNWK",)),
     ["family-involvement-review", "no-authorization"]),
    ("recipient-not-a-provider",
     scene(related_person(relationship="FRND"), purposes=("COC",), recipient="RelatedPerson/rp1"),
     ["recipient-not-a-provider", "no-authorization"]),
    ("purpose-unmapped", scene(purposes=("HMARKT",)), ["purpose-unmapped", "no-authorization"]),
    ("purpose-missing", scene(purposes=()), ["purpose-missing", "no-authorization"]),
]


@pytest.mark.parametrize(("resources", "reasons"),
                         [pytest.param(r, w, id=i) for i, r, w in EVERY_CODE])
def test_every_reason_code(resources, reasons):
    assert finding(resources)["reasons"] == reasons


ORDER = [
    ("row-code-then-candidates-in-signing-order",
     scene(consent(prov=provision(recipients=("Organization/x",))),
           later("Consent/c0", prov=provision(purposes=("HPAYMT",))), purposes=("GOV",)),
     ["legal-review-needed", "recipient-not-covered", "purpose-not-covered"]),
    ("candidates-by-signing-time-not-by-id",
     scene(consent("Consent/c9", signed=False),
           later("Consent/c0", prov=provision(end="2025-04-01T00:00:00Z"))),
     ["authorization-unsigned", "authorization-expired"]),
    ("each-code-once",
     scene(consent(signed=False), later("Consent/c2", signed=False),
           later("Consent/c3", status="draft")),
     ["authorization-unsigned", "authorization-not-active"]),
    ("narrowing-code-first-then-candidates",
     scene(consent(prov=provision(recipients=("Organization/x",))), purposes=("TREAT",),
           labels=("PSYTHPN",)),
     ["psychotherapy-notes-need-specific-authorization", "recipient-not-covered"]),
    ("restriction-code-first-then-candidates",
     scene(consent(prov=provision(end="2025-02-01T00:00:00Z")),
           restriction(date_time="2025-03-01T00:00:00Z"), purposes=("HOPERAT",)),
     ["restricted-by-patient", "authorization-expired", "not-an-authorization"]),
    ("data-unresolved-first-then-candidates",
     scene(consent(prov=provision(recipients=("Organization/x",))), purposes=("HPAYMT",),
           data=("DocumentReference/gone",)),
     ["data-unresolved", "recipient-not-covered"]),
]


@pytest.mark.parametrize(("resources", "reasons"), [pytest.param(r, w, id=i) for i, r, w in ORDER])
def test_reasons_order(resources, reasons):
    assert finding(resources)["reasons"] == reasons


EMPTY = [
    ("authorized", scene(consent()), "US-CA", "authorized"),
    ("permitted", scene(consent(prov=provision(recipients=("Organization/x",))),
                        purposes=("HPAYMT",)), None, "permitted"),
    ("required", scene(consent(signed=False), purposes=("THREAT",)), "US-CA", "required"),
]


@pytest.mark.parametrize(("resources", "jurisdiction", "decision"),
                         [pytest.param(r, j, d, id=i) for i, r, j, d in EMPTY])
def test_no_reasons_when_covered(resources, jurisdiction, decision):
    """Empty even when candidates failed: reasons belong to unauthorized and review only."""
    got = finding(resources, jurisdiction)
    assert (got["decision"], got["reasons"]) == (decision, [])
