"""CONTRACT.md 1.3, row by row: the exception table when no Consent covers a disclosure, the
request codes, "strictest wins" and where the basis comes from, legal instruments, and the
narrowing for psychotherapy notes and 42 CFR Part 2.

Unless a row adds one, there is no candidate Consent, so every `unauthorized`/`review` finding
ends with `no-authorization` after the row's own code (section 3).
"""

from __future__ import annotations

import pytest
from support.engine import expect, finding
from support.fhir import (
    DATA,
    PATIENT,
    RECIPIENT,
    US_PRIVACY_LAW,
    consent,
    disclosure,
    document,
    instrument,
    organization,
    patient,
    practitioner,
    provision,
    related_person,
)

MINOR = "2010-03-01"
AGE_18 = "2006-07-01"
TURNS_18 = "2007-03-01"  # 18 at the 2025-06-01 disclosure, 17 before 2025-03-01

PRACTITIONER = "Practitioner/pr-b"
ROLE = "PractitionerRole/role-b"
RP = "RelatedPerson/rp1"


def scene(purposes=("PATRQT",), *, recipient: str | None = RECIPIENT,
          recipient_identifier=None, relationship: str | None = None,
          instruments: dict[str, str | None] | None = None, labels=("MH",),
          birth_date="1980-04-01", consents=(), ae_kw=None) -> list[dict]:
    """One disclosure of the default document for `purposes` to `recipient`.

    `instruments` maps a legal-instrument kind to its date (None: undated); `relationship`
    adds RelatedPerson/rp1 with that RoleCode.
    """
    inst = [instrument(f"DocumentReference/inst-{i}", kind, date)
            for i, (kind, date) in enumerate((instruments or {}).items())]
    res = [patient(birth_date=birth_date), practitioner(), practitioner(PRACTITIONER),
           {"resourceType": "PractitionerRole", "id": "role-b",
            "practitioner": {"reference": PRACTITIONER}},
           organization(), document(labels=labels), *inst, *consents]
    if relationship:
        res.append(related_person(RP, relationship))
    res.append(disclosure(purposes=purposes, recipient=recipient,
                          recipient_identifier=recipient_identifier,
                          instruments=[f"DocumentReference/{r['id']}" for r in inst],
                          **(ae_kw or {})))
    return res


def perm(basis: str, accountable: bool = False, breaking: bool = False) -> dict:
    """`permitted`; `breaking` = a 1.4 row (emergency treatment, serious threat), which here has
    neither documentation nor notice."""
    doc = "missing" if breaking else "not-required"
    return {"decision": "permitted", "basis": basis, "reasons": [], "accountable": accountable,
            "documentation": doc, "client_notice": doc}


def req(basis: str) -> dict:
    return {"decision": "required", "basis": basis, "reasons": [], "accountable": True,
            "documentation": "missing", "client_notice": "missing"}


def rev(*codes: str, candidates: bool = False) -> dict:
    tail = [] if candidates else ["no-authorization"]
    return {"decision": "review", "basis": None, "reasons": [*codes, *tail],
            "accountable": True, "documentation": "not-required",
            "client_notice": "not-required"}


def unauth(*codes: str, candidates: bool = False) -> dict:
    tail = [] if candidates else ["no-authorization"]
    return {"decision": "unauthorized", "basis": None, "reasons": [*codes, *tail],
            "accountable": True, "documentation": "not-required",
            "client_notice": "not-required"}


ACCESS = perm("hipaa-164.524-access")
TREATMENT = perm("hipaa-164.506-treatment")
PAYMENT = perm("hipaa-164.506-payment")
OPERATIONS = perm("hipaa-164.506-operations")
EMERGENCY = perm("hipaa-164.506-emergency-treatment", breaking=True)
SERIOUS_THREAT = perm("hipaa-164.512(j)-serious-threat", accountable=True, breaking=True)
DUTY = req("duty-to-warn-or-protect")
ABUSE = req("abuse-report")
COURT = req("hipaa-164.512(e)-court-order")
BEFORE = "2025-05-01T00:00:00Z"
AFTER = "2025-07-01T00:00:00Z"

ROWS = [
    # --- first row: the patient or someone who may sign for them --------------------------
    ("access-patient-PATRQT", scene(recipient=PATIENT), None, ACCESS),
    ("access-patient-no-purpose", scene((), recipient=PATIENT), None, ACCESS),
    ("access-patient-before-every-purpose-row",
     scene(("HLEGAL",), recipient=PATIENT, instruments={"subpoena": BEFORE}), None, ACCESS),
    ("access-patient-THREAT-not-a-1.4-row", scene(("THREAT",), recipient=PATIENT), "US-CA",
     ACCESS),
    ("access-guardian", scene(recipient=RP, relationship="GUARD"), None, ACCESS),
    ("access-health-care-power-of-attorney", scene(recipient=RP, relationship="HPOWATT"), None,
     ACCESS),
    *[(f"access-{rel}-of-minor", scene(recipient=RP, relationship=rel, birth_date=MINOR), None,
       ACCESS) for rel in ("PRN", "MTH", "FTH")],
    ("not-access-parent-of-adult", scene(recipient=RP, relationship="PRN"), None,
     unauth()),
    ("not-access-parent-once-patient-is-adult-at-the-time",
     scene(recipient=RP, relationship="MTH", birth_date=TURNS_18), None, unauth()),
    ("access-parent-of-18-year-old-in-AL",
     scene(recipient=RP, relationship="PRN", birth_date=AGE_18), "US-AL", ACCESS),
    ("not-access-guardian-of-another-patient",
     [*scene(recipient=RP)[:-1], related_person(RP, "GUARD", patient_ref="Patient/p2"),
      patient("Patient/p2"), disclosure(recipient=RP)], None, unauth()),
    ("not-access-another-patient",
     [*scene(("TREAT",), recipient="Patient/p2")[:-1], patient("Patient/p2"),
      disclosure(purposes=("TREAT",), recipient="Patient/p2")], None,
     rev("recipient-not-a-provider")),
    ("not-access-sibling", scene(("FAMRQT",), recipient=RP, relationship="SIB"), None,
     rev("family-involvement-review")),
    # --- treatment -------------------------------------------------------------------------
    ("TREAT-to-practitioner", scene(("TREAT",), recipient=PRACTITIONER), None, TREATMENT),
    ("TREAT-to-practitioner-role", scene(("TREAT",), recipient=ROLE), None, TREATMENT),
    ("TREAT-to-organization", scene(("TREAT",)), None, TREATMENT),
    ("COC-to-organization", scene(("COC",)), None, TREATMENT),
    ("COC-to-practitioner", scene(("COC",), recipient=PRACTITIONER), None, TREATMENT),
    ("TREAT-to-related-person", scene(("TREAT",), recipient=RP, relationship="FRND"), None,
     rev("recipient-not-a-provider")),
    ("COC-to-identifier-only",
     scene(("COC",), recipient=None, recipient_identifier=("urn:x", "1")), None,
     rev("recipient-not-a-provider")),
    # --- payment, operations, emergency ----------------------------------------------------
    *[(f"{p}-payment", scene((p,)), None, PAYMENT)
      for p in ("HPAYMT", "CLMATTCH", "COVAUTH", "COVERAGE")],
    *[(f"{p}-operations", scene((p,)), None, OPERATIONS) for p in ("HOPERAT", "TRAIN")],
    *[(f"{p}-emergency", scene((p,)), None, EMERGENCY) for p in ("ETREAT", "ERTREAT")],
    # --- threat ----------------------------------------------------------------------------
    ("THREAT-mandatory-state-CA", scene(("THREAT",)), "US-CA", DUTY),
    ("THREAT-permissive-state-TX", scene(("THREAT",)), "US-TX", SERIOUS_THREAT),
    ("THREAT-no-duty-state-AR", scene(("THREAT",)), "US-AR", SERIOUS_THREAT),
    ("THREAT-no-jurisdiction", scene(("THREAT",)), None, SERIOUS_THREAT),
    # --- public health ---------------------------------------------------------------------
    ("PUBHLTH-abuse-report", scene(("PUBHLTH",)), None, ABUSE),
    # --- legal -----------------------------------------------------------------------------
    *[(f"HLEGAL-{k}", scene(("HLEGAL",), instruments={k: BEFORE}), None, COURT)
      for k in ("court-order", "warrant", "part2-court-order")],
    ("HLEGAL-court-order-and-subpoena",
     scene(("HLEGAL",), instruments={"court-order": BEFORE, "subpoena": BEFORE}), None, COURT),
    ("HLEGAL-subpoena-and-satisfactory-assurance",
     scene(("HLEGAL",), instruments={"subpoena": BEFORE, "satisfactory-assurance": BEFORE}),
     None, rev("legal-review-needed")),
    ("HLEGAL-administrative-request",
     scene(("HLEGAL",), instruments={"administrative-request": BEFORE}), None,
     rev("legal-review-needed")),
    ("HLEGAL-subpoena-only", scene(("HLEGAL",), instruments={"subpoena": BEFORE}), None,
     unauth("subpoena-without-court-order")),
    ("HLEGAL-no-instrument", scene(("HLEGAL",)), None, rev("legal-review-needed")),
    ("HLEGAL-satisfactory-assurance-alone-is-no-instrument",
     scene(("HLEGAL",), instruments={"satisfactory-assurance": BEFORE}), None,
     rev("legal-review-needed")),
    ("HLEGAL-court-order-dated-after-is-data",
     scene(("HLEGAL",), instruments={"court-order": AFTER}), None, rev("legal-review-needed")),
    ("HLEGAL-court-order-undated-is-data",
     scene(("HLEGAL",), instruments={"court-order": None}), None, rev("legal-review-needed")),
    ("HLEGAL-court-order-dated-at-the-disclosure",
     scene(("HLEGAL",), instruments={"court-order": "2025-06-01T10:00:00Z"}), None, COURT),
    ("HLEGAL-instrument-code-in-another-system-is-data",
     [*scene(("HLEGAL",))[:-1],
      {**instrument("DocumentReference/inst-x", "court-order"),
       "type": {"coding": [{"system": "urn:local:instrument", "code": "court-order"}]}},
      disclosure(purposes=("HLEGAL",), instruments=("DocumentReference/inst-x",))],
     None, rev("legal-review-needed")),
    ("HLEGAL-subpoena-dated-after-is-data",
     scene(("HLEGAL",), instruments={"subpoena": AFTER}), None, rev("legal-review-needed")),
    # --- government, family, requests, the rest -------------------------------------------
    ("GOV", scene(("GOV",)), None, rev("legal-review-needed")),
    *[(p, scene((p,)), None, rev("family-involvement-review"))
      for p in ("FAMRQT", "SUPNWK", "PWATRNY")],
    ("PATRQT", scene(("PATRQT",)), None, unauth()),
    *[(f"unmapped-{p}", scene((p,)), None, rev("purpose-unmapped"))
      for p in ("HRESCH", "HMARKT", "HCOMPL", "LEGAL", "DISASTER")],
    ("no-purpose", scene(()), None, rev("purpose-missing")),
    ("only-non-ActReason-purpose",
     scene((), ae_kw={"other_purposes": ({"system": "urn:local", "code": "TREAT"},)}), None,
     rev("purpose-missing")),
    # --- request codes ignored beside another purpose --------------------------------------
    ("request-PATRQT-beside-TREAT", scene(("PATRQT", "TREAT"), recipient=PRACTITIONER), None,
     TREATMENT),
    ("request-FAMRQT-beside-HPAYMT", scene(("FAMRQT", "HPAYMT")), None, PAYMENT),
    ("request-SUPNWK-after-TREAT", scene(("TREAT", "SUPNWK")), None, TREATMENT),
    ("request-PWATRNY-beside-GOV", scene(("PWATRNY", "GOV")), None,
     rev("legal-review-needed")),
    ("request-codes-alone-strictest", scene(("FAMRQT", "PATRQT")), None, unauth()),
    # --- strictest wins; basis from the first listed purpose whose row won -----------------
    ("strictest-unauthorized-over-permitted",
     scene(("TREAT", "HLEGAL"), instruments={"subpoena": BEFORE}), None,
     unauth("subpoena-without-court-order")),
    ("strictest-review-over-permitted", scene(("HPAYMT", "GOV")), None,
     rev("legal-review-needed")),
    ("strictest-review-over-required", scene(("PUBHLTH", "GOV")), None,
     rev("legal-review-needed")),
    ("strictest-required-over-permitted", scene(("TREAT", "THREAT")), "US-CA", DUTY),
    ("strictest-required-over-permitted-2", scene(("HOPERAT", "PUBHLTH")), None, ABUSE),
    ("basis-first-listed-payment", scene(("HPAYMT", "TREAT")), None, PAYMENT),
    ("basis-first-listed-treatment", scene(("TREAT", "HPAYMT")), None, TREATMENT),
    # the basis is the first purpose's, but documentation is owed: a winning row breaks
    # confidentiality (CONTRACT 1.3, 1.4: any winning row)
    ("basis-first-listed-operations-over-emergency", scene(("HOPERAT", "ETREAT")), None,
     {**OPERATIONS, "documentation": "missing", "client_notice": "missing"}),
    ("basis-first-listed-emergency-over-operations", scene(("ETREAT", "HOPERAT")), None,
     EMERGENCY),
    ("basis-first-listed-abuse-report", scene(("PUBHLTH", "THREAT")), "US-CA", ABUSE),
    ("basis-first-listed-duty-to-warn", scene(("THREAT", "PUBHLTH")), "US-CA", DUTY),
    ("reason-first-listed-review-row-GOV", scene(("GOV", "HRESCH")), None,
     {"decision": "review", "basis": None, "reasons_first": "legal-review-needed"}),
    ("reason-first-listed-review-row-HRESCH", scene(("HRESCH", "GOV")), None,
     {"decision": "review", "basis": None, "reasons_first": "purpose-unmapped"}),
    # --- instruments are not data disclosed (check 9 of a covering Consent) ----------------
    ("instrument-before-is-not-data",
     scene(("HLEGAL",), instruments={"court-order": BEFORE},
           consents=[consent(prov=provision(purposes=("HLEGAL",), labels=("MH",)))]), None,
     {"decision": "authorized", "basis": "Consent/c1", "reasons": [], "accountable": False}),
    ("instrument-after-is-data",
     scene(("HLEGAL",), instruments={"court-order": AFTER},
           consents=[consent(prov=provision(purposes=("HLEGAL",), labels=("MH",)))]), None,
     rev("legal-review-needed", "data-not-covered", candidates=True)),
]


# --- narrowing: psychotherapy notes ---------------------------------------------------------

PSY = "psychotherapy-notes-need-specific-authorization"
PSY_ROWS = [
    ("psy-THREAT-CA-stands", scene(("THREAT",), labels=("PSYTHPN",)), "US-CA", DUTY),
    ("psy-THREAT-TX-stands", scene(("THREAT",), labels=("PSYTHPN",)), "US-TX", SERIOUS_THREAT),
    ("psy-court-order-stands",
     scene(("HLEGAL",), labels=("PSYTHPN",), instruments={"court-order": BEFORE}), None, COURT),
    ("psy-warrant-stands",
     scene(("HLEGAL",), labels=("PSYTHPN",), instruments={"warrant": BEFORE}), None, COURT),
    ("psy-PUBHLTH-becomes-review", scene(("PUBHLTH",), labels=("PSYTHPN",)), None, rev(PSY)),
    ("psy-first-row-becomes-review", scene(recipient=PATIENT, labels=("PSYTHPN",)), None,
     rev(PSY)),
    ("psy-first-row-guardian-becomes-review",
     scene(recipient=RP, relationship="GUARD", labels=("HIPAAPsyNotes",)), None, rev(PSY)),
    *[(f"psy-{p}-becomes-unauthorized", scene((p,), labels=("PSYTHPN",)), None, unauth(PSY))
      for p in ("TREAT", "HPAYMT", "HOPERAT", "ETREAT", "GOV", "FAMRQT", "HRESCH")],
    ("psy-no-purpose-becomes-unauthorized", scene((), labels=("PSYTHPN",)), None, unauth(PSY)),
    ("psy-HLEGAL-no-instrument-becomes-unauthorized", scene(("HLEGAL",), labels=("PSYTHPN",)),
     None, unauth(PSY)),
    ("psy-HLEGAL-administrative-request-becomes-unauthorized",
     scene(("HLEGAL",), labels=("PSYTHPN",), instruments={"administrative-request": BEFORE}),
     None, unauth(PSY)),
    # each purpose's row is narrowed first, then the strictest wins
    ("psy-THREAT-stands-but-TREAT-narrowed-wins", scene(("THREAT", "TREAT"), labels=("PSYTHPN",)),
     "US-CA", unauth(PSY)),
    ("psy-request-code-ignored-then-THREAT-stands",
     scene(("PATRQT", "THREAT"), labels=("PSYTHPN",)), "US-CA", DUTY),
    ("psy-PUBHLTH-review-beside-court-order",
     scene(("PUBHLTH", "HLEGAL"), labels=("PSYTHPN",), instruments={"court-order": BEFORE}),
     None, rev(PSY)),
    ("psy-label-in-uslaw-system",
     scene(("TREAT",), labels=((US_PRIVACY_LAW, "HIPAAPsyNotes"),)), None, unauth(PSY)),
]

# --- narrowing: 42 CFR Part 2 ---------------------------------------------------------------

P2 = "part2-consent-required"
PART2_ROWS = [
    ("part2-first-row-stands", scene(recipient=PATIENT, labels=("42CFRPart2",)), None, ACCESS),
    ("part2-ETREAT-stands", scene(("ETREAT",), labels=("42CFRPart2",)), None, EMERGENCY),
    ("part2-ERTREAT-stands", scene(("ERTREAT",), labels=("42CFRPart2",)), None, EMERGENCY),
    ("part2-PUBHLTH-stands", scene(("PUBHLTH",), labels=("42CFRPart2",)), None, ABUSE),
    ("part2-court-order-stands",
     scene(("HLEGAL",), labels=("42CFRPart2",), instruments={"part2-court-order": BEFORE}),
     None, COURT),
    ("part2-plain-court-order-becomes-review",
     scene(("HLEGAL",), labels=("42CFRPart2",), instruments={"court-order": BEFORE}), None,
     rev(P2)),
    ("part2-warrant-becomes-review",
     scene(("HLEGAL",), labels=("42CFRPart2",), instruments={"warrant": BEFORE}), None,
     rev(P2)),
    *[(f"part2-{p}-becomes-unauthorized", scene((p,), labels=("42CFRPart2",)), "US-CA",
       unauth(P2)) for p in ("TREAT", "COC", "HPAYMT", "HOPERAT", "THREAT", "GOV", "FAMRQT",
                             "HRESCH")],
    ("part2-THREAT-TX-becomes-unauthorized", scene(("THREAT",), labels=("42CFRPart2",)),
     "US-TX", unauth(P2)),
    ("part2-HLEGAL-no-instrument-becomes-unauthorized",
     scene(("HLEGAL",), labels=("42CFRPart2",)), None, unauth(P2)),
    ("part2-no-purpose-becomes-unauthorized", scene((), labels=("42CFRPart2",)), None,
     unauth(P2)),
    ("part2-ETREAT-stands-but-HPAYMT-narrowed-wins",
     scene(("ETREAT", "HPAYMT"), labels=("42CFRPart2",)), None, unauth(P2)),
    ("part2-PUBHLTH-stands-but-THREAT-narrowed-wins",
     scene(("PUBHLTH", "THREAT"), labels=("42CFRPart2",)), "US-CA", unauth(P2)),
    ("part2-covered-by-a-part2-consent-is-authorized-and-accountable",
     scene(("TREAT",), labels=("42CFRPart2",),
           consents=[consent(prov=provision(purposes=("TREAT",), labels=("42CFRPart2",)))]),
     None, {"decision": "authorized", "basis": "Consent/c1", "reasons": [],
            "accountable": True}),
    ("psy-covered-by-a-psy-consent-is-authorized",
     scene(("TREAT",), labels=("PSYTHPN",),
           consents=[consent(prov=provision(purposes=("TREAT",), labels=("PSYTHPN",)))]),
     None, {"decision": "authorized", "basis": "Consent/c1", "reasons": [],
            "accountable": False}),
    ("part2-label-in-uslaw-system",
     scene(("TREAT",), labels=((US_PRIVACY_LAW, "42CFRPart2"),)), None, unauth(P2)),
    ("part2-label-on-entity-only",
     scene(("TREAT",), labels=("MH",), ae_kw={"entity_labels": {DATA: ("42CFRPart2",)}}),
     None, unauth(P2)),
    ("SUD-label-alone-is-not-part2", scene(("TREAT",), labels=("SUD",)), None, TREATMENT),
]


@pytest.mark.parametrize(("resources", "jurisdiction", "want"),
                         [pytest.param(r, j, w, id=i) for i, r, j, w in ROWS])
def test_exception_rows(resources, jurisdiction, want):
    expect(finding(resources, jurisdiction), **want)


@pytest.mark.parametrize(("resources", "jurisdiction", "want"),
                         [pytest.param(r, j, w, id=i) for i, r, j, w in PSY_ROWS + PART2_ROWS])
def test_narrowing_rows(resources, jurisdiction, want):
    expect(finding(resources, jurisdiction), **want)
