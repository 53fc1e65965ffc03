"""evaluate decides in the data's order, then lists findings in section 2's order: by
occurred, then disclosure, ties in the data's order (`_contract_order`)."""

import random
from datetime import UTC, datetime, timedelta, timezone

from consent_gap.domain import Disclosure
from consent_gap.evaluate import _contract_order


def _disclosure(reference: str, occurred: datetime) -> Disclosure:
    return Disclosure(reference=reference, occurred=occurred, patient=None, recipient=None)


def test_order_is_occurred_then_reference_then_the_datas_order():
    rng = random.Random(13)
    base = datetime(2024, 3, 1, tzinfo=UTC)
    zones = [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9, minutes=30))]
    listed = []
    for _ in range(400):
        moment = base + timedelta(seconds=rng.randrange(40), microseconds=rng.randrange(3))
        listed.append(_disclosure(f"AuditEvent/ae-{rng.randrange(30)}",
                                  moment.astimezone(rng.choice(zones))))
    listed.append(_disclosure("AuditEvent/far", datetime(9999, 12, 31, 23, 59, 59, 999999,
                                                         tzinfo=UTC)))
    listed.append(_disclosure("AuditEvent/far", datetime(9999, 12, 31, 23, 59, 59, 999998,
                                                         tzinfo=UTC)))
    expected = sorted(range(len(listed)), key=lambda i: (listed[i].occurred,
                                                         listed[i].reference))
    assert _contract_order(listed) == expected


def test_instants_without_a_zone_are_ordered_as_they_compare():
    listed = [_disclosure("AuditEvent/b", datetime(2024, 1, 2)),
              _disclosure("AuditEvent/a", datetime(2024, 1, 2)),
              _disclosure("AuditEvent/c", datetime(2024, 1, 1))]
    assert _contract_order(listed) == [2, 1, 0]
