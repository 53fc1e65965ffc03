"""Engine rules the examples do not reach: candidate order, paths, conversions, restrictions,
narrowing, strictest-wins, representatives, ages and 1.4. Built with tests/support/fhir.py."""

from __future__ import annotations

from consent_gap.domain import Decision
from consent_gap.engine import age_on
from consent_gap.evaluate import evaluate
from support.engine import expect, finding, findings
from support.fhir import (
    END,
    INSTRUMENT,
    PART2_URI,
    PATIENT,
    consent,
    disclosure,
    document,
    documentation_note,
    instrument,
    nested,
    notice,
    organization,
    patient,
    practitioner,
    provision,
    related_person,
    restriction,
    signature,
    world,
)


def test_reason_comes_from_the_path_that_got_furthest():
    """Deny root with two permits: one fails at check 5, the other at check 8 -> purpose."""
    prov = provision("deny", start=None, end=None, recipients=(), purposes=(), actions=None,
                     provisions=[provision(end="2025-02-01T00:00:00Z"),
                                 provision(purposes=("HPAYMT",))])
    got = finding(world(consent(prov=prov), disclosure()))
    expect(got, decision="unauthorized", reasons=["purpose-not-covered"])


def test_second_permit_path_covers():
    prov = provision("deny", start=None, end=None, recipients=(), purposes=(), actions=None,
                     provisions=[provision(purposes=("HPAYMT",)), provision()])
    expect(finding(world(consent(prov=prov), disclosure())), decision="authorized",
           basis="Consent/c1", reasons=[])


def test_candidates_in_signing_order_then_id():
    """Reasons follow candidate order: signing time first (c-b signed earlier), then id."""
    late = consent("Consent/c-a", date_time="2025-03-01T00:00:00Z",
                   prov=provision(end="2025-04-01T00:00:00Z"))
    early = consent("Consent/c-b", date_time="2025-02-01T00:00:00Z",
                    prov=provision(recipients=("Organization/other",)))
    got = finding(world(late, early, organization("Organization/other"), disclosure()))
    assert got["reasons"] == ["recipient-not-covered", "authorization-expired"]


def test_first_covering_candidate_is_the_basis():
    one = consent("Consent/c-z", date_time="2025-01-01T00:00:00Z")
    two = consent("Consent/c-a", date_time="2025-02-01T00:00:00Z")
    expect(finding(world(two, one, disclosure())), decision="authorized", basis="Consent/c-z")


def test_minor_who_signed_alone_is_review_not_unauthorized():
    got = finding(world(consent(), disclosure(), birth_date="2010-01-01"))
    expect(got, decision="review", basis=None, reasons=["minor-self-authorization"],
           accountable=True)


def test_minor_signing_alone_with_adol_listed_covers():
    prov = provision(labels=("MH", "ADOL"))
    data = document(labels=("MH", "ADOL"))
    got = finding([patient(birth_date="2010-01-01"), practitioner(), organization(), data,
                   consent(prov=prov), disclosure()])
    expect(got, decision="authorized")


def test_parent_signs_while_minor_but_not_once_adult():
    parent = related_person("RelatedPerson/mum", relationship="MTH")
    child = consent(performers=("RelatedPerson/mum",), date_time="2025-01-10T00:00:00Z")
    expect(finding(world(parent, child, disclosure(), birth_date="2010-01-01")),
           decision="authorized")
    expect(finding(world(parent, child, disclosure(), birth_date="1990-01-01")),
           decision="unauthorized", reasons=["authorizer-not-permitted"])


def test_age_of_majority_comes_from_the_jurisdiction():
    """Born 2006-03-01, signed 2025-01-10: 18 years old, a minor in Alabama (19)."""
    resources = world(consent(), disclosure(), birth_date="2006-03-01")
    expect(finding(resources), decision="authorized")
    expect(finding(resources, "US-AL"), decision="review", reasons=["minor-self-authorization"])


def test_age_on_counts_whole_years():
    from datetime import UTC, date, datetime
    assert age_on(date(2000, 6, 2), datetime(2018, 6, 1, 23, tzinfo=UTC)) == 17
    assert age_on(date(2000, 6, 2), datetime(2018, 6, 2, tzinfo=UTC)) == 18


def test_action_without_disclose_is_incomplete_and_converts_to_review():
    prov = provision(actions=("access",))
    expect(finding(world(consent(prov=prov), disclosure())), decision="review",
           reasons=["authorization-incomplete"])


def test_check_11_near_miss_does_not_rescue_a_failure_elsewhere():
    prov = provision(recipients=(), end="2025-03-01T00:00:00Z")
    expect(finding(world(consent(prov=prov), disclosure())), decision="unauthorized",
           reasons=["authorization-expired"])


def test_inactive_revoked_after_the_disclosure_still_covers():
    c = consent(status="inactive", prov=provision(end="2025-12-01T00:00:00Z"))
    expect(finding(world(c, disclosure())), decision="authorized")


def test_inactive_without_any_time_is_revoked():
    c = consent(status="inactive", prov=provision(end=None))
    expect(finding(world(c, disclosure())), decision="unauthorized",
           reasons=["authorization-revoked"])


def test_signature_after_the_disclosure_is_not_yet_valid():
    c = consent(signed=False, date_time=None)
    got = finding(world(c, signature(when="2025-07-01T00:00:00Z"), disclosure()))
    expect(got, decision="unauthorized", reasons=["authorization-not-yet-valid"])


def test_purpose_descends_from_a_listed_purpose():
    c = consent(prov=provision(purposes=("TREAT",)))
    got = finding(world(c, disclosure(purposes=("ERTREAT",))))
    expect(got, decision="authorized")


def test_deny_matches_only_when_all_its_constraints_hold():
    """A nested deny for SDV data and HPAYMT: the PATRQT disclosure of SDV data is not denied."""
    deny = nested("deny", labels=("SDV",), purposes=("HPAYMT",))
    c = consent(prov=provision(provisions=[deny]))
    data = document(labels=("SDV",))
    got = finding([patient(), practitioner(), organization(), data, c, disclosure()])
    expect(got, decision="authorized")


def test_restriction_does_not_touch_emergency_treatment():
    got = finding(world(restriction(prov=provision("deny", end=None, purposes=("ETREAT",))),
                        disclosure(purposes=("ETREAT",))))
    expect(got, decision="permitted", basis="hipaa-164.506-emergency-treatment",
           documentation="missing", client_notice="missing")


def test_restriction_turns_operations_into_unauthorized():
    got = finding(world(restriction(), disclosure(purposes=("HOPERAT",))))
    expect(got, decision="unauthorized", basis=None, accountable=True,
           reasons=["restricted-by-patient", "not-an-authorization"])


def test_strictest_wins_and_basis_from_first_winning_purpose():
    got = finding(world(disclosure(purposes=("HPAYMT", "HOPERAT"))))
    expect(got, decision="permitted", basis="hipaa-164.506-payment", accountable=False)
    got = finding(world(disclosure(purposes=("HPAYMT", "GOV"))))
    expect(got, decision="review", basis=None, reasons=["legal-review-needed",
                                                         "no-authorization"])


def test_request_codes_alone_take_their_rows():
    got = finding(world(disclosure(purposes=("PATRQT", "FAMRQT"))))
    expect(got, decision="unauthorized", reasons=["no-authorization"])


def test_first_row_for_a_guardian_recipient():
    guardian = related_person("RelatedPerson/g", relationship="GUARD")
    got = finding(world(guardian, disclosure(recipient="RelatedPerson/g", purposes=("GOV",))))
    expect(got, decision="permitted", basis="hipaa-164.524-access", accountable=False)


def test_psychotherapy_notes_narrow_the_first_row_to_review():
    notes = document(labels=("PSYTHPN",))
    got = finding([patient(), practitioner(), notes,
                   disclosure(recipient=PATIENT, purposes=("PATRQT",))])
    expect(got, decision="review", basis=None, accountable=True,
           reasons=["psychotherapy-notes-need-specific-authorization", "no-authorization"])


def test_psychotherapy_notes_do_not_narrow_threat():
    notes = document(labels=("PSYTHPN",))
    got = finding([patient(), practitioner(), organization(), notes,
                   disclosure(purposes=("THREAT",))], "US-CA")
    expect(got, decision="required", basis="duty-to-warn-or-protect")


def test_part2_court_order_stands_and_plain_court_order_needs_review():
    sud = document(labels=("SUD", "42CFRPart2"))
    base = [patient(), practitioner(), organization(), sud]
    plain = finding([*base, instrument("DocumentReference/co", "court-order"),
                     disclosure(purposes=("HLEGAL",), instruments=("DocumentReference/co",))])
    expect(plain, decision="review", basis=None, reasons_first="part2-consent-required")
    part2 = finding([*base, instrument("DocumentReference/co", "part2-court-order"),
                     disclosure(purposes=("HLEGAL",), instruments=("DocumentReference/co",))])
    expect(part2, decision="required", basis="hipaa-164.512(e)-court-order")


def test_part2_consent_by_policy_uri_covers_and_is_accountable():
    sud = document(labels=("SUD", "42CFRPart2"))
    got = finding([patient(), practitioner(), organization(), sud,
                   consent(policy_uri=PART2_URI), disclosure()])
    expect(got, decision="authorized", accountable=True)


def test_satisfactory_assurance_alone_is_no_instrument():
    got = finding(world(instrument("DocumentReference/sa", "satisfactory-assurance"),
                        disclosure(purposes=("HLEGAL",), instruments=("DocumentReference/sa",))))
    expect(got, decision="review", reasons_first="legal-review-needed")


def test_instrument_dated_after_the_disclosure_is_data_not_an_instrument():
    late = instrument("DocumentReference/co", "court-order", date="2025-07-01T00:00:00Z")
    got = finding(world(late, disclosure(purposes=("HLEGAL",),
                                         instruments=("DocumentReference/co",))))
    expect(got, decision="review", reasons_first="legal-review-needed")


def test_abuse_report_about_a_minor_needs_no_client_notice():
    got = finding(world(documentation_note(), disclosure(purposes=("PUBHLTH",)),
                        birth_date="2012-01-01"))
    expect(got, decision="required", documentation="present", client_notice="not-required")


def test_preliminary_or_own_notes_are_not_documentation():
    for note in (documentation_note(doc_status="preliminary"), documentation_note(tagged=True)):
        got = finding(world(note, notice(), disclosure(purposes=("PUBHLTH",))))
        expect(got, documentation="missing", client_notice="sent")


def test_notice_to_a_guardian_counts_and_not_done_needs_a_reason():
    guardian = related_person("RelatedPerson/g", relationship="GUARD")
    sent = notice(recipient="RelatedPerson/g")
    got = finding(world(guardian, sent, disclosure(purposes=("PUBHLTH",))))
    expect(got, client_notice="sent")
    bare = notice(status="not-done")
    expect(finding(world(bare, disclosure(purposes=("PUBHLTH",)))), client_notice="missing")


def test_recipient_matched_by_identifier():
    ident = ("urn:ietf:rfc:3986", "urn:oid:1.2.3")
    c = consent(prov=provision(recipients=(), actors=[
        {"role": {"coding": [{"system":
                              "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                              "code": "IRCP"}]},
         "reference": {"identifier": {"system": ident[0], "value": ident[1]}}}]))
    got = finding(world(c, disclosure(recipient=None, recipient_identifier=ident)))
    expect(got, decision="authorized")


def test_findings_are_ordered_by_occurred_then_disclosure():
    a = disclosure("AuditEvent/b", when="2025-06-01T10:00:00+02:00")
    b = disclosure("AuditEvent/a", when="2025-06-01T08:00:00Z")
    c = disclosure("AuditEvent/c", when="2025-05-01")
    got = [f["disclosure"] for f in findings(world(consent(), a, b, c))]
    assert got == ["AuditEvent/c", "AuditEvent/a", "AuditEvent/b"]


def test_finding_carries_context_for_the_write_back():
    report = evaluate({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": r} for r in world(consent(), disclosure(purposes=("PATRQT",)))]})
    f = report.findings[0]
    assert f.decision is Decision.AUTHORIZED
    assert f.consents_checked == (("Consent/c1", None),)
    assert f.notify == ("Practitioner/pr-src",)
    assert f.disclosed == ("DocumentReference/d1",)
    assert END  # the builder's default expiry is set, so check 11 passes
    assert "Consent/" not in f.explanation  # named, not by id
    assert "covered by the client's authorization signed on" in f.explanation


def test_instrument_refs_reach_the_finding():
    report = evaluate([*world(instrument("DocumentReference/co", "court-order"),
                              disclosure(purposes=("HLEGAL",),
                                         instruments=("DocumentReference/co",)))])
    assert report.findings[0].instruments == ("DocumentReference/co",)
    assert report.findings[0].decision is Decision.REQUIRED
    assert INSTRUMENT.endswith("legal-instrument")


def _sentences(text: str) -> int:
    return sum(text.count(mark) for mark in (". ", ".\n")) + (1 if text.endswith(".") else 0)


def test_explanations_are_short_and_name_what_was_checked():
    expired = consent(prov=provision(end="2025-03-01T00:00:00Z"))
    unauthorized = evaluate(world(expired, disclosure())).findings[0]
    assert unauthorized.consents_checked == (("Consent/c1", "authorization-expired"),)
    assert "not permitted" in unauthorized.explanation
    assert "(the authorization had expired)" in unauthorized.explanation
    assert "Consent/" not in unauthorized.explanation
    threat = evaluate(world(disclosure(purposes=("THREAT",))), "US-TX").findings[0]
    assert "serious and imminent threat" in threat.explanation
    assert "missing" in threat.explanation
    for f in (unauthorized, threat):
        assert 1 <= _sentences(f.explanation) <= 2, f.explanation


def test_a_candidate_result_is_the_pair_a_finding_lists_and_survives_pickling():
    """A result is the (Consent, reason) pair of `Finding.consents_checked`: equal to, and hashed
    as, the plain pair; a near miss is not equal to the same pair without one; and it pickles
    (a Dask worker's findings travel between processes)."""
    import pickle

    from consent_gap.engine import CandidateResult

    plain = CandidateResult("Consent/a", "authorization-expired")
    near = CandidateResult("Consent/a", "authorization-incomplete", True)
    covering = CandidateResult("Consent/b", None)
    assert plain == ("Consent/a", "authorization-expired") and plain.checked == plain
    assert {plain} == {("Consent/a", "authorization-expired")}
    assert (near.reference, near.reason, near.near_miss) == (
        "Consent/a", "authorization-incomplete", True)
    assert near != CandidateResult("Consent/a", "authorization-incomplete")
    assert not plain.near_miss and covering.reason is None
    for result in (plain, near, covering):
        again = pickle.loads(pickle.dumps(result))
        assert again == result and type(again) is type(result)
        assert again.near_miss is result.near_miss
