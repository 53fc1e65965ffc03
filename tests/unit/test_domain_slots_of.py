"""Entity.of and Disclosure.of (the slot-setting constructors normalize uses) build what the
frozen slotted dataclasses' own constructors build, every field in its own slot."""

import dataclasses
import pickle
from datetime import UTC, datetime

import pytest
from consent_gap.domain import Disclosure, Entity

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


@pytest.mark.parametrize(("cls", "fields"), [(Entity, ENTITY), (Disclosure, DISCLOSURE)])
def test_of_equals_the_dataclass_constructor(cls, fields):
    built, made = cls.of(**fields), cls(**fields)
    assert built == made and repr(built) == repr(made) and hash(built) == hash(made)
    for name, value in fields.items():  # each value in its own field, none swapped
        assert getattr(built, name) is value
    assert pickle.loads(pickle.dumps(built)) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.reference = "x"


@pytest.mark.parametrize(("cls", "fields"), [(Entity, ENTITY), (Disclosure, DISCLOSURE)])
def test_of_wants_every_field_exactly(cls, fields):
    missing = {k: v for k, v in fields.items() if k != "reference"}
    with pytest.raises(TypeError):
        cls.of(**missing)
    with pytest.raises(TypeError):
        cls.of(**fields, extra=1)
