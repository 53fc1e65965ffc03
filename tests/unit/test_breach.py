"""The breach risk assessment's rules (CONTRACT 7.1): the suggestion, the required answers,
the deadlines of 164.404, 164.406 and 164.408, and the year's log as CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from consent_gap import breach

DISCOVERED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def answers(**changes: str) -> dict[str, str]:
    form = {"secured": "no", "exception": "none", "conclusion": "breach", "affected": "1"}
    for code, _ in breach.FACTORS:
        form[f"rating-{code}"] = "low"
        form[f"evidence-{code}"] = f"why {code}"
    form.update(changes)
    return form


@pytest.mark.parametrize(("ratings", "suggested"), [
    ({}, "low-probability"),
    ({"nature": "moderate", "acquired": "moderate"}, "low-probability"),
    ({"mitigation": "high"}, "breach"),
    ({"nature": "high", "recipient": "high"}, "breach"),
])
def test_breach_is_suggested_exactly_when_a_factor_is_high(ratings, suggested):
    base = {code: "low" for code, _ in breach.FACTORS}
    assert breach.suggest({**base, **ratings}) == suggested


def test_a_complete_form_reads():
    got = breach.read_assessment(answers(**{"rating-nature": "high", "affected": "3",
                                            "state_residents": "2"}))
    assert got.secured is False and got.exception == "none"
    assert got.ratings["nature"] == "high" and got.evidence["acquired"] == "why acquired"
    assert (got.conclusion, got.affected, got.state_residents) == ("breach", 3, 2)


@pytest.mark.parametrize(("change", "named"), [
    ({"secured": ""}, "secured"),
    ({"exception": "maybe"}, "exception"),
    ({"rating-recipient": "severe"}, "rating of factor recipient"),
    ({"evidence-mitigation": "   "}, "evidence for factor mitigation"),
    ({"conclusion": "unsure"}, "conclusion"),
    ({"affected": "0"}, "people affected"),
    ({"affected": "2", "state_residents": "5"}, "residents"),
])
def test_every_answer_is_required_and_the_message_names_it(change, named):
    with pytest.raises(breach.AssessmentIncomplete, match=named):
        breach.read_assessment(answers(**change))


def test_deadlines_for_one_client():
    client_deadline = datetime(2027, 1, 1, 9, 30, tzinfo=UTC)
    got = breach.deadlines(DISCOVERED, client_deadline)
    assert got.client == client_deadline  # the Task's restriction.period.end
    assert got.hhs == date(2027, 3, 1)  # 60 days after the calendar year of discovery
    assert got.hhs_with_annual_log is True
    assert got.media is None


def test_hhs_after_a_leap_year_end_and_without_a_task_deadline():
    got = breach.deadlines(datetime(2027, 6, 1, tzinfo=UTC), None)
    assert got.client == datetime(2027, 7, 31, tzinfo=UTC)
    assert got.hhs == date(2028, 2, 29)  # 2028 is a leap year


@pytest.mark.parametrize(("affected", "residents", "hhs", "media"), [
    (499, 499, date(2027, 3, 1), None),
    (500, 500, date(2027, 1, 1), None),  # 500 or more: HHS with the breach (164.408(b))
    (501, 501, date(2027, 1, 1), datetime(2027, 1, 1, 9, 30, tzinfo=UTC)),  # more than 500
    (900, 500, date(2027, 1, 1), None),  # 900 people, 500 at most in one State: no media
])
def test_the_500_thresholds(affected, residents, hhs, media):
    got = breach.deadlines(DISCOVERED, None, affected, residents)
    assert got.hhs == hhs
    assert got.media == media


def test_days_left_counts_calendar_days_and_goes_negative():
    deadline = datetime(2027, 1, 1, 9, 30, tzinfo=UTC)
    assert breach.days_left(deadline, date(2026, 12, 30)) == 2
    assert breach.days_left(deadline, date(2027, 1, 3)) == -2
    assert breach.days_left(None, date(2027, 1, 3)) is None


def test_the_log_as_csv_is_one_row_per_breach_and_never_a_formula():
    entry = breach.LogEntry("Task/1", "=HYPERLINK(\"x\")", "AuditEvent/ae-1", "2026-10-01",
                            "2026-11-02", 1, "2026-11-20", "DocumentReference/9 (final)")
    text = breach.log_csv([entry])
    lines = text.strip().split("\r\n")
    assert lines[0] == ",".join(breach.LOG_COLUMNS)
    assert len(lines) == 2
    assert "'=HYPERLINK" in lines[1]
