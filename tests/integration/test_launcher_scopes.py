"""The launcher's scope grammar and access rules as pure functions (no server needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sandbox" / "smart"))

from smart_launcher.access import classify, decide, in_compartment
from smart_launcher.scopes import ScopeSet, grantable_scope, parse_resource_scope

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("text", "letters"),
    [
        ("patient/Consent.rs", "rs"),
        ("user/*.cruds", "cruds"),
        ("system/Observation.read", "rs"),
        ("patient/Consent.write", "cud"),
        ("patient/Consent.*", "cruds"),
        ("patient/Observation.rs?category=laboratory", "rs"),
    ],
)
def test_scopes_parse_to_letters(text, letters):
    parsed = parse_resource_scope(text)
    assert parsed is not None
    assert parsed.letters == frozenset(letters)


@pytest.mark.parametrize(
    "text",
    ["patient/Consent.sr", "patient/Consent.rr", "patient/consent.rs", "group/X.rs", "launch"],
)
def test_malformed_or_non_resource_scopes_are_not_resource_scopes(text):
    assert parse_resource_scope(text) is None


def test_grant_is_the_intersection_with_the_registration():
    registered = "launch openid patient/*.rs patient/Communication.c"
    asked = "launch fhirUser patient/Consent.cruds patient/Communication.cr user/Consent.rs"
    assert grantable_scope(asked, registered).split() == [
        "launch",
        "patient/Consent.rs",
        "patient/Communication.r",
        "patient/Communication.c",
    ]


def test_widest_context_wins():
    scopes = ScopeSet.parse("patient/Consent.rs user/Consent.r")
    assert scopes.context_for("Consent", "r") == "user"
    assert scopes.context_for("Consent", "s") == "patient"
    assert scopes.context_for("Consent", "c") is None


@pytest.mark.parametrize(
    ("method", "path", "kind", "rtype"),
    [
        ("GET", "Consent", "search", "Consent"),
        ("POST", "Consent/_search", "search", "Consent"),
        ("GET", "Consent/1", "read", "Consent"),
        ("GET", "Consent/1/_history/2", "vread", "Consent"),
        ("PUT", "Consent/1", "update", "Consent"),
        ("DELETE", "Consent/1", "delete", "Consent"),
        ("POST", "Consent", "create", "Consent"),
        ("GET", "Patient/1/Consent", "search", "Consent"),
        ("GET", "Patient/1/$everything", "operation", "Patient"),
        ("POST", "", "bundle", None),
        ("GET", "metadata", "capabilities", None),
        ("GET", "Consent/..", "unsupported", "Consent"),
    ],
)
def test_requests_are_classified(method, path, kind, rtype):
    inter = classify(method, path, {})
    assert (inter.kind, inter.resource_type) == (kind, rtype)


def test_patient_scope_search_on_another_patient_through_the_compartment_path_is_refused():
    scopes = ScopeSet.parse("patient/Consent.rs")
    assert not decide(scopes, "a", classify("GET", "Patient/b/Consent", {}), {}).allowed
    assert decide(scopes, "a", classify("GET", "Patient/a/Consent", {}), {}).allowed


def test_compartment_is_judged_by_patient_references():
    assert in_compartment({"resourceType": "Consent", "patient": {"reference": "Patient/a"}}, "a")
    assert not in_compartment(
        {"resourceType": "Consent", "patient": {"reference": "http://x/fhir/Patient/b"}}, "a"
    )
    assert in_compartment({"resourceType": "Device", "id": "d"}, "a")
    assert not in_compartment({"resourceType": "Patient", "id": "b"}, "a")
