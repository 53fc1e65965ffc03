"""The accounting of disclosures (CONTRACT 8): on every example, at as-of times that cut the
six-year window at both ends, exactly the accountable findings in the window; the window's
arithmetic (calendar years, 29 February, both ends included); summaries; names, addresses
and descriptions from the chart's resources; the command's exits and formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from consent_gap.accounting import (
    account,
    describe_item,
    parse_as_of,
    patient_reference,
    purpose_sentence,
    window_start,
)
from consent_gap.cli import main
from consent_gap.domain import DataItem
from consent_gap.evaluate import evaluate
from consent_gap.mappings import load_rules
from consent_gap.normalize import format_instant, one_line_address, parse_instant
from support.fhir import (
    ACT_CODE,
    bundle,
    disclosure,
    document,
    instrument,
    organization,
    patient,
    practitioner,
    sent_disclosure,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "examples"
CASES = sorted(p.name.removesuffix(".expected.json") for p in EXAMPLES.glob("*.expected.json"))


def _example(name: str) -> tuple[dict, str | None]:
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    expected = json.loads((EXAMPLES / f"{name}.expected.json").read_text())
    return data, expected.get("jurisdiction")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["accounting", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _accountable(data: dict, jurisdiction: str | None) -> list[dict]:
    return [f for f in evaluate(data, jurisdiction).to_json()["findings"] if f["accountable"]]


def _cuts(findings: list[dict]) -> list[tuple[datetime, list[str]]]:
    """As-of times that cut the window at each end, with the disclosures each must list."""
    times = [parse_instant(f["occurred"], "occurred") for f in findings]
    latest, earliest = max(times), min(times)
    second = timedelta(seconds=1)
    cuts = []
    for as_of in (latest, latest - second, earliest, earliest - second,
                  window_plus(earliest), window_plus(earliest) + second,
                  window_plus(latest) + second):
        start = window_start(as_of)
        cuts.append((as_of, [f["disclosure"] for f, t in zip(findings, times, strict=True)
                             if start <= t <= as_of]))
    return cuts


def window_plus(moment: datetime) -> datetime:
    """The as-of whose window starts exactly at `moment` (six calendar years later)."""
    return moment.replace(year=moment.year + 6)


# ------------------------------------------------------------------------------------------
# Every example, through the command line
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_every_example_lists_exactly_the_accountable_findings_in_the_window(name, capsys):
    data, jurisdiction = _example(name)
    findings = _accountable(data, jurisdiction)
    patients = {f.patient for f in evaluate(data, jurisdiction).findings}
    path = str(EXAMPLES / f"{name}.json")
    where = ["--jurisdiction", jurisdiction] if jurisdiction else []
    if not findings:  # nothing accountable: an empty accounting whatever the as-of
        for pid in patients:
            code, out, err = _run(capsys, path, "--patient", pid, "--as-of", "2026-12-02",
                                  *where)
            assert code == 0, err
            assert json.loads(out)["entries"] == []
        return
    pid = findings[0]["patient"]
    cuts = _cuts(findings)
    assert any(not listed for _, listed in cuts), "some cut must empty the window"
    assert any(len(listed) == len(findings) for _, listed in cuts)
    for as_of, listed in cuts:
        code, out, err = _run(capsys, path, "--patient", pid, "--as-of",
                              format_instant(as_of), *where)
        assert code == 0, err
        got = json.loads(out)
        assert got["patient"] == pid
        assert got["as_of"] == format_instant(as_of)
        assert got["from"] == format_instant(window_start(as_of))
        assert [e["disclosure"] for e in got["entries"]] == listed, as_of
        by_ref = {f["disclosure"]: f for f in findings}
        for item in got["entries"]:
            finding = by_ref[item["disclosure"]]
            assert item["date"] == finding["occurred"][:10]
            assert item["decision"] == finding["decision"]
            assert item["basis"] == finding["basis"]
            assert item["purpose"].endswith(".") and item["description"]
            assert set(item) == {"disclosure", "date", "recipient", "description", "purpose",
                                 "basis", "request", "decision"}
            assert set(item["recipient"]) == {"reference", "name", "address"}


def test_unauthorized_disclosures_appear():
    data, jurisdiction = _example("09-subpoena-only")
    report = evaluate(data, jurisdiction)
    got = account(data, report, load_rules(), "Patient/p-equillon",
                  parse_as_of("2026-12-02")).to_json()
    assert [(e["disclosure"], e["decision"]) for e in got["entries"]] == [
        ("AuditEvent/ae-equillon-1", "unauthorized")]
    assert got["entries"][0]["purpose"] == (
        "For a legal proceeding; no authorization or legal exception permitted it.")


def test_the_example_of_the_contract_shape_duty_to_warn(capsys):
    code, out, _ = _run(capsys, str(EXAMPLES / "06-duty-to-warn-ca.json"), "--patient",
                        "Patient/p-dhpike", "--as-of", "2026-12-02", "--jurisdiction", "US-CA")
    assert code == 0
    got = json.loads(out)
    assert got["as_of"] == "2026-12-02T00:00:00Z" and got["from"] == "2020-12-02T00:00:00Z"
    police, victim = got["entries"]
    assert police["recipient"] == {
        "reference": "Organization/org-alden-valley-pd",
        "name": "Alden Valley Police Department",
        "address": "1775 Alden Valley Civic Loop, Sacramento, CA 95814"}
    assert victim["recipient"] == {"reference": "RelatedPerson/rp-dhpike-target",
                                   "name": "Gareth Lindqvist-Moore", "address": None}
    assert police["description"] == (
        "Observation: Violence risk assessment (Observation/obs-dhpike-risk)")
    assert police["basis"] == "duty-to-warn-or-protect" and police["request"] is None
    assert "duty to warn or protect" in police["purpose"]


def test_the_court_order_is_the_request(capsys):
    code, out, err = _run(capsys, str(EXAMPLES / "10-court-order.json"), "--patient",
                        "p-cnakamura", "--as-of", "2026-12-02", "--jurisdiction", "US-CA")
    assert code == 0, err
    entry = json.loads(out)["entries"][0]
    assert entry["request"] == "DocumentReference/dr-cnakamura-order"
    assert entry["description"] == ("Summary of episode note: Treatment dates and diagnosis "
                                    "summary (DocumentReference/dr-cnakamura-summary)")
    assert "court order" in entry["purpose"] and "164.512(e)" in entry["purpose"]


def test_a_disclosure_sent_as_a_communication(capsys):
    code, out, err = _run(capsys, str(EXAMPLES / "22-communication-subpoena-only.json"),
                        "--patient", "p-equillon", "--as-of", "2026-12-02")
    assert code == 0, err
    entry = json.loads(out)["entries"][0]
    assert entry["disclosure"] == "Communication/cm-ae-equillon-1"
    assert entry["recipient"]["name"] == "Brightwater & Moss LLP"
    assert "DocumentReference/dr-equillon-records" in entry["description"]
    assert "subpoena" not in entry["description"].lower()  # the instrument is not data


# ------------------------------------------------------------------------------------------
# The window
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("as_of", "start"), [
    ("2026-12-02T00:00:00Z", "2020-12-02T00:00:00Z"),
    ("2026-12-02", "2020-12-02T00:00:00Z"),  # a date alone: its first instant
    ("2026-12-02T15:30:00+02:00", "2020-12-02T13:30:00Z"),
    ("2028-02-29T10:00:00Z", "2022-02-28T10:00:00Z"),  # the longer window from 29 Feb
    ("2030-02-28T10:00:00Z", "2024-02-28T10:00:00Z"),
])
def test_six_calendar_years_before_the_as_of(as_of, start):
    assert format_instant(window_start(parse_as_of(as_of))) == start


def _chart(*disclosures: dict) -> dict:
    return bundle([patient(), organization(), practitioner(), document(), *disclosures])


def test_both_ends_of_the_window_are_included():
    chart = _chart(disclosure("AuditEvent/old", when="2020-12-02T00:00:00Z"),
                   disclosure("AuditEvent/new", when="2026-12-02T00:00:00Z"),
                   disclosure("AuditEvent/older", when="2020-12-01T23:59:59Z"),
                   disclosure("AuditEvent/later", when="2026-12-02T00:00:01Z"))
    report = evaluate(chart)
    got = account(chart, report, load_rules(), "Patient/p1", parse_as_of("2026-12-02"))
    assert [e.disclosure for e in got.entries] == ["AuditEvent/old", "AuditEvent/new"]


def test_entries_are_ordered_by_occurred_then_disclosure_and_exclude_the_not_accountable():
    chart = _chart(disclosure("AuditEvent/b", when="2025-03-01T00:00:00Z"),
                   disclosure("AuditEvent/a", when="2025-03-01T00:00:00Z"),
                   disclosure("AuditEvent/c", when="2025-01-01T00:00:00Z"),
                   disclosure("AuditEvent/tpo", when="2025-02-01T00:00:00Z",
                              recipient="Practitioner/pr-src", purposes=("TREAT",)))
    report = evaluate(chart)
    got = account(chart, report, load_rules(), "Patient/p1", parse_as_of("2026-01-01"))
    assert [e.disclosure for e in got.entries] == ["AuditEvent/c", "AuditEvent/a",
                                                   "AuditEvent/b"]


def test_another_patients_disclosures_are_not_listed():
    other = disclosure("AuditEvent/other", patient_ref="Patient/p2")
    chart = bundle([patient(), patient("Patient/p2"), organization(), document(),
                    disclosure(), other])
    got = account(chart, evaluate(chart), load_rules(), "Patient/p1",
                  parse_as_of("2026-01-01"))
    assert [e.disclosure for e in got.entries] == ["AuditEvent/ae1"]


# ------------------------------------------------------------------------------------------
# Summaries (164.528(b)(3))
# ------------------------------------------------------------------------------------------


def test_summary_of_the_example_with_two_unauthorized_disclosures_to_one_insurer(capsys):
    code, out, err = _run(capsys, str(EXAMPLES / "14-one-consent-over-time-deny-class.json"),
                        "--patient", "p-tquill", "--as-of", "2026-12-02", "--summarize")
    assert code == 0, err
    (entry,) = json.loads(out)["entries"]
    assert (entry["first"], entry["last"], entry["count"]) == ("2025-02-18", "2025-12-01", 2)
    assert entry["disclosure"] == "AuditEvent/ae-tquill-2"
    assert entry["disclosures"] == ["AuditEvent/ae-tquill-2", "AuditEvent/ae-tquill-4"]
    assert entry["recipient"]["name"] == "Kestrel Disability Insurance Company"


def test_summaries_group_on_recipient_purpose_and_basis():
    other = organization("Organization/org-other")
    chart = bundle([patient(), organization(), other, document(),
                    disclosure("AuditEvent/a1", when="2025-01-01T00:00:00Z"),
                    disclosure("AuditEvent/a2", when="2025-03-01T00:00:00Z"),
                    disclosure("AuditEvent/a3", when="2025-05-01T00:00:00Z"),
                    disclosure("AuditEvent/b1", when="2025-02-01T00:00:00Z",
                               recipient="Organization/org-other"),
                    disclosure("AuditEvent/c1", when="2025-04-01T00:00:00Z",
                               purposes=("HLEGAL",))])
    got = account(chart, evaluate(chart), load_rules(), "Patient/p1",
                  parse_as_of("2026-01-01"), summarized=True).to_json()
    rows = [(e["disclosure"], e["first"], e["last"], e["count"]) for e in got["entries"]]
    assert rows == [("AuditEvent/a1", "2025-01-01", "2025-05-01", 3),
                    ("AuditEvent/b1", "2025-02-01", "2025-02-01", 1),
                    ("AuditEvent/c1", "2025-04-01", "2025-04-01", 1)]


def test_a_summary_never_merges_an_unauthorized_with_a_disclosure_under_review():
    """Both have no basis; an unauthorized one and one under review are not one "basis"."""
    chart = bundle([patient(), organization(), document(),
                    disclosure("AuditEvent/x1", when="2025-01-01T00:00:00Z",
                               purposes=("HLEGAL",)),
                    disclosure("AuditEvent/x2", when="2025-02-01T00:00:00Z",
                               purposes=("HLEGAL",), instruments=("DocumentReference/sub",)),
                    instrument("DocumentReference/sub", "subpoena",
                               date="2025-01-15T00:00:00Z")])
    report = evaluate(chart)
    assert [f.decision for f in report.findings] == ["review", "unauthorized"]
    got = account(chart, report, load_rules(), "Patient/p1", parse_as_of("2026-01-01"),
                  summarized=True).to_json()
    assert [e["count"] for e in got["entries"]] == [1, 1]
    assert got["entries"][1]["request"] == "DocumentReference/sub"


# ------------------------------------------------------------------------------------------
# Names, addresses, descriptions, purposes
# ------------------------------------------------------------------------------------------


def test_a_recipient_named_by_identifier_takes_the_resource_carrying_it_else_the_display():
    org = organization("Organization/org-x", identifier=("urn:npi", "123"))
    org["name"] = "Harbor Clinic"
    org["address"] = [{"line": ["1 Main St"], "city": "Alden", "state": "CA",
                       "postalCode": "95000", "country": "US"}]
    by_id = disclosure("AuditEvent/i1", recipient=None, recipient_identifier=("urn:npi", "123"))
    unknown = disclosure("AuditEvent/i2", recipient=None,
                         recipient_identifier=("urn:npi", "999"))
    unknown["agent"][-1]["who"]["display"] = "Dr. Ana Ruiz"
    bare = disclosure("AuditEvent/i3", recipient=None, recipient_identifier=("urn:npi", "777"))
    chart = bundle([patient(), org, document(), by_id, unknown, bare])
    got = account(chart, evaluate(chart), load_rules(), "Patient/p1",
                  parse_as_of("2026-01-01")).to_json()
    recipients = {e["disclosure"]: e["recipient"] for e in got["entries"]}
    assert recipients["AuditEvent/i1"] == {"reference": "Organization/org-x",
                                           "name": "Harbor Clinic",
                                           "address": "1 Main St, Alden, CA 95000"}
    assert recipients["AuditEvent/i2"] == {"reference": None, "name": "Dr. Ana Ruiz",
                                           "address": None}
    assert recipients["AuditEvent/i3"]["name"] == "777"


def test_a_practitioner_role_is_named_by_its_practitioner_and_organization():
    role = {"resourceType": "PractitionerRole", "id": "role-1",
            "practitioner": {"reference": "Practitioner/pr-2"},
            "organization": {"reference": "Organization/org-rcpt"}}
    person = {"resourceType": "Practitioner", "id": "pr-2",
              "name": [{"given": ["Ana"], "family": "Ruiz", "use": "official"}]}
    org = organization()
    org["address"] = [{"text": "9 Elm Road\nAlden CA 95000"}]
    chart = bundle([patient(), org, person, role, document(),
                    disclosure(recipient="PractitionerRole/role-1", purposes=("HLEGAL",))])
    (entry,) = account(chart, evaluate(chart), load_rules(), "Patient/p1",
                       parse_as_of("2026-01-01")).to_json()["entries"]
    assert entry["recipient"] == {"reference": "PractitionerRole/role-1",
                                  "name": "Ana Ruiz, Recipient",
                                  "address": "9 Elm Road, Alden CA 95000"}


def test_data_described_by_labels_reads_as_what_the_labels_mean():
    ae = disclosure(data=(), purposes=("HLEGAL",))
    ae["entity"].append({"securityLabel": [{"system": ACT_CODE, "code": "PSYTHPN"}]})
    ae["entity"].append({"what": {"reference": "DocumentReference/gone"},
                         "securityLabel": [{"system": ACT_CODE, "code": "42CFRPart2"}]})
    chart = bundle([patient(), organization(), ae])
    (entry,) = account(chart, evaluate(chart), load_rules(), "Patient/p1",
                       parse_as_of("2026-01-01")).to_json()["entries"]
    assert entry["description"] == (
        "Psychotherapy notes; Substance use disorder treatment records (42 CFR Part 2) "
        "(DocumentReference/gone)")


@pytest.mark.parametrize(("item", "said"), [
    (DataItem("DocumentReference/dr-1", "DocumentReference", kind="Progress note",
              resolved=True), "Progress note (DocumentReference/dr-1)"),
    (DataItem("DiagnosticReport/r", "DiagnosticReport", title="Lab panel", resolved=True),
     "Diagnostic report: Lab panel (DiagnosticReport/r)"),
    (DataItem("CarePlan/c", "CarePlan"), "Care plan (CarePlan/c)"),
    (DataItem(None, None), "Information the record does not describe"),
    (DataItem(None, None, title="letter.pdf"), "letter.pdf"),
])
def test_describe_item(item, said):
    assert describe_item(item) == said


def test_a_communication_with_text_only_is_described_as_undescribed():
    chart = bundle([patient(), organization(),
                    sent_disclosure(data=(), strings=("see attached",), purposes=("HLEGAL",))])
    (entry,) = account(chart, evaluate(chart), load_rules(), "Patient/p1",
                       parse_as_of("2026-01-01")).to_json()["entries"]
    assert entry["description"] == "Information the record does not describe"
    assert entry["recipient"]["name"] == "Recipient"


@pytest.mark.parametrize(("purposes", "basis", "decision", "said"), [
    (("THREAT",), "hipaa-164.512(j)-serious-threat", "permitted",
     "To prevent or lessen a serious threat to someone's health or safety, as HIPAA permits "
     "to avert a serious and imminent threat (45 CFR 164.512(j))."),
    (("PUBHLTH",), "abuse-report", "required",
     "For public health reporting, as the law requires of a mandated reporter of abuse or "
     "neglect (45 CFR 164.512(b), (c))."),
    (("PATRQT",), "Consent/c-1", "authorized",
     "At the client's request, with the client's signed authorization (Consent/c-1)."),
    ((), None, "review",
     "For a purpose the record does not state; the practice is reviewing whether an "
     "authorization or a legal exception permitted it."),
    (("TREAT", "ZZZ"), None, "review",
     "For treatment and for the purpose recorded as ZZZ; the practice is reviewing whether "
     "an authorization or a legal exception permitted it."),
])
def test_purpose_sentence(purposes, basis, decision, said):
    assert purpose_sentence(purposes, basis, decision) == said


def test_every_basis_of_the_rules_and_every_purpose_has_words():
    from consent_gap.wording import GROUNDS as BASES
    from consent_gap.wording import PURPOSES

    rules = load_rules()
    bases = {row.basis for row in rules.exceptions.rows if getattr(row, "basis", None)}
    bases.add(rules.exceptions.access.basis)
    assert bases and bases <= set(BASES)
    # the purposes of use (the whole PurposeOfUse branch of v3-ActReason): words of the
    # product's own, else HL7's published display (purpose_sentence falls back to it)
    of_use = {c for c in rules.purposes.parents if "PurposeOfUse" in rules.purposes.lineage(c)}
    missing = of_use - set(PURPOSES) - set(rules.purposes.displays)
    assert of_use and not missing
    assert purpose_sentence(["HQUALIMP"], None, "review").startswith(
        "For health quality improvement")


def test_one_line_address():
    assert one_line_address([{"line": ["1 Main St", "Suite 2"], "city": "Alden",
                              "state": "CA", "postalCode": "95000", "country": "CA"}]) == \
        "1 Main St, Suite 2, Alden, CA 95000, CA"
    assert one_line_address([]) is None
    assert one_line_address([{"use": "home"}]) is None


# ------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------


def test_unknown_patient_is_exit_2_with_one_line(capsys):
    code, out, err = _run(capsys, str(EXAMPLES / "06-duty-to-warn-ca.json"),
                          "--patient", "p-nobody")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no patient Patient/p-nobody" in err


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "12/02/2026", ""])
def test_bad_as_of_is_exit_2(capsys, bad):
    code, out, err = _run(capsys, str(EXAMPLES / "06-duty-to-warn-ca.json"),
                          "--patient", "p-dhpike", "--as-of", bad)
    assert code == 2 and out == "" and err.count("\n") == 1 and "--as-of" in err


def test_file_and_fhir_base_together_is_exit_2(capsys):
    code, _, err = _run(capsys, str(EXAMPLES / "06-duty-to-warn-ca.json"), "--patient",
                        "p-dhpike", "--fhir-base", "http://127.0.0.1:9/fhir")
    assert code == 2 and "not both" in err


def test_neither_file_nor_server_is_exit_2(capsys, monkeypatch):
    monkeypatch.delenv("CONSENT_GAP_FHIR_BASE", raising=False)
    monkeypatch.delenv("CONSENT_GAP_CONFIG", raising=False)
    code, _, err = _run(capsys, "--patient", "p-dhpike")
    assert code == 2 and "--fhir-base" in err


def test_patient_reference_forms():
    assert patient_reference("p-1") == "Patient/p-1"
    assert patient_reference("Patient/p-1") == "Patient/p-1"
    assert patient_reference("http://x/fhir/Patient/p-1") == "Patient/p-1"
    with pytest.raises(ValueError):
        patient_reference("Organization/o-1")


def test_help_names_the_options_and_the_window(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["accounting", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for needed in ("--patient", "--as-of", "--format", "--summarize", "--fhir-base", "-o",
                   "six calendar years", "164.528", "exit status"):
        assert needed in out, needed


def test_html_is_escaped_and_names_practice_client_and_period(capsys, tmp_path, monkeypatch):
    chart = json.loads((EXAMPLES / "06-duty-to-warn-ca.json").read_text())
    for entry in chart["entry"]:
        if entry["resource"]["id"] == "org-alden-valley-pd":
            entry["resource"]["name"] = "<script>alert(1)</script> PD"
    path = tmp_path / "chart.json"
    path.write_text(json.dumps(chart))
    monkeypatch.setenv("CONSENT_GAP_ORGANIZATION", "Organization/org-cedar-hollow")
    out_file = tmp_path / "a.html"
    code, _, err = _run(capsys, str(path), "--patient", "p-dhpike", "--as-of", "2026-12-02",
                        "--jurisdiction", "US-CA", "--format", "html", "-o", str(out_file))
    assert code == 0, err
    html = out_file.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; PD" in html
    for needed in ("Cedar Hollow Counseling Associates", "Halvorsen-Pike", "2020-12-02",
                   "2026-12-02", "Date of the request", "@media print"):
        assert needed in html, needed


def test_pdf_is_a_pdf(capsys, tmp_path):
    out_file = tmp_path / "a.pdf"
    code, _, err = _run(capsys, str(EXAMPLES / "10-court-order.json"), "--patient",
                        "p-cnakamura", "--as-of", "2026-12-02", "--format", "pdf",
                        "-o", str(out_file))
    assert code == 0, err
    assert out_file.read_bytes()[:5] == b"%PDF-"


def test_default_as_of_is_now(capsys):
    before = datetime.now(UTC).replace(microsecond=0)
    code, out, _ = _run(capsys, str(EXAMPLES / "06-duty-to-warn-ca.json"),
                        "--patient", "p-dhpike")
    as_of = parse_instant(json.loads(out)["as_of"], "as_of")
    assert code == 0 and before <= as_of <= datetime.now(UTC)
