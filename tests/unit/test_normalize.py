"""normalize.py: tolerant, fast reading of FHIR R4 JSON into domain objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from consent_gap.evaluate import evaluate
from consent_gap.mappings import load_rules
from consent_gap.normalize import (
    InputError,
    Unreadable,
    format_instant,
    normalize,
    parse_instant,
    parse_text,
    resources_of,
)
from support.engine import expect, finding
from support.fhir import (
    bundle,
    consent,
    disclosure,
    document,
    organization,
    patient,
    practitioner,
    world,
)


@pytest.mark.parametrize(("text", "want"), [
    ("2025-04-02", datetime(2025, 4, 2, tzinfo=UTC)),
    ("2025-04", datetime(2025, 4, 1, tzinfo=UTC)),
    ("2025", datetime(2025, 1, 1, tzinfo=UTC)),
    ("2025-04-02T10:00:00Z", datetime(2025, 4, 2, 10, tzinfo=UTC)),
    ("2025-04-02T12:00:00+02:00", datetime(2025, 4, 2, 10, tzinfo=UTC)),
    ("2025-04-02T10:00:00.250Z", datetime(2025, 4, 2, 10, 0, 0, 250000, tzinfo=UTC)),
])
def test_dates_are_utc_instants(text, want):
    assert parse_instant(text, "x") == want


@pytest.mark.parametrize("bad", ["yesterday", "2025-13-01", "", 20250401, None, "2025-02-30"])
def test_a_date_that_is_not_a_date_is_unreadable(bad):
    with pytest.raises(Unreadable, match=r"period\.start is not a date"):
        parse_instant(bad, "period.start")


def test_format_instant_uses_z():
    assert format_instant(parse_instant("2025-04-02T12:00:00+02:00", "x")) == \
        "2025-04-02T10:00:00Z"


def _with_noise(resource: dict) -> dict:
    """Extensions, modifierExtensions, unknown elements, text, contained: all ignored."""
    noisy = dict(resource)
    noisy["extension"] = [{"url": "http://example.org/x", "valueString": "y"}]
    noisy["modifierExtension"] = []
    noisy["_status"] = {"extension": [{"url": "http://example.org/z", "valueCode": "q"}]}
    noisy["somethingNew"] = {"nested": [1, 2, 3]}
    noisy["text"] = {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'/>"}
    return noisy


def test_extensions_and_unknown_elements_change_nothing():
    plain = finding(world(consent(), disclosure()))
    noisy = finding([_with_noise(r) for r in world(consent(), disclosure())])
    assert noisy == plain
    assert plain["decision"] == "authorized"


def test_missing_optional_fields_are_tolerated():
    ae = disclosure(purposes=(), notify=())
    del ae["source"]
    del ae["action"]
    got = finding([*world(), ae])
    expect(got, decision="review", reasons=["purpose-missing", "no-authorization"])


def test_unreadable_consent_is_a_problem_and_the_disclosure_is_still_decided():
    bad = consent("Consent/c-9")
    bad["provision"]["period"]["start"] = "not-a-date"
    report = evaluate(bundle(world(bad, disclosure()))).to_json()
    assert report["problems"] == [{"resource": "Consent/c-9",
                                   "message": "provision.period.start is not a date"}]
    assert [f["decision"] for f in report["findings"]] == ["unauthorized"]


def test_unreadable_disclosure_is_a_problem_and_others_are_decided():
    bad = disclosure("AuditEvent/bad", when="soon")
    good = disclosure("AuditEvent/good")
    report = evaluate(bundle(world(consent(), bad, good))).to_json()
    assert report["problems"] == [{"resource": "AuditEvent/bad",
                                   "message": "period.start is not a date"}]
    assert [f["disclosure"] for f in report["findings"]] == ["AuditEvent/good"]


def test_wrong_shapes_are_problems_not_crashes():
    ae = disclosure("AuditEvent/odd")
    ae["entity"] = "not a list"
    ae["agent"] = [None, 5, {"who": "nope"}]
    c = consent("Consent/odd")
    c["provision"] = ["not", "an", "object"]
    report = evaluate(bundle(world(c, ae)))
    assert [p.resource for p in report.problems] == ["Consent/odd"]
    assert [f.disclosure for f in report.findings] == ["AuditEvent/odd"]


def test_failed_and_non_disclosure_audit_events_are_ignored():
    failed = disclosure("AuditEvent/f", outcome="8")
    login = disclosure("AuditEvent/l", type_code="110114")
    no_subtype = disclosure("AuditEvent/s", subtype=None)
    absent = disclosure("AuditEvent/a", outcome=None)
    report = evaluate(bundle(world(failed, login, no_subtype, absent)))
    assert [f.disclosure for f in report.findings] == ["AuditEvent/a"]


def test_recorded_is_used_without_period_start():
    ae = disclosure(when=None, recorded="2025-06-02T00:00:00Z")
    assert finding(world(ae))["occurred"] == "2025-06-02T00:00:00Z"


def test_absolute_and_urn_references_resolve():
    resources = world(consent(), disclosure())
    entries = []
    for r in resources:
        full = f"https://ehr.example/fhir/{r['resourceType']}/{r['id']}"
        entries.append({"fullUrl": full, "resource": r})
    ae = entries[-1]["resource"]
    ae["entity"][1]["what"]["reference"] = "https://ehr.example/fhir/DocumentReference/d1"
    entries[-2]["resource"]["patient"]["reference"] = \
        "https://ehr.example/fhir/Patient/p1/_history/3"
    doc_entry = next(e for e in entries if e["resource"]["resourceType"] == "DocumentReference")
    doc_entry["fullUrl"] = "urn:uuid:0b8c7a9e-1111-2222-3333-444455556666"
    data = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    got = evaluate(data).to_json()["findings"][0]
    assert got["decision"] == "authorized"


def test_confidentiality_labels_never_count():
    rules = load_rules()
    data = document(labels=("R", "MH"), meta_labels=("N",))
    ae = disclosure(entity_labels={"DocumentReference/d1": ("V", "SDV")})
    dataset = normalize([patient(), practitioner(), organization(), data, ae], rules)
    codes = {code for _system, code in dataset.disclosures[0].entities[0].labels}
    assert codes == {"MH", "SDV"}


def test_history_bundle_and_non_fhir_are_input_errors():
    with pytest.raises(InputError, match="history"):
        resources_of({"resourceType": "Bundle", "type": "history", "entry": []})
    with pytest.raises(InputError, match="Patient"):
        resources_of({"resourceType": "Patient", "id": "p"})
    with pytest.raises(InputError):
        resources_of("a string")


def test_a_plain_array_and_junk_items():
    items, problems = resources_of([{"resourceType": "Patient", "id": "p"}, 3, {"x": 1}])
    assert len(items) == 1
    assert [p.resource for p in problems] == ["item 1", "item 2"]


def test_ndjson_is_read_line_by_line():
    lines = "\n".join(json.dumps(r) for r in world(consent(), disclosure()))
    data = parse_text(lines)
    assert isinstance(data, list) and len(data) == 6
    assert evaluate(data).findings[0].decision == "authorized"
    with pytest.raises(InputError, match="not JSON"):
        parse_text("{nope")


def test_shuffling_entries_changes_nothing():
    resources = world(consent(), consent("Consent/c2", date_time="2025-01-11T00:00:00Z"),
                      disclosure("AuditEvent/a"), disclosure("AuditEvent/b", purposes=("GOV",)))
    forward = evaluate(bundle(resources)).to_json()
    backward = evaluate(bundle(list(reversed(resources)))).to_json()
    assert forward == backward


def test_every_patient_gets_a_chart_even_without_disclosures():
    dataset = normalize(world(consent()), load_rules())
    chart = dataset.charts["Patient/p1"]
    assert [c.reference for c in chart.consents] == ["Consent/c1"]
    assert chart.patient is not None and chart.patient.birth_date.isoformat() == "1980-04-01"
    assert dataset.disclosures == []


def test_a_resource_listed_twice_is_decided_once():
    ae = disclosure()
    report = evaluate(bundle(world(consent(), ae, ae)))
    assert [f.disclosure for f in report.findings] == ["AuditEvent/ae1"]


def test_problems_name_the_entry_and_the_bundle_it_sits_in():
    nested = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"fullUrl": "urn:x"}, {"resource": {"id": "no-type"}}]}
    history = {"resourceType": "Bundle", "id": "h1", "type": "history", "entry": []}
    items, problems = resources_of([nested, history, patient()])
    assert [resource["id"] for resource, _url in items] == ["p1"]
    assert [(p.resource, p.message) for p in problems] == [
        ("item 0 entry 0", "has no resource"),
        ("item 0 entry 1", "is not a FHIR resource"),
        ("Bundle/h1", "a history Bundle holds versions, not a data set; export the current "
                      "resources"),
    ]


def test_ndjson_bytes_with_a_bom_and_blank_lines():
    text = "\ufeff" + "\n\n".join(json.dumps(r) for r in world(consent(), disclosure()))
    assert len(parse_text(text.encode("utf-8"))) == 6
    with pytest.raises(InputError, match="not UTF-8"):
        parse_text(b"\xff\xfe\xfa" * 10)


def test_full_urls_without_an_alias_resolve_as_an_alias_for_each_would():
    """`_Reader.add` keeps no alias for a fullUrl that is the base found last + Type/id (they
    resolve through the bases): every fullUrl, plain or versioned, must still name what an
    alias kept for every entry (the last entry giving it) names, odd ids and bases included."""
    from consent_gap.normalize import _Reader

    entries = [
        ("http://x/fhir/Patient/p1", "Patient", "p1"),
        ("http://x/fhir/Organization/o1", "Organization", "o1"),
        ("http://x/fhir/Organization/o2", "Organization", "o3"),  # another resource's URL
        ("http://x/fhir/Organization/o2", "Organization", "o2"),  # ... then its own: wins
        ("http://x/fhir/Patient/p4", "Patient", "p4"),
        ("http://x/fhir/Patient/p4", "Patient", "p5"),  # its own first, then another's
        ("http://x/fhir/Patient/a/b", "Patient", "a/b"),  # an id with a slash
        ("http://x/fhir/_history/h1", "_history", "h1"),
        ("http://x/fhir//Patient/d1", "Patient", "d1"),  # a base ending in two slashes
        ("http://x/fhir//Patient/d2", "Patient", "d2"),
        ("http://x/_history/fhir/Patient/v1", "Patient", "v1"),
        ("urn:uuid:0b8c7a9e-1111-2222-3333-444455556666", "Patient", "u1"),
        ("https://y/r4/Patient/p6", "Patient", "p6"),
        ("https://y/r4/Patient/p7", "Patient", "p7"),
        ("http://x/fhir/Patient/p8", "Patient", "p8"),
    ]
    items = [({"resourceType": kind, "id": rid}, url) for url, kind, rid in entries]
    rules = load_rules()
    lean, full = _Reader(rules), _Reader(rules)
    lean.add(items)
    full.add(items)
    for _resource, url in items:
        full.refs.alias[url] = _resource["resourceType"] + "/" + _resource["id"]
    assert len(lean.refs.alias) < len(full.refs.alias)  # some were left out
    for url, _kind, _rid in entries:
        for text in (url, url + "/_history/2", url + "/"):
            assert lean.refs.canonical(text) == full.refs.canonical(text), text
