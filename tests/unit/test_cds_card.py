"""The CDS card's wording (web/cds.py card_for): counts only, at most 140 characters."""

from __future__ import annotations

from dataclasses import replace

from consent_gap.domain import ClientNotice, Decision, Documentation, Finding
from consent_gap.web.cds import card_for

BASE = Finding(disclosure="AuditEvent/a", patient="Patient/p", occurred="2025-01-01T00:00:00Z",
               recipient="Organization/o", purposes=("TREAT",), decision=Decision.AUTHORIZED,
               basis=None, reasons=(), accountable=False,
               documentation=Documentation("not-required"),
               client_notice=ClientNotice("not-required"), explanation="")


def test_every_count_is_said_and_the_worst_first():
    findings = ([replace(BASE, decision=Decision.UNAUTHORIZED)] * 3
                + [replace(BASE, decision=Decision.REVIEW)]
                + [replace(BASE, decision=Decision.REQUIRED,
                           documentation=Documentation("missing"),
                           client_notice=ClientNotice("missing"))] * 2)
    card = card_for(findings, "https://app.test/launch")
    assert card["summary"] == ("3 disclosures lack an authorization; 1 needs review; "
                               "documentation missing for 2; client notice missing for 2")
    assert card["indicator"] == "critical"


def test_nothing_to_say_is_no_card():
    assert card_for([BASE, replace(BASE, decision=Decision.PERMITTED)], "u") is None
    assert card_for([], "u") is None


def test_large_counts_fit_in_140_characters_unabridged():
    worst = replace(BASE, decision=Decision.UNAUTHORIZED, documentation=Documentation("missing"),
                    client_notice=ClientNotice("missing"))
    review = replace(worst, decision=Decision.REVIEW)
    card = card_for([worst, review] * 50_000, "u")
    assert card["summary"] == ("50000 disclosures lack an authorization; 50000 need review; "
                               "documentation missing for 100000; "
                               "client notice missing for 100000")
    assert len(card["summary"]) <= 140


def test_a_summary_over_the_limit_keeps_its_first_parts(monkeypatch):
    from consent_gap.web import cds

    monkeypatch.setattr(cds, "SUMMARY_LIMIT", 60)
    worst = replace(BASE, decision=Decision.UNAUTHORIZED, documentation=Documentation("missing"))
    summary = card_for([worst, replace(worst, decision=Decision.REVIEW)], "u")["summary"]
    assert summary == "1 disclosure lacks an authorization; 1 needs review…"
    assert len(summary) <= 60
