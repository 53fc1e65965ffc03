"""Entity.of, Disclosure.of, Actor.of, Provision.of and Authorization.of (the slot-setting
constructors normalize uses) build what the frozen slotted dataclasses' own constructors build,
every field in its own slot."""

import dataclasses
import pickle
from datetime import UTC, datetime

import pytest
from consent_gap.domain import Actor, Authorization, Disclosure, Entity, Provision

ENTITY = dict(
    reference="DocumentReference/dr-1", resource_type="DocumentReference", resolved=True,
    labels=frozenset({("http://terminology.hl7.org/CodeSystem/v3-ActCode", "PSY")}),
    classes=frozenset({("http://hl7.org/fhir/resource-types", "DocumentReference")}),
    codes=frozenset({("http://loinc.org", "34133-9")}),
)
DISCLOSURE = dict(
    reference="AuditEvent/ae-1", occurred=datetime(2024, 11, 27, 21, 18, tzinfo=UTC),
    patient="Patient/p-1", recipient="Organization/org-1",
    recipient_identifiers=frozenset({"urn:x|1"}), purposes=("PATRQT",),
    instruments=frozenset({"subpoena"}), instrument_refs=("DocumentReference/dr-2",),
    entities=(Entity(**ENTITY),), notify=("Practitioner/pr-1",),
    recipient_shown="Organization/org-1", identity="https://consent-gap.dev/fhir/proposal|x",
)
ACTOR = dict(roles=frozenset({("urn:role", "IRCP")}), reference="Organization/org-1",
             identifier="urn:x|1")
PROVISION = dict(
    type="permit", start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2025, 1, 1, tzinfo=UTC),
    actors=(Actor(**ACTOR),), purposes=frozenset({("urn:p", "PATRQT")}),
    labels=frozenset({("urn:l", "PSY")}), classes=frozenset({("urn:c", "x")}),
    codes=frozenset({("urn:k", "y")}), data=(("instance", "DocumentReference/dr-1"),),
    has_data_period=True, actions=(frozenset({("urn:a", "disclose")}),),
    children=(Provision(type="deny"),),
)
AUTHORIZATION = dict(
    reference="Consent/c-1", patient="Patient/p-1", status="active",
    scopes=frozenset({("urn:s", "patient-privacy")}), categories=frozenset({("urn:c", "1")}),
    policy_rules=frozenset({("urn:r", "hipaa-auth")}), policy_uris=("https://x/form",),
    signed=True, signed_at=datetime(2024, 1, 2, tzinfo=UTC),
    last_updated=datetime(2024, 1, 3, tzinfo=UTC), performers=("Patient/p-1",),
    provision=Provision(**PROVISION), narrative="<div>x</div>",
)
CASES = [(Entity, ENTITY), (Disclosure, DISCLOSURE), (Actor, ACTOR), (Provision, PROVISION),
         (Authorization, AUTHORIZATION)]


@pytest.mark.parametrize(("cls", "fields"), CASES)
def test_of_equals_the_dataclass_constructor(cls, fields):
    built, made = cls.of(**fields), cls(**fields)
    assert built == made and repr(built) == repr(made) and hash(built) == hash(made)
    for name, value in fields.items():  # each value in its own field, none swapped
        assert getattr(built, name) is value
    assert pickle.loads(pickle.dumps(built)) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, next(iter(fields)), "x")


@pytest.mark.parametrize(("cls", "fields"), CASES)
def test_of_wants_every_field_exactly(cls, fields):
    missing = dict(list(fields.items())[1:])
    with pytest.raises(TypeError):
        cls.of(**missing)
    with pytest.raises(TypeError):
        cls.of(**fields, extra=1)
