"""How often the system tests' ``wait_for`` (tests/helpers/stack.py) asks: ten times a second at first, less on a
long wait (so that polling does not take the CPU the stacks need), and exactly as told when the
caller names an interval (a test that kills a program as soon as it restarts)."""

from __future__ import annotations

import time

import pytest

from tests.helpers.stack import wait_for


class Clock:
    """A predicate that turns true ``after`` seconds, counting its calls; ``cost``: seconds each call takes."""

    def __init__(self, after: float, cost: float = 0.0) -> None:
        self.start = time.monotonic()
        self.after = after
        self.cost = cost
        self.calls = 0

    def __call__(self) -> float | None:
        self.calls += 1
        time.sleep(self.cost)
        elapsed = time.monotonic() - self.start
        return elapsed if elapsed >= self.after else None


def test_a_short_wait_asks_ten_times_a_second():
    clock = Clock(0.6)
    assert wait_for(clock, 5, "it") < 0.6 + 0.3
    assert clock.calls >= 5


def test_a_long_wait_asks_less_often_and_still_sees_the_change_soon():
    clock = Clock(6.0)
    seen = wait_for(clock, 20, "it")
    assert seen < 6.0 + 0.3 + 0.3  # a twentieth of 6 s late at most (and some slack for a loaded machine)
    assert clock.calls < 50  # 0.1 s pauses would have asked ~60 times


def test_an_interval_the_caller_names_is_kept():
    clock = Clock(2.0)
    wait_for(clock, 20, "it", interval=0.05)
    assert clock.calls > 30  # the default would ask ~20 times


def test_it_fails_after_the_timeout_naming_what():
    with pytest.raises(AssertionError, match="timed out after 0.3s waiting for the thing"):
        wait_for(lambda: None, 0.3, "the thing")
