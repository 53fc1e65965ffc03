"""The purpose hierarchy is the whole of v3-ActReason as THO publishes it (CONTRACT.md 1, 1.2)."""

from __future__ import annotations

import tomllib

import pytest
from consent_gap.mappings import MappingsError, default_folder, load_rules

RULES = load_rules()
PURPOSES = RULES.purposes
TABLE = tomllib.loads(default_folder().joinpath("purposes.toml").read_text())


def test_the_table_names_its_source_and_version():
    meta = TABLE["meta"]
    assert "v3-ActReason" in meta["source"] and "THO" in meta["source"]
    assert meta["version"] and meta["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActReason"


@pytest.mark.parametrize("code", ["HQUALIMP", "ELIGVER", "REMITADV", "CLINTRL", "HRESCH",
                                  "PurposeOfUse", "BTG", "ERTREAT", "MLTRAINING", "PUBHLTH"])
def test_codes_the_old_table_lacked_or_the_contract_names_are_there(code):
    assert code in PURPOSES.parents


def test_the_whole_code_system_is_loaded_abstract_roots_included():
    assert len(PURPOSES.parents) >= 299
    assert "PurposeOfUse" in TABLE["meta"]["abstract"]
    assert "_ActInformationManagementReason" in PURPOSES.roots


def _chain_reaches_a_root(code: str, seen: tuple[str, ...] = ()) -> bool:
    assert code not in seen, f"cycle through {code}"
    parents = PURPOSES.parents[code]
    if not parents:
        return code in PURPOSES.roots
    return all(_chain_reaches_a_root(p, (*seen, code)) for p in parents)


@pytest.mark.parametrize("code", sorted(TABLE["parent"]) + sorted(TABLE["meta"]["roots"]))
def test_every_code_has_its_parent_chain_to_a_root(code):
    assert _chain_reaches_a_root(code)
    assert code in PURPOSES.lineage(code)


@pytest.mark.parametrize(("code", "ancestor"), [
    ("ERTREAT", "ETREAT"), ("ERTREAT", "TREAT"), ("ERTREAT", "PurposeOfUse"),
    ("HQUALIMP", "HOPERAT"), ("CLINTRCH", "HRESCH"), ("CLINTRL", "TREAT"), ("THREAT", "PUBHLTH"),
    ("FAMRQT", "PATRQT"), ("HLEGAL", "HOPERAT"), ("TREAT", "PurposeOfUse"),
])
def test_a_code_descends_from_its_ancestors(code, ancestor):
    assert PURPOSES.covered(code, frozenset({ancestor}))
    assert not PURPOSES.covered(ancestor, frozenset({code}))


def test_a_code_with_several_parents_descends_from_each():
    several = {c: p for c, p in PURPOSES.parents.items() if len(p) > 1}
    assert several
    for code, parents in several.items():
        for parent in parents:
            assert PURPOSES.covered(code, frozenset({parent}))


def _folder_with(tmp_path, text: str):
    folder = tmp_path / "m"
    folder.mkdir()
    for item in default_folder().iterdir():
        if item.name.endswith(".toml"):
            (folder / item.name).write_text(item.read_text())
    jur = folder / "jurisdictions"
    jur.mkdir()
    for item in default_folder().joinpath("jurisdictions").iterdir():
        (jur / item.name).write_text(item.read_text())
    (folder / "purposes.toml").write_text(text)
    return folder


def test_a_code_whose_parent_is_unknown_is_refused(tmp_path):
    text = default_folder().joinpath("purposes.toml").read_text().replace(
        'ERTREAT = "ETREAT"', 'ERTREAT = "NOSUCH"')
    with pytest.raises(MappingsError, match="unknown parent"):
        load_rules(_folder_with(tmp_path, text))


def test_a_cycle_is_refused(tmp_path):
    text = default_folder().joinpath("purposes.toml").read_text().replace(
        'TREAT = "PurposeOfUse"', 'TREAT = "ERTREAT"')
    with pytest.raises(MappingsError, match="cycle"):
        load_rules(_folder_with(tmp_path, text))
