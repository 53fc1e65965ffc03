"""The ruleset is the version the rule tables in use name (CONTRACT 2, `[meta] ruleset`), never
a constant of the code: what `evaluate` prints, what the notes say and what a resumed scan
must match all follow the tables."""

from __future__ import annotations

import json

import pytest
from consent_gap.cli import main
from consent_gap.evaluate import evaluate
from consent_gap.mappings import MappingsError, load_rules
from consent_gap.writeback import WriteContext
from tablecopy import copy_tables, edit

STATES = "jurisdictions/us-states.toml"


def test_the_shipped_tables_name_their_ruleset():
    assert load_rules().ruleset == "2026.3"
    assert evaluate([]).ruleset == "2026.3"
    assert WriteContext().ruleset == "2026.3"


def test_a_practice_s_own_tables_carry_their_own_version(tmp_path, capsys):
    folder = copy_tables(tmp_path)
    edit(folder, STATES, 'ruleset = "2026.3"', 'ruleset = "clinic-7"')
    assert load_rules(folder).ruleset == "clinic-7"
    assert evaluate([], rules=load_rules(folder)).ruleset == "clinic-7"
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    assert main(["evaluate", str(empty), "--mappings", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["ruleset"] == "clinic-7"


def test_another_table_may_name_the_same_version(tmp_path):
    folder = copy_tables(tmp_path)
    edit(folder, "purposes.toml", "[meta]\n", '[meta]\nruleset = "2026.3"\n')
    assert load_rules(folder).ruleset == "2026.3"


@pytest.mark.parametrize("old, new, message", [
    ('ruleset = "2026.3"', 'ruleset = "2027.1"', "different rulesets"),
    ('ruleset = "2026.3"', 'ruleset = " "', "ruleset must be a non-empty string"),
])
def test_disagreeing_or_empty_versions_are_refused(tmp_path, old, new, message):
    folder = copy_tables(tmp_path)
    edit(folder, STATES, old, new)
    if "2027" in new:
        edit(folder, "purposes.toml", "[meta]\n", '[meta]\nruleset = "2026.3"\n')
    with pytest.raises(MappingsError, match=message):
        load_rules(folder)


def test_tables_that_name_no_version_are_refused(tmp_path):
    folder = copy_tables(tmp_path)
    path = folder / STATES
    path.write_text("\n".join(line for line in path.read_text().splitlines()
                              if not line.startswith("ruleset")))
    with pytest.raises(MappingsError, match="no table names its ruleset"):
        load_rules(folder)
