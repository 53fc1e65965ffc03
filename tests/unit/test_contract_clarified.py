"""CONTRACT.md 1.1-1.3 and 3 as clarified (issue 12), row by row.

Each table pins one clarified paragraph: References (what resolves, identifiers), a Consent with
no provision, reasons for every winning purpose, `action` entries read together, denies beneath
the covering permit only, restrictions in force at the disclosure, the near miss on the reason's
path, accountability and documentation from any winning row, and the rules that were already
right (unknown age, co-signers, Part 2 court orders, restrictions yielding to emergencies).
The default scene is test_contract_authorization's: an adult patient, an MH-labelled document
sent to an Organization for PATRQT, one complete signed Consent `c1` that covers it.
"""

from __future__ import annotations

import copy

import pytest
from consent_gap.evaluate import evaluate
from support.engine import expect
from support.fhir import (
    DATA,
    PATIENT,
    RECIPIENT,
    SOURCE,
    actor,
    consent,
    disclosure,
    document,
    instrument,
    nested,
    organization,
    patient,
    practitioner,
    provision,
    ref,
    related_person,
    restriction,
    sent_disclosure,
)

EHR = "https://ehr.example/fhir"
HIE = "https://hie.example/fhir"
ORG_ID = ("urn:oid:2.16.840.1.113883.4.6", "1234567890")
PAT_ID = ("urn:oid:1.2.3.4", "MRN-1")

AUTH = {"decision": "authorized", "basis": "Consent/c1", "reasons": [], "accountable": False}


def unauth(*reasons: str) -> dict:
    return {"decision": "unauthorized", "basis": None, "reasons": list(reasons),
            "accountable": True}


def review(*reasons: str) -> dict:
    return {"decision": "review", "basis": None, "reasons": list(reasons), "accountable": True}


def scene(*consents, ae=None, birth_date="1980-04-01", extra=(), org=None) -> list[dict]:
    return [patient(birth_date=birth_date, identifier=PAT_ID), practitioner(),
            org if org is not None else organization(identifier=ORG_ID), document(),
            *consents, *extra, ae if ae is not None else disclosure()]


def bundle_at(base: str | None, resources: list[dict]) -> dict:
    """A collection Bundle whose fullUrls are on `base` (None: urn:uuid fullUrls)."""
    entries = []
    for i, r in enumerate(resources):
        full = (f"{base}/{r['resourceType']}/{r['id']}" if base
                else f"urn:uuid:00000000-0000-4000-8000-{i:012d}")
        entries.append({"fullUrl": full, "resource": copy.deepcopy(r)})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def decide(data, jurisdiction=None, base=None) -> dict:
    found = evaluate(data, jurisdiction, base=base).to_json()["findings"]
    assert len(found) == 1, found
    return found[0]


# --- References (1.1) ---------------------------------------------------------------------------

def _with_data(reference: str) -> list[dict]:
    return scene(consent(), ae=disclosure(data=(reference,)))


REFERENCE_ROWS = [
    ("relative-resolves", bundle_at(None, scene(consent())), None, AUTH),
    ("absolute-on-the-bundles-base-resolves",
     bundle_at(EHR, _with_data(f"{EHR}/{DATA}")), None, AUTH),
    ("absolute-on-the-base-being-read-resolves",
     _with_data(f"{EHR}/{DATA}"), EHR, AUTH),
    ("versioned-reference-resolves",
     bundle_at(EHR, _with_data(f"{EHR}/{DATA}/_history/3")), None, AUTH),
    ("another-servers-document-is-unresolved",
     bundle_at(EHR, _with_data(f"{HIE}/{DATA}")), None,
     {**review("data-unresolved"), "accountable": False}),
    ("another-servers-document-is-unresolved-whatever-the-base",
     _with_data(f"{HIE}/{DATA}"), EHR, {**review("data-unresolved"), "accountable": False}),
    ("another-servers-recipient-is-not-the-consents-actor",
     bundle_at(EHR, scene(consent(), ae=disclosure(recipient=f"{HIE}/{RECIPIENT}"))), None,
     unauth("recipient-not-covered")),
    ("recipient-on-the-base-being-read-is-the-consents-actor",
     scene(consent(), ae=disclosure(recipient=f"{EHR}/{RECIPIENT}")), EHR, AUTH),
    ("another-servers-patient-is-not-the-patient",
     bundle_at(EHR, scene(ae=disclosure(recipient=f"{HIE}/{PATIENT}"))), None,
     unauth("no-authorization")),
    ("the-patient-on-this-base-is-the-patient",
     bundle_at(EHR, scene(ae=disclosure(recipient=f"{EHR}/{PATIENT}"))), None,
     {"decision": "permitted", "basis": "hipaa-164.524-access", "reasons": []}),
    # TREAT to a Practitioner on another server: it is none of the data set's resources, so
    # the record cannot show a provider received it (the rule of thumb: review).
    ("treatment-to-another-servers-practitioner-is-review",
     bundle_at(EHR, scene(ae=disclosure(purposes=("TREAT",),
                                        recipient=f"{HIE}/Practitioner/pr-x"))), None,
     review("recipient-not-a-provider", "no-authorization")),
]


@pytest.mark.parametrize(("data", "base", "want"),
                         [pytest.param(d, b, w, id=i) for i, d, b, w in REFERENCE_ROWS])
def test_reference_rows(data, base, want):
    expect(decide(data, base=base), **want)


def _by_identifier(**kw) -> dict:
    return ref(None, kw.pop("identifier"))


IDENTIFIER_ROWS = [
    ("recipient-by-identifier-matches-the-actor-by-reference",
     scene(consent(), ae=disclosure(recipient=None, recipient_identifier=ORG_ID)), AUTH),
    ("actor-by-identifier-matches-the-recipient-by-reference",
     scene(consent(prov=provision(recipients=(), actors=(actor(None, identifier=ORG_ID),))),
           ae=disclosure()), AUTH),
    ("recipient-by-the-patients-identifier-is-the-patient",
     scene(ae=disclosure(recipient=None, recipient_identifier=PAT_ID)),
     {"decision": "permitted", "basis": "hipaa-164.524-access", "reasons": []}),
    ("recipient-by-a-guardians-identifier-may-access",
     scene(ae=disclosure(recipient=None, recipient_identifier=("urn:rp", "g-1")),
           extra=[{**related_person("RelatedPerson/g1", "GUARD"),
                   "identifier": [{"system": "urn:rp", "value": "g-1"}]}]),
     {"decision": "permitted", "basis": "hipaa-164.524-access", "reasons": []}),
    ("treatment-to-a-practitioner-by-identifier-is-to-a-provider",
     scene(ae=disclosure(purposes=("TREAT",), recipient=None,
                         recipient_identifier=("urn:npi", "42")),
           extra=[{**practitioner("Practitioner/pr-42"),
                   "identifier": [{"system": "urn:npi", "value": "42"}]}]),
     {"decision": "permitted", "basis": "hipaa-164.506-treatment", "reasons": []}),
    ("treatment-to-an-identifier-no-resource-carries-is-review",
     scene(ae=disclosure(purposes=("TREAT",), recipient=None,
                         recipient_identifier=("urn:npi", "43"))),
     review("recipient-not-a-provider", "no-authorization")),
    ("an-identifier-two-resources-carry-names-neither",
     scene(ae=disclosure(purposes=("TREAT",), recipient=None,
                         recipient_identifier=("urn:npi", "44")),
           extra=[{**practitioner(f"Practitioner/pr-{i}"),
                   "identifier": [{"system": "urn:npi", "value": "44"}]} for i in (1, 2)]),
     review("recipient-not-a-provider", "no-authorization")),
    ("signer-by-the-patients-identifier-is-the-patient",
     scene({**consent(performers=()), "performer": [ref(None, PAT_ID)]}), AUTH),
    ("communication-recipient-by-identifier-matches-the-actor",
     scene(consent(), ae=sent_disclosure(recipients=[ref(None, ORG_ID)])),
     {**AUTH}),
]


@pytest.mark.parametrize(("resources", "want"),
                         [pytest.param(r, w, id=i) for i, r, w in IDENTIFIER_ROWS])
def test_identifier_rows(resources, want):
    found = evaluate(bundle_at(None, resources)).to_json()["findings"]
    assert len(found) == 1
    expect(found[0], **want)


def test_the_recipient_shown_is_what_the_disclosure_wrote():
    got = decide(bundle_at(None, scene(consent(), ae=disclosure(
        recipient=None, recipient_identifier=ORG_ID))))
    assert got["recipient"] == f"{ORG_ID[0]}|{ORG_ID[1]}"


# --- The clarified rules (1.2, 1.3, 3) -----------------------------------------------------------

MINOR = "2010-03-01"

CLARIFIED_ROWS = [
    # A signed, active authorization with no provision fails only check 11: a near miss.
    ("no-provision-fails-only-check-11", scene(consent(prov=None)), None,
     review("authorization-incomplete")),
    ("no-provision-minor-signer-still-only-check-11",
     scene(consent(prov=None), birth_date=MINOR), None, review("authorization-incomplete")),
    # Reasons: the code of each purpose whose row won, in purpose order.
    ("reasons-every-winning-purpose-GOV-first",
     scene(ae=disclosure(purposes=("GOV", "HRESCH"))), None,
     review("legal-review-needed", "purpose-unmapped", "no-authorization")),
    ("reasons-every-winning-purpose-HRESCH-first",
     scene(ae=disclosure(purposes=("HRESCH", "GOV"))), None,
     review("purpose-unmapped", "legal-review-needed", "no-authorization")),
    ("reasons-a-losing-row-adds-nothing",
     scene(ae=disclosure(purposes=("HPAYMT", "GOV"))), None,
     review("legal-review-needed", "no-authorization")),
    # `action` entries are read together: one of them is disclose.
    ("actions-read-together",
     scene(consent(prov=provision(actions=("access", "disclose")))), None, AUTH),
    ("actions-without-disclose-are-incomplete",
     scene(consent(prov=provision(actions=("access", "collect")))), None,
     review("authorization-incomplete")),
    # Check 10: only denies beneath the covering permit.
    ("deny-sibling-of-a-nested-permit-does-not-apply",
     scene(consent(prov=nested("deny", provisions=(
         provision(), nested("deny", purposes=("PATRQT",)))))), None,
     {**AUTH}),
    ("deny-under-another-permit-does-not-apply",
     scene(consent(prov=nested("deny", provisions=(
         provision(),
         provision(purposes=("HPAYMT",), provisions=(nested("deny", purposes=("PATRQT",)),)),
     )))), None, {**AUTH}),
    ("deny-beneath-the-nested-permit-applies",
     scene(consent(prov=nested("deny", provisions=(
         provision(provisions=(nested("deny", purposes=("PATRQT",)),)),)))), None,
     unauth("denied-by-provision")),
    ("deny-anywhere-under-a-permit-root-applies",
     scene(consent(prov=provision(provisions=(
         nested("permit", provisions=(nested("deny", purposes=("PATRQT",)),)),)))), None,
     unauth("denied-by-provision")),
    # The near miss counts on the path the reason comes from.
    ("near-miss-not-on-the-reasons-path",
     scene(consent(prov=nested("deny", provisions=(
         provision(),  # a minor's own signature, without ADOL: fails only at check 6
         provision(labels=("ADOL",), recipients=("Organization/other",)),  # check 7
     ))), birth_date=MINOR), None, unauth("recipient-not-covered")),
    ("near-miss-on-the-reasons-path",
     scene(consent(prov=nested("deny", provisions=(
         provision(labels=("PSYTHPN",)),  # check 9: data-not-covered (MH is not listed)
         provision(end=None),  # only check 11
     )))), None, review("authorization-incomplete")),
    # Accountable and documented when any winning row says so, whatever the order.
    ("treatment-then-threat", scene(ae=disclosure(purposes=("TREAT", "THREAT"))), None,
     {"decision": "permitted", "basis": "hipaa-164.506-treatment", "accountable": True,
      "documentation": "missing", "client_notice": "missing"}),
    ("threat-then-treatment", scene(ae=disclosure(purposes=("THREAT", "TREAT"))), None,
     {"decision": "permitted", "basis": "hipaa-164.512(j)-serious-threat", "accountable": True,
      "documentation": "missing", "client_notice": "missing"}),
    ("operations-then-emergency", scene(ae=disclosure(purposes=("HOPERAT", "ETREAT"))), None,
     {"decision": "permitted", "basis": "hipaa-164.506-operations", "accountable": False,
      "documentation": "missing", "client_notice": "missing"}),
    ("payment-then-operations-owe-nothing",
     scene(ae=disclosure(purposes=("HPAYMT", "HOPERAT"))), None,
     {"decision": "permitted", "basis": "hipaa-164.506-payment", "accountable": False,
      "documentation": "not-required", "client_notice": "not-required"}),
    # Restrictions apply when in force at the disclosure.
    ("restriction-revoked-after-the-disclosure-applies",
     scene(restriction(status="inactive", last_updated="2025-09-01T00:00:00Z"),
           ae=disclosure(purposes=("HPAYMT",))), None,
     {"decision": "unauthorized", "reasons": ["restricted-by-patient", "not-an-authorization"]}),
    ("restriction-revoked-before-the-disclosure-does-not",
     scene(restriction(status="inactive", last_updated="2025-03-01T00:00:00Z"),
           ae=disclosure(purposes=("HPAYMT",))), None,
     {"decision": "permitted", "basis": "hipaa-164.506-payment"}),
    ("restriction-whose-root-period-ended-does-not",
     scene(restriction(prov=provision("deny", end="2025-05-01T00:00:00Z",
                                      purposes=("HPAYMT",))),
           ae=disclosure(purposes=("HPAYMT",))), None,
     {"decision": "permitted", "basis": "hipaa-164.506-payment"}),
    ("restriction-whose-root-period-starts-later-does-not",
     scene(restriction(prov=provision(start="2025-07-01T00:00:00Z", end=None, purposes=(),
                                      recipients=(),
                                      provisions=(nested(purposes=("HPAYMT",)),))),
           ae=disclosure(purposes=("HPAYMT",))), None,
     {"decision": "permitted", "basis": "hipaa-164.506-payment"}),
    ("restriction-draft-does-not",
     scene(restriction(status="draft"), ae=disclosure(purposes=("HPAYMT",))), None,
     {"decision": "permitted", "basis": "hipaa-164.506-payment"}),
    # Already right, pinned: restrictions yield to emergency and threat rows.
    ("restriction-yields-to-emergency-beside-payment",
     scene(restriction(), ae=disclosure(purposes=("HPAYMT", "ETREAT"))), None,
     {"decision": "permitted", "basis": "hipaa-164.506-payment"}),
    ("restriction-yields-to-threat-beside-operations",
     scene(restriction(), ae=disclosure(purposes=("HOPERAT", "THREAT"))), None,
     {"decision": "permitted", "basis": "hipaa-164.506-operations", "accountable": True}),
    ("restriction-yields-to-a-required-row",
     scene(restriction(), ae=disclosure(purposes=("HPAYMT", "PUBHLTH"))), None,
     {"decision": "required", "basis": "abuse-report"}),
    # Already right, pinned: unknown age.
    ("unknown-age-patient-signing-alone-is-a-minor",
     scene(consent(), birth_date=None), None, review("minor-self-authorization")),
    ("unknown-age-patient-signing-alone-with-ADOL-listed",
     scene(consent(prov=provision(labels=("MH", "ADOL"))), birth_date=None,
           ae=disclosure(data=(DATA,))), None, AUTH),
    ("unknown-age-parent-may-not-sign",
     scene(consent(performers=("RelatedPerson/mom",)), birth_date=None,
           extra=[related_person("RelatedPerson/mom", "MTH")]), None,
     unauth("authorizer-not-permitted")),
    ("unknown-age-guardian-may-sign",
     scene(consent(performers=("RelatedPerson/g",)), birth_date=None,
           extra=[related_person("RelatedPerson/g", "GUARD")]), None, AUTH),
    # Already right, pinned: a co-signer who may not sign does not count.
    ("minor-with-a-cosigner-who-may-not-sign-signed-alone",
     scene(consent(performers=(PATIENT, "RelatedPerson/friend")), birth_date=MINOR,
           extra=[related_person("RelatedPerson/friend", "FRND")]), None,
     review("minor-self-authorization")),
    ("minor-with-a-parent-cosigning-is-authorized",
     scene(consent(performers=(PATIENT, "RelatedPerson/mom")), birth_date=MINOR,
           extra=[related_person("RelatedPerson/mom", "MTH")]), None, AUTH),
    # Already right, pinned: a Part 2 court order keeps the court-order row for notes.
    ("part2-court-order-keeps-the-court-order-row-for-psychotherapy-notes",
     [patient(), practitioner(), organization(), document(labels=("PSYTHPN",)),
      instrument("DocumentReference/order", "part2-court-order"),
      disclosure(purposes=("HLEGAL",), instruments=("DocumentReference/order",))], None,
     {"decision": "required", "basis": "hipaa-164.512(e)-court-order", "reasons": []}),
]


@pytest.mark.parametrize(("resources", "jurisdiction", "want"),
                         [pytest.param(r, j, w, id=i) for i, r, j, w in CLARIFIED_ROWS])
def test_clarified_rows(resources, jurisdiction, want):
    expect(decide(bundle_at(None, resources), jurisdiction), **want)


def test_an_inactive_unsigned_consent_revoked_later_is_unsigned_before_it():
    """Checks 2 and 3 in order: not yet revoked, so the failure is the missing signature."""
    c = consent(status="inactive", signed=False, date_time=None,
                last_updated="2025-09-01T00:00:00Z", prov=provision(end=None))
    expect(decide(bundle_at(None, scene(c))), **unauth("authorization-unsigned"))
    later = disclosure(when="2025-10-01T00:00:00Z")
    expect(decide(bundle_at(None, scene(c, ae=later))), **unauth("authorization-revoked"))


def test_the_source_practitioner_is_still_notified():
    report = evaluate(bundle_at(EHR, scene(consent())))
    assert report.findings[0].notify == (SOURCE,)
    assert report.findings[0].recipient == RECIPIENT
