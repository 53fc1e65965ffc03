"""CONTRACT.md 1.1: what is a disclosure, when it happened, who and what it involved, and which
labels its entities carry."""

from __future__ import annotations

import pytest
from support.engine import expect, finding, findings
from support.fhir import (
    DATA,
    RECIPIENT,
    US_PRIVACY_LAW,
    consent,
    disclosure,
    document,
    observation,
    organization,
    patient,
    practitioner,
    provision,
)


def scene(*extra, ae=None) -> list[dict]:
    return [patient(), practitioner(), organization(), document(), *extra,
            ae if ae is not None else disclosure(purposes=("TREAT",))]


DETECTION = [
    ("outcome-0", disclosure(outcome="0"), True),
    ("outcome-absent", disclosure(outcome=None), True),
    *[(f"outcome-{o}-failed", disclosure(outcome=o), False) for o in ("4", "8", "12")],
    ("type-not-export", disclosure(type_code="110110"), False),
    ("no-subtype", disclosure(subtype=None), False),
    ("subtype-not-disclose", disclosure(subtype="access"), False),
]


@pytest.mark.parametrize(("ae", "is_disclosure"),
                         [pytest.param(a, d, id=i) for i, a, d in DETECTION])
def test_what_is_a_disclosure(ae, is_disclosure):
    got = [f["disclosure"] for f in findings(scene(ae=ae))]
    assert got == (["AuditEvent/ae1"] if is_disclosure else [])


def test_subtype_needs_the_lifecycle_system():
    ae = disclosure()
    ae["subtype"] = [{"system": "http://example.org/other", "code": "disclose"}]
    assert findings(scene(ae=ae)) == []


def test_type_needs_the_dicom_system():
    ae = disclosure()
    ae["type"] = {"system": "http://example.org/other", "code": "110106"}
    assert findings(scene(ae=ae)) == []


WHEN = [
    ("period-start-over-recorded",
     disclosure(when="2025-06-01T10:00:00Z", recorded="2025-06-02T00:00:00Z"),
     "2025-06-01T10:00:00Z"),
    ("recorded-without-period", disclosure(when=None, recorded="2025-06-02T08:30:00Z"),
     "2025-06-02T08:30:00Z"),
    ("recorded-when-period-has-no-start",
     {**disclosure(recorded="2025-06-02T08:30:00Z"), "period": {"end": "2025-06-01T11:00:00Z"}},
     "2025-06-02T08:30:00Z"),
    ("date-only-is-its-first-instant", disclosure(when="2025-06-01"), "2025-06-01T00:00:00Z"),
    ("offset-converted-to-utc", disclosure(when="2025-06-01T12:00:00+02:00"),
     "2025-06-01T10:00:00Z"),
]


@pytest.mark.parametrize(("ae", "occurred"), [pytest.param(a, o, id=i) for i, a, o in WHEN])
def test_when(ae, occurred):
    assert finding(scene(ae=ae))["occurred"] == occurred


def test_date_only_disclosure_is_before_a_same_day_signature():
    """A date alone means its first instant, so a Consent signed later that day is not yet valid
    (check 4)."""
    got = finding(scene(consent(date_time="2025-06-01T08:00:00Z"),
                        ae=disclosure(when="2025-06-01")))
    expect(got, decision="unauthorized", reasons=["authorization-not-yet-valid"])


def test_offset_is_compared_as_an_instant():
    """01:00+02:00 on June 1 is 23:00Z on May 31: before an end of 2025-06-01T00:00Z."""
    got = finding(scene(consent(prov=provision(end="2025-06-01T00:00:00Z")),
                        ae=disclosure(when="2025-06-01T01:00:00+02:00")))
    expect(got, decision="authorized", basis="Consent/c1")


def test_patient_recipient_and_purposes():
    ae = disclosure(purposes=("TREAT", "PATRQT"),
                    other_purposes=({"system": "urn:local:purpose", "code": "X"},))
    got = finding(scene(ae=ae))
    assert got["patient"] == "Patient/p1"
    assert got["recipient"] == RECIPIENT
    assert got["purposes"] == ["TREAT", "PATRQT"]


def test_people_to_notify_are_the_practitioner_agents():
    from consent_gap.evaluate import evaluate
    from support.fhir import bundle

    ae = disclosure(notify=("Practitioner/pr-src", "PractitionerRole/role-1",
                            "Organization/org-src"))
    report = evaluate(bundle(scene(ae=ae)))
    assert set(report.findings[0].notify) == {"Practitioner/pr-src", "PractitionerRole/role-1"}


# Labels: entity.securityLabel, plus the resource's meta.security and (DocumentReference)
# securityLabel; ActCode and USPrivacyLaw only. Seen through psychotherapy-notes narrowing of
# TREAT (no Consent): PSYTHPN anywhere makes it unauthorized, elsewhere it stays permitted.
LABEL_ROWS = [
    ("entity-securityLabel", disclosure(purposes=("TREAT",),
                                        entity_labels={DATA: ("PSYTHPN",)}), document(), True),
    ("documentreference-securityLabel", disclosure(purposes=("TREAT",)),
     document(labels=("PSYTHPN",)), True),
    ("documentreference-meta-security", disclosure(purposes=("TREAT",)),
     document(labels=(), meta_labels=("PSYTHPN",)), True),
    ("uslaw-HIPAAPsyNotes", disclosure(purposes=("TREAT",)),
     document(labels=((US_PRIVACY_LAW, "HIPAAPsyNotes"),)), True),
    ("PSYTHPN-counts-only-in-actcode", disclosure(purposes=("TREAT",)),
     document(labels=((US_PRIVACY_LAW, "PSYTHPN"),)), False),
    ("other-system-ignored", disclosure(purposes=("TREAT",)),
     document(labels=(("urn:local:labels", "PSYTHPN"),)), False),
]


@pytest.mark.parametrize(("ae", "doc", "psy"),
                         [pytest.param(a, d, p, id=i) for i, a, d, p in LABEL_ROWS])
def test_labels(ae, doc, psy):
    got = finding([patient(), practitioner(), organization(), doc, ae])
    if psy:
        expect(got, decision="unauthorized",
               reasons_first="psychotherapy-notes-need-specific-authorization")
    else:
        expect(got, decision="permitted", basis="hipaa-164.506-treatment", reasons=[])


def test_labels_from_observation_meta_security():
    got = finding(scene(observation(meta_labels=("PSYTHPN",)),
                        ae=disclosure(purposes=("TREAT",), data=("Observation/o1",))))
    expect(got, decision="unauthorized",
           reasons_first="psychotherapy-notes-need-specific-authorization")


UNRESOLVED = ["data-unresolved", "no-authorization"]  # no candidate Consent in these scenes


def test_entity_with_only_a_confidentiality_label_is_unresolved():
    """Confidentiality codes are not labels, so a missing resource with only `R` is unresolved
    and the permitted decision becomes review (1.2, last paragraph)."""
    ae = disclosure(purposes=("TREAT",), data=("DocumentReference/gone",),
                    entity_labels={"DocumentReference/gone": ("R",)})
    expect(finding(scene(ae=ae)), decision="review", reasons=UNRESOLVED,
           accountable=False, basis=None)


def test_unresolved_entity_turns_permitted_into_review():
    ae = disclosure(purposes=("TREAT",), data=("DocumentReference/gone",))
    expect(finding(scene(ae=ae)), decision="review", basis=None, reasons=UNRESOLVED,
           accountable=False, documentation="not-required", client_notice="not-required")


def test_unresolved_keeps_the_accountable_value_of_a_serious_threat():
    ae = disclosure(purposes=("THREAT",), data=("Observation/gone",))
    expect(finding(scene(ae=ae), "US-TX"), decision="review", basis=None,
           reasons=UNRESOLVED, accountable=True, documentation="not-required",
           client_notice="not-required")


def test_unresolved_does_not_touch_required():
    ae = disclosure(purposes=("THREAT",), data=("Observation/gone",))
    expect(finding(scene(ae=ae), "US-CA"), decision="required",
           basis="duty-to-warn-or-protect", reasons=[])


def test_no_disclosed_entity_turns_permitted_into_review():
    ae = disclosure(purposes=("TREAT",), data=())
    expect(finding(scene(ae=ae)), decision="review", reasons=UNRESOLVED,
           accountable=False)
