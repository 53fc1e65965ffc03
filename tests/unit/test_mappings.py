"""mappings.py: the packaged tables load, and a broken table names its file and entry."""

from __future__ import annotations

import pytest
from consent_gap.domain import Decision
from consent_gap.mappings import ENV_FOLDER, MappingsError, load_rules
from tablecopy import PACKAGED, edit


def test_packaged_tables_load_with_sources_and_dates():
    rules = load_rules()
    assert rules.purposes.covered("ETREAT", frozenset({"TREAT"}))
    assert not rules.purposes.covered("TREAT", frozenset({"ETREAT"}))
    assert rules.exceptions.access.basis == "hipaa-164.524-access"
    assert rules.exceptions.by_id["subpoena-only"].decision is Decision.UNAUTHORIZED
    assert {"purposes.toml", "exceptions.toml", "sensitivity.toml"} <= set(rules.sources)
    assert all(source and date for source, date in rules.sources.values())


def test_the_default_disclosure_channel_is_the_contracts():
    """CONTRACT 1.1: the default channel is disclosure-channel#release-of-information."""
    codes = load_rules().disclosures
    assert codes.channels == {("https://consent-gap.dev/fhir/CodeSystem/disclosure-channel",
                               "release-of-information")}
    assert codes.communication_status == {"completed"}
    assert codes.notice_about_types == {"AuditEvent", "Communication"}


def test_jurisdictions_cover_the_states_and_dc():
    rules = load_rules()
    assert len(rules.jurisdictions) == 51
    assert rules.jurisdiction("us-ca").duty == "mandatory"
    assert rules.jurisdiction("US-MS").age_of_majority == 21


def test_load_is_cached():
    assert load_rules() is load_rules()


def test_a_copy_loads_and_env_points_at_it(folder, monkeypatch):
    edit(folder, "representatives.toml", "default_age_of_majority = 18",
         "default_age_of_majority = 20")
    monkeypatch.setenv(ENV_FOLDER, str(folder))
    assert load_rules().representatives.default_age_of_majority == 20
    monkeypatch.delenv(ENV_FOLDER)
    assert load_rules().representatives.default_age_of_majority == 18


@pytest.mark.parametrize(("name", "old", "new", "message"), [
    ("exceptions.toml", 'decision = "unauthorized"\naccountable = true\nreason = '
     '"subpoena-without-court-order"', 'decision = "maybe"\naccountable = true',
     r"exceptions.toml: \[\[row\]\] #\d+ subpoena-only: unknown decision 'maybe'"),
    ("exceptions.toml", 'purposes = ["GOV"]', 'purposes = ["GOVT"]',
     r"exceptions.toml: \[\[row\]\] #\d+ government: purpose 'GOVT' is not in purposes.toml"),
    ("exceptions.toml", 'reason = "purpose-unmapped"', 'reason = "no-idea"',
     r"exceptions.toml: \[other_purpose\] purpose-unmapped: unknown reason code 'no-idea'"),
    ("exceptions.toml", 'basis = "abuse-report"\n', '',
     r"exceptions.toml: \[\[row\]\] #\d+ abuse-report: a required row needs a basis"),
    ("exceptions.toml", 'psychotherapy_notes = "review"\npart2 = "stand"\n\n[[row]]',
     'psychotherapy_notes = "sometimes"\npart2 = "stand"\n\n[[row]]',
     r"exceptions.toml: \[access\] access: psychotherapy_notes must be one of"),
    ("purposes.toml", 'COC = "TREAT"', 'COC = "NOSUCH"',
     r"purposes.toml: \[parent\] COC: unknown parent 'NOSUCH'"),
    ("purposes.toml", 'TREAT = "PurposeOfUse"', 'TREAT = "COC"',
     r"purposes.toml: \[parent\] \w+: the hierarchy has a cycle"),
    ("sensitivity.toml", '{ system = "http://terminology.hl7.org/CodeSystem/v3-ActCode", '
     'code = "PSYTHPN" }', '{ system = "", code = "PSYTHPN" }',
     r"sensitivity.toml: \[psychotherapy_notes\].labels\[0\]: a coding needs"),
    ("consents.toml", "[restriction]", "[restrictions]",
     r"consents.toml: \[restriction\]: missing table"),
    ("disclosures.toml", 'date = "2026-12-02"', 'date = "last week"',
     r"disclosures.toml: \[meta\]: date must be YYYY-MM-DD"),
    ("disclosures.toml", "\n[communication]\n", "\n[communications]\n",
     r"disclosures.toml: \[communication\]: missing table"),
    ("disclosures.toml", 'channels = [{ system = "https://consent-gap.dev/fhir/CodeSystem/'
     'disclosure-channel", code = "release-of-information" }]', "channels = []",
     r"disclosures.toml: \[communication\]: channels must be a non-empty list of codings"),
    ("legal-instruments.toml", "[meta]\n", "[meta]\nsource = [\n",
     r"legal-instruments.toml: file: not valid TOML"),
    ("jurisdictions/us-states.toml", 'duty = "mandatory"', 'duty = "sometimes"',
     r"jurisdictions/us-states.toml: \[\[jurisdiction\]\] #\d+ US-\w\w: duty must be one of"),
])
def test_broken_table_names_file_and_entry(folder, name, old, new, message):
    edit(folder, name, old, new)
    with pytest.raises(MappingsError, match=message):
        load_rules(folder)


def test_missing_file(folder):
    (folder / "representatives.toml").unlink()
    with pytest.raises(MappingsError, match=r"representatives.toml: file: missing"):
        load_rules(folder)


def test_missing_meta_source(folder):
    edit(folder, "purposes.toml", "source = ", "origin = ")
    with pytest.raises(MappingsError, match=r"purposes.toml: \[meta\]: missing source"):
        load_rules(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(MappingsError, match="folder: not found"):
        load_rules(tmp_path / "nowhere")


def test_every_table_has_meta_source_and_date():
    for path in sorted(PACKAGED.rglob("*.toml")):
        text = path.read_text()
        assert "[meta]" in text and "source = " in text and "date = " in text, path.name
