"""The jurisdiction table is data with legal weight: check it against its source's own counts."""

import tomllib
from collections import Counter
from pathlib import Path

TABLE = Path(__file__).resolve().parents[2] / "mappings" / "jurisdictions" / "us-states.toml"


def _rows() -> list[dict]:
    return tomllib.loads(TABLE.read_text())["jurisdiction"]


def test_every_state_and_dc_once() -> None:
    codes = [row["code"] for row in _rows()]
    assert len(codes) == 51
    assert len(set(codes)) == 51
    assert "US-DC" in codes


def test_counts_match_jaapl_2014_table_1() -> None:
    # Johnson, Persad, Sisti (2014): M-stat 23, M-cl 11, P 11 (incl. DC), N 6.
    assert Counter(row["basis"] for row in _rows()) == {"M-stat": 23, "M-cl": 11, "P": 11, "N": 6}


def test_duty_follows_basis() -> None:
    expected = {"M-stat": "mandatory", "M-cl": "mandatory", "P": "permissive", "N": "none"}
    for row in _rows():
        assert row["duty"] == expected[row["basis"]], row["code"]


def test_age_of_majority_exceptions() -> None:
    ages = {row["code"]: row["age_of_majority"] for row in _rows()}
    assert ages.pop("US-AL") == 19
    assert ages.pop("US-NE") == 19
    assert ages.pop("US-MS") == 21
    assert set(ages.values()) == {18}


def test_disputed_rows_carry_a_note() -> None:
    disputed = {row["code"] for row in _rows() if row["disputed"]}
    assert disputed == {"US-IL", "US-NY"}
    for row in _rows():
        if row["disputed"]:
            assert row["note"], row["code"]


def test_table_has_source_and_date() -> None:
    meta = tomllib.loads(TABLE.read_text())["meta"]
    assert "J Am Acad Psychiatry Law 42:469-77" in meta["source"]
    assert meta["date"]
