"""Second review of the engine against CONTRACT.md 1.2-1.4: cases the first suite left open.

Each test names the contract line it holds the engine to. Built with tests/support/fhir.py.
"""

from __future__ import annotations

import gc

from support.engine import expect, finding
from support.fhir import (
    PATIENT,
    consent,
    disclosure,
    document,
    documentation_note,
    notice,
    organization,
    patient,
    practitioner,
    related_person,
    world,
)

MUM = "RelatedPerson/mum"
MINOR = "2012-01-01"


def _minor_with_adolescent_care(*extra: dict) -> list[dict]:
    """A minor patient, their mother, and a document of care the minor consented to (ADOL)."""
    return [patient(birth_date=MINOR), practitioner(), organization(),
            document(labels=("ADOL",)), related_person(MUM, "MTH"), *extra]


def test_parent_is_not_the_first_row_for_care_the_minor_consented_to():
    """1.3 first row: a RelatedPerson "that may sign for the patient at the time (check 6)";
    check 6: data labelled ADOL can be authorized only by the Patient. So sending a minor's
    ADOL-labelled care to a parent is not the patient's own access: the purpose row decides."""
    got = finding(_minor_with_adolescent_care(
        disclosure(recipient=MUM, purposes=("FAMRQT",))))
    expect(got, decision="review", basis=None, accountable=True,
           reasons=["family-involvement-review", "no-authorization"])


def test_parent_is_still_the_first_row_for_other_care_of_a_minor():
    got = finding([patient(birth_date=MINOR), practitioner(), organization(), document(),
                   related_person(MUM, "MTH"), disclosure(recipient=MUM, purposes=("FAMRQT",))])
    expect(got, decision="permitted", basis="hipaa-164.524-access")


def test_notice_to_a_parent_does_not_count_for_adolescent_care():
    """1.4: the client notice goes to the Patient "or a RelatedPerson that may sign for the
    patient"; for ADOL data only the Patient may (check 6)."""
    resources = _minor_with_adolescent_care(documentation_note(), notice(recipient=MUM),
                                            disclosure(purposes=("THREAT",)))
    expect(finding(resources), decision="permitted", documentation="present",
           client_notice="missing")
    told = _minor_with_adolescent_care(documentation_note(), notice(recipient=PATIENT),
                                       disclosure(purposes=("THREAT",)))
    expect(finding(told), client_notice="sent")


def _guardian_of_nobody() -> dict:
    """A RelatedPerson that does not say whose representative it is (R4 requires `patient`)."""
    person = related_person("RelatedPerson/g", "GUARD")
    del person["patient"]
    return person


def test_representative_who_names_no_patient_may_not_sign():
    """Check 6: the record must show the signer may sign *for the patient*; a RelatedPerson
    without `patient` cannot show that, so it never authorizes (CONTRACT rule of thumb)."""
    got = finding(world(_guardian_of_nobody(), consent(performers=("RelatedPerson/g",)),
                        disclosure()))
    expect(got, decision="unauthorized", reasons=["authorizer-not-permitted"])


def test_representative_who_names_no_patient_is_not_the_first_row():
    got = finding(world(_guardian_of_nobody(),
                        disclosure(recipient="RelatedPerson/g", purposes=("FAMRQT",))))
    expect(got, decision="review", reasons=["family-involvement-review", "no-authorization"])


def test_patient_of_unknown_age_who_signed_alone_is_review():
    """Check 6 needs the Patient "adult at signing". Without a birth date the patient is
    either an adult (covered) or a minor signing alone (review): review is the honest answer,
    so the reason is minor-self-authorization and the decision review, never unauthorized."""
    got = finding(world(consent(), disclosure(), birth_date=None))
    expect(got, decision="review", basis=None, reasons=["minor-self-authorization"])



def test_evaluate_restores_the_cyclic_collector():
    """evaluate pauses the cyclic GC for speed; a library caller gets it back as it was."""
    from consent_gap.evaluate import evaluate
    from support.fhir import bundle

    data = bundle(world(consent(), disclosure()))
    assert gc.isenabled()
    evaluate(data)
    assert gc.isenabled()
    gc.disable()
    try:
        evaluate(data)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_cli_evaluate_restores_the_cyclic_collector(tmp_path, capsys):
    """`consent-gap evaluate` also pauses the collector; called in-process (tests, other
    tools) it must leave it as it found it."""
    import json

    from consent_gap.cli import main
    from support.fhir import bundle

    path = tmp_path / "in.json"
    path.write_text(json.dumps(bundle(world(consent(), disclosure()))))
    assert gc.isenabled()
    assert main(["evaluate", str(path)]) == 0
    assert gc.isenabled()
    capsys.readouterr()
