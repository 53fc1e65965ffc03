"""scan/bulk.one_ahead: the next batch's chart is made while this one is decided, in order,
and what making it raises reaches the caller."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from consent_gap.scan.bulk import one_ahead


def test_items_come_in_order_and_the_next_is_made_while_the_caller_holds_this_one():
    made: list[int] = []
    second_made = threading.Event()

    def items() -> Iterator[int]:
        for number in range(4):
            made.append(number)
            if number == 1:
                second_made.set()
            yield number

    got = []
    with ThreadPoolExecutor(1) as pool:
        for item in one_ahead(items(), pool):
            if item == 0:
                # Holding item 0, the next is made in the pool's thread meanwhile.
                assert second_made.wait(5)
            got.append(item)
    assert got == [0, 1, 2, 3]
    assert made == [0, 1, 2, 3]


def test_what_making_an_item_raises_reaches_the_caller_after_the_items_before_it():
    class Stopped(Exception):
        pass

    def items() -> Iterator[str]:
        yield "first"
        raise Stopped("stopped on request")

    got = []
    with ThreadPoolExecutor(1) as pool, pytest.raises(Stopped):
        for item in one_ahead(items(), pool):
            got.append(item)
    assert got == ["first"]


def test_nothing_to_make_gives_nothing():
    with ThreadPoolExecutor(1) as pool:
        assert list(one_ahead(iter([]), pool)) == []
