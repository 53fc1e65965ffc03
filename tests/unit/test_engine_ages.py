"""The engine's first day of age agrees with `age_on` (the minor checks read it as one
comparison), including a 29 February birthday and an unknown birth date."""

from datetime import UTC, date, datetime, timedelta

import pytest
from consent_gap import engine
from consent_gap.domain import Chart, Person


def _chart(birth: date | None) -> Chart:
    return Chart(patient=Person("Patient/p", birth_date=birth))


@pytest.mark.parametrize("birth", [date(2008, 2, 29), date(2007, 3, 1), date(2007, 2, 28),
                                   date(2006, 12, 31), date(2007, 1, 1)])
@pytest.mark.parametrize("majority", [18, 21])
def test_adult_from_agrees_with_age_on(birth, majority):
    adult = engine._adult_from(_chart(birth), majority)
    assert adult is not None
    start = datetime(birth.year + majority, 1, 1, 12, tzinfo=UTC) - timedelta(days=400)
    for day in range(800):
        moment = start + timedelta(days=day)
        assert (moment.date() < adult) == (engine.age_on(birth, moment) < majority), moment


def test_adult_from_unknown_without_a_birth_date():
    assert engine._adult_from(_chart(None), 18) is None
    assert engine._adult_from(Chart(patient=None), 18) is None
