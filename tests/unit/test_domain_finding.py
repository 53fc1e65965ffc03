"""Finding.of (the one-dict constructor evaluate uses) builds what Finding(...) builds."""

import dataclasses
import pickle

import pytest
from consent_gap.domain import ClientNotice, Decision, Documentation, Finding

FIELDS = dict(
    disclosure="AuditEvent/ae-1", patient="Patient/p-1", occurred="2024-11-27T21:18:00Z",
    recipient="Organization/org-1", purposes=("PATRQT",), decision=Decision.UNAUTHORIZED,
    basis=None, reasons=("expired",), accountable=True, documentation=Documentation.MISSING,
    client_notice=ClientNotice.NOT_REQUIRED, explanation="Expired.",
    consents_checked=(("Consent/c-1", "expired"),), notify=("Practitioner/pr-1",),
    disclosed=("DocumentReference/dr-1",), instruments=(), decided_by=("Consent/c-1",),
    identity=None,
)


def test_of_equals_the_dataclass_constructor():
    built, made = Finding.of(**FIELDS), Finding(**FIELDS)
    assert built == made and repr(built) == repr(made)
    assert dataclasses.asdict(built) == dataclasses.asdict(made)
    assert pickle.loads(pickle.dumps(built)) == made
    assert built.to_json() == made.to_json()


def test_of_stays_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Finding.of(**FIELDS).decision = Decision.AUTHORIZED  # type: ignore[misc]


@pytest.mark.parametrize("change", [{"identity": None}, {"extra": 1}])
def test_of_wants_every_field_exactly(change):
    fields = dict(FIELDS)
    if "extra" in change:
        fields.update(change)
    else:
        del fields["identity"]
    with pytest.raises(TypeError, match="every field"):
        Finding.of(**fields)


def test_of_takes_the_fields_in_any_order():
    shuffled = dict(reversed(FIELDS.items()))
    assert Finding.of(**shuffled) == Finding(**FIELDS)


def test_native_json_holds_the_same_values_as_the_plain_json():
    finding = Finding.of(**FIELDS)
    native, plain = finding.to_json(native=True), finding.to_json()
    assert list(native) == list(plain)
    assert native["purposes"] == ("PATRQT",) and native["decision"] is Decision.UNAUTHORIZED
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in native.items()} == plain
    assert type(plain["decision"]) is str and type(plain["reasons"]) is list
