"""Invariants of the decision engine (issue 2), checked with hypothesis over the 22 example
bundles and a few built ones:

- shuffling a bundle's entries changes no finding;
- adding a Consent for another patient changes no finding;
- a covered disclosure stays covered (indeed every finding stays the same) when an unrelated
  disclosure is added;
- arbitrary JSON never raises: `consent-gap evaluate` exits 0 or 2, and a Bundle whose resources
  hold junk is still evaluated (exit 0; unreadable resources become problems).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.engine import report
from support.fhir import (
    bundle,
    consent,
    disclosure,
    document,
    organization,
    patient,
    practitioner,
    provision,
    restriction,
    signature,
)

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("[0-9][0-9]-*.json")
                  if not p.name.endswith(".expected.json"))
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


def _built_cases() -> list[tuple[str, dict, str | None]]:
    """Bundles that exercise ties: two Consents signed at the same instant (order by id), two
    disclosures at the same instant (order by id), a restriction beside an authorization."""
    cast = [patient(), practitioner(), organization(), document()]
    ties = bundle(cast,
                  consent("Consent/c-b"), consent("Consent/c-a"),
                  consent("Consent/c-c", signed=False), signature("Consent/c-c"),
                  restriction(prov=provision("deny", end=None, purposes=("HPAYMT",))),
                  disclosure("AuditEvent/ae-2"), disclosure("AuditEvent/ae-1"),
                  disclosure("AuditEvent/ae-3", purposes=("HPAYMT",)),
                  disclosure("AuditEvent/ae-4", purposes=("THREAT",), when="2025-08-01"))
    return [("built-ties", ties, "US-CA")]


def _example_cases() -> list[tuple[str, dict, str | None]]:
    cases = []
    for path in EXAMPLES:
        expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())
        cases.append((path.stem, json.loads(path.read_text()), expected["jurisdiction"]))
    return cases


CASES = _example_cases() + _built_cases()
CASE = st.sampled_from(CASES)


def test_the_example_fixtures_are_there():
    assert len(EXAMPLES) == 22


def _resources(data: dict, type_: str) -> list[dict]:
    return [e["resource"] for e in data.get("entry", [])
            if e.get("resource", {}).get("resourceType") == type_]


def _recipients(data: dict) -> list[str]:
    out = []
    for ae in _resources(data, "AuditEvent"):
        for agent in ae.get("agent", []):
            codes = [c.get("code") for c in agent.get("type", {}).get("coding", [])]
            if "110152" in codes and agent.get("who", {}).get("reference"):
                out.append(agent["who"]["reference"])
    for sent in _resources(data, "Communication"):  # disclosures sent as Communications
        out.extend(r["reference"] for r in sent.get("recipient", []) if r.get("reference"))
    return out or ["Organization/x"]


# --- shuffling -------------------------------------------------------------------------------

@SETTINGS
@given(case=CASE, rnd=st.randoms(use_true_random=False))
def test_shuffling_entries_changes_no_finding(case, rnd):
    _, data, jurisdiction = case
    before = report(data, jurisdiction)
    entries = list(data["entry"])
    rnd.shuffle(entries)
    after = report({**data, "entry": entries}, jurisdiction)
    assert after["findings"] == before["findings"]
    assert sorted(map(json.dumps, after["problems"])) == sorted(map(json.dumps,
                                                                    before["problems"]))


# --- a Consent for another patient -----------------------------------------------------------

PURPOSES = ["TREAT", "ETREAT", "HPAYMT", "HOPERAT", "PATRQT", "FAMRQT", "THREAT", "PUBHLTH",
            "HLEGAL", "GOV", "HRESCH"]
LABELS = ["MH", "SDV", "PSYTHPN", "HIPAAPsyNotes", "42CFRPart2", "ADOL", "ETH"]
TIMES = st.sampled_from([None, "2020-01-01T00:00:00Z", "2024-06-01", "2025-03-01T12:00:00Z",
                         "2025-12-31T23:59:59Z", "2030-01-01T00:00:00Z"])


@st.composite
def provisions(draw, recipients: list[str], depth: int = 0) -> dict:
    start, end = draw(TIMES), draw(TIMES)
    kids = []
    if depth < 2:
        kids = draw(st.lists(provisions(recipients, depth + 1), max_size=2))
    return provision(
        draw(st.sampled_from(["permit", "deny", None])), start=start, end=end,
        recipients=draw(st.lists(st.sampled_from(recipients), max_size=2)),
        purposes=draw(st.lists(st.sampled_from(PURPOSES), max_size=3)),
        labels=draw(st.lists(st.sampled_from(LABELS), max_size=2)),
        actions=draw(st.sampled_from([None, ("disclose",), ("access",)])),
        provisions=kids)


@st.composite
def foreign_consents(draw, recipients: list[str]) -> list[dict]:
    """A Consent (and perhaps its signature) for a patient who is in no disclosure."""
    ref = f"Consent/zz-other-{draw(st.integers(0, 999))}"
    res = consent(
        ref, patient_ref="Patient/zz-other",
        status=draw(st.sampled_from(["active", "inactive", "draft", "entered-in-error"])),
        policy_rule=draw(st.sampled_from(["hipaa-auth", "hipaa-restrictions", "hipaa-self-pay",
                                          "hipaa-npp", None])),
        date_time=draw(TIMES), signed=draw(st.booleans()),
        performers=draw(st.lists(st.sampled_from(["Patient/zz-other", "RelatedPerson/rp-x"]),
                                 max_size=2)),
        prov=draw(st.one_of(st.none(), provisions(recipients))))
    extra = [signature(ref, who="Patient/zz-other")] if draw(st.booleans()) else []
    return [res, *extra]


@SETTINGS
@given(data=st.data())
def test_a_consent_for_another_patient_changes_no_finding(data):
    _, bundle_, jurisdiction = data.draw(CASE)
    added = data.draw(foreign_consents(_recipients(bundle_)))
    before = report(bundle_, jurisdiction)["findings"]
    grown = copy.deepcopy(bundle_)
    grown["entry"] += [{"fullUrl": f"urn:test:{r['resourceType']}/{r['id']}", "resource": r}
                       for r in [patient("Patient/zz-other"), *added]]
    assert report(grown, jurisdiction)["findings"] == before


def test_the_consent_strategy_reaches_the_engine_shapes():
    """Guards the property above: a foreign Consent built like the generated ones, but for the
    right patient, does change a finding (so the generator is not inert)."""
    case = next(c for c in CASES if c[0] == "built-ties")
    base = report(case[1], case[2])["findings"]
    grown = copy.deepcopy(case[1])
    grown["entry"].append({"resource": consent("Consent/c-0", date_time="2025-01-01T00:00:00Z")})
    changed = report(grown, case[2])["findings"]
    assert [f["basis"] for f in changed] != [f["basis"] for f in base]


# --- an unrelated disclosure -----------------------------------------------------------------

COVERED_CASES = [c for c in CASES if c[0].startswith(("01-", "14-", "15-", "built-"))]


@st.composite
def unrelated_disclosures(draw, data: dict) -> list[dict]:
    patients = [f"Patient/{p['id']}" for p in _resources(data, "Patient")] + ["Patient/zz-new"]
    docs = [f"DocumentReference/{d['id']}" for d in _resources(data, "DocumentReference")]
    n = draw(st.integers(0, 9999))
    ae = disclosure(
        f"AuditEvent/zz-gen-{n}", when=draw(TIMES), recorded="2025-06-01T00:00:00Z",
        patient_ref=draw(st.sampled_from(patients)),
        recipient=draw(st.sampled_from([*_recipients(data), *patients])),
        purposes=draw(st.lists(st.sampled_from(PURPOSES), max_size=3)),
        data=draw(st.lists(st.sampled_from([*docs, "DocumentReference/zz-gone"]), max_size=2)),
        outcome=draw(st.sampled_from(["0", None, "8"])))
    return [ae]


@SETTINGS
@given(data=st.data())
def test_a_covered_disclosure_stays_covered_when_another_is_added(data):
    _, bundle_, jurisdiction = data.draw(st.sampled_from(COVERED_CASES))
    before = report(bundle_, jurisdiction)["findings"]
    covered = {f["disclosure"]: f for f in before if f["decision"] == "authorized"}
    assert covered, "seed case must have a covered disclosure"
    grown = copy.deepcopy(bundle_)
    grown["entry"] += [{"resource": r} for r in data.draw(unrelated_disclosures(bundle_))]
    after = {f["disclosure"]: f for f in report(grown, jurisdiction)["findings"]}
    for ref, finding in covered.items():
        assert after[ref]["decision"] == "authorized"
        assert after[ref] == finding
    assert [f for f in after.values() if f["disclosure"] in {g["disclosure"] for g in before}] \
        == before


# --- arbitrary JSON never raises -------------------------------------------------------------

DATEISH = st.sampled_from(["2025-06-01", "2025-13-45", "", "T", "2025-06-01T10:00:00Z",
                           "2025-06-01T25:61:00+99:00", "2025", "2025-06", "0000-00-00",
                           "Patient/", "/", "AuditEvent/", "110106", "disclose", "0"])
SCALARS = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12) | DATEISH)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10) | st.sampled_from(
                        ["resourceType", "reference", "system", "code", "coding", "start",
                         "end", "type", "id", "entry", "resource"]), inner, max_size=4),
                    max_leaves=16)


def cli(data) -> int:
    """`consent-gap evaluate FILE` in-process; returns the exit code, fails on any exception."""
    from consent_gap.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["evaluate", str(path)])
            except SystemExit as exc:
                code = exc.code
    assert "Traceback" not in err.getvalue()
    return code


def evaluate_or_input_error(data) -> None:
    """`evaluate` returns a Report or raises InputError (a ValueError); nothing else."""
    from consent_gap.evaluate import evaluate

    try:
        evaluate(data).to_json()
    except ValueError as exc:
        assert type(exc).__name__ == "InputError", repr(exc)


@SETTINGS
@given(value=JSON)
def test_arbitrary_json_exits_0_or_2(value):
    assert cli(value) in (0, 2)


@SETTINGS
@given(text=st.text(max_size=40))
def test_arbitrary_text_exits_0_or_2(text):
    assert cli(text) in (0, 2)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _replace(node, path, value):
    if not path:
        return value
    node = copy.deepcopy(node)
    cur = node
    for step in path[:-1]:
        cur = cur[step]
    cur[path[-1]] = value
    return node


@SETTINGS
@given(data=st.data())
def test_a_bundle_with_a_junk_element_is_still_evaluated(data):
    """Junk inside a resource makes that resource a problem (or is ignored); the Bundle is still
    usable, so the run exits 0 and never raises."""
    _, bundle_, _ = data.draw(CASE)
    inside = [p for p in _paths(bundle_) if len(p) >= 4 and p[0] == "entry" and p[2] == "resource"]
    path = data.draw(st.sampled_from(inside))
    mutated = _replace(bundle_, path, data.draw(JSON))
    evaluate_or_input_error(mutated)
    assert cli(mutated) == 0, f"junk at {path}"


@SETTINGS
@given(data=st.data())
def test_a_bundle_with_junk_anywhere_exits_0_or_2(data):
    _, bundle_, _ = data.draw(CASE)
    path = data.draw(st.sampled_from(list(_paths(bundle_))))
    mutated = _replace(bundle_, path, data.draw(JSON))
    evaluate_or_input_error(mutated)
    assert cli(mutated) in (0, 2), f"junk at {path}"


@pytest.mark.parametrize("kind", ["AuditEvent", "Consent", "Provenance", "DocumentReference",
                                  "Communication", "Patient", "RelatedPerson"])
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.dictionaries(st.sampled_from(
    ["id", "status", "type", "subtype", "outcome", "period", "recorded", "purposeOfEvent",
     "agent", "entity", "scope", "category", "patient", "dateTime", "performer", "provision",
     "policyRule", "policy", "sourceAttachment", "meta", "target", "signature", "date",
     "securityLabel", "context", "docStatus", "about", "recipient", "statusReason", "birthDate",
     "relationship", "sent", "subject", "sender", "reasonCode", "payload", "basedOn"]),
    JSON, max_size=6))
def test_junk_resources_in_a_collection_bundle_exit_0(kind, fields):
    res = {"resourceType": kind, "id": "junk", **fields}
    data = {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": res}, {"resource": disclosure("AuditEvent/ok")},
                      {"resource": patient()}]}
    evaluate_or_input_error(data)
    assert cli(data) == 0
