"""CONTRACT.md section 4, through the decisions it drives: for every jurisdiction in the shipped
table, `THREAT` is `required` exactly where the duty is mandatory (1.3), and the age of majority
is 18 except Alabama and Nebraska (19) and Mississippi (21) (1.2 check 6). Without a
jurisdiction the federal rules apply, and no jurisdiction is inferred from addresses.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from support.engine import expect, finding
from support.fhir import consent, disclosure, document, organization, patient, practitioner

TABLE = Path(__file__).resolve().parents[2] / "mappings" / "jurisdictions" / "us-states.toml"
ROWS = tomllib.loads(TABLE.read_text())["jurisdiction"]
STATES = ["AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN",
          "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV",
          "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN",
          "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC"]
MAJORITY = {"US-AL": 19, "US-NE": 19, "US-MS": 21}


def test_the_table_has_the_50_states_and_dc():
    assert sorted(r["code"] for r in ROWS) == sorted(f"US-{s}" for s in STATES)
    assert {r["duty"] for r in ROWS} <= {"mandatory", "permissive", "none"}


def threat(address_state: str | None = None) -> list[dict]:
    pat = patient()
    if address_state:
        pat["address"] = [{"state": address_state, "country": "US"}]
    return [pat, practitioner(), organization(), document(), disclosure(purposes=("THREAT",))]


@pytest.mark.parametrize("row", ROWS, ids=[r["code"] for r in ROWS])
def test_threat_follows_the_duty_of_the_jurisdiction(row):
    got = finding(threat(), row["code"])
    if row["duty"] == "mandatory":
        expect(got, decision="required", basis="duty-to-warn-or-protect", accountable=True)
    else:
        expect(got, decision="permitted", basis="hipaa-164.512(j)-serious-threat",
               accountable=True)


def _self_signed(age_years: int) -> list[dict]:
    """A patient who is `age_years` old at signing (2025-01-10) and at the disclosure, alone
    signing an otherwise complete authorization."""
    born = f"{2025 - age_years - 1}-07-01"
    return [patient(birth_date=born), practitioner(), organization(), document(), consent(),
            disclosure()]


@pytest.mark.parametrize("row", ROWS, ids=[r["code"] for r in ROWS])
def test_age_of_majority(row):
    majority = MAJORITY.get(row["code"], 18)
    assert row["age_of_majority"] == majority
    expect(finding(_self_signed(majority), row["code"]), decision="authorized",
           basis="Consent/c1")
    expect(finding(_self_signed(majority - 1), row["code"]), decision="review",
           reasons=["minor-self-authorization"])


def test_no_jurisdiction_is_inferred_from_addresses():
    expect(finding(threat("CA")), decision="permitted",
           basis="hipaa-164.512(j)-serious-threat")


def test_no_jurisdiction_means_majority_at_18_whatever_the_address():
    res = _self_signed(18)
    res[0]["address"] = [{"state": "MS", "country": "US"}]
    expect(finding(res), decision="authorized", basis="Consent/c1")
