"""The send governor's policy on a simulated clock: the rate holds over many sends, bursts are bounded,
jitter spreads sends, and first messages to unknown numbers wait for the daily budget instead of dropping.

(The whole-stack part is in tests/system/test_governor_stack.py.)
"""

from __future__ import annotations

import random

import pytest

from service.runtime.governor import (
    DAY,
    NEW_CONTACT_BUDGET,
    RATE_LIMITED,
    Governor,
    GovernorPolicy,
)
from service.settings import Settings, SettingsError


def drive(governor: Governor, sends: int, *, first_contact=lambda i: False, start=0.0, account="default"):
    """Send as fast as the governor allows; return the send times (the dispatcher's loop, minus I/O)."""
    now, times = start, []
    for i in range(sends):
        while True:
            wait, _ = governor.delay_for(account, f"+1555000{i:04d}", first_contact(i), now)
            if wait <= 0:
                break
            now += wait
        governor.record_send(account, f"+1555000{i:04d}", first_contact(i), now)
        times.append(now)
    return times


@pytest.mark.parametrize("burst,rate,jitter", [(10, 30.0, 0.0), (1, 120.0, 0.0), (5, 12.0, 2.0), (20, 600.0, 0.1)])
def test_the_rate_holds_over_200_sends(burst, rate, jitter):
    times = drive(Governor(GovernorPolicy(burst=burst, rate_per_minute=rate, jitter=jitter), random.Random(7)), 200)
    per_second = rate / 60.0
    # In any window of the run, no more than the burst plus what the rate refilled.
    for i in range(len(times)):
        for j in range(i, len(times)):
            window = times[j] - times[i]
            assert j - i + 1 <= burst + window * per_second + 1e-6, (i, j, window)
    # And it is not slower than the rate allows (jitter adds at most its bound per send).
    elapsed = times[-1] - times[0]
    assert elapsed <= (200 - burst) / per_second + 200 * jitter + 1e-6


def test_a_burst_goes_at_once_then_the_steady_rate():
    times = drive(Governor(GovernorPolicy(burst=5, rate_per_minute=60.0, jitter=0.0)), 8)
    assert times[:5] == [0.0] * 5
    assert times[5:] == pytest.approx([1.0, 2.0, 3.0])


def test_jitter_spreads_consecutive_sends_within_its_bound():
    governor = Governor(GovernorPolicy(burst=100, rate_per_minute=6000.0, jitter=2.0), random.Random(1))
    times = drive(governor, 50)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(0 <= gap <= 2.0 + 1e-9 for gap in gaps)
    assert len({round(gap, 6) for gap in gaps}) > 40  # not one fixed beat


def test_first_messages_to_unknown_numbers_wait_for_the_daily_budget_and_known_ones_do_not():
    governor = Governor(GovernorPolicy(burst=1000, rate_per_minute=60000.0, jitter=0.0, new_contacts_per_day=3))
    for i in range(3):
        assert governor.delay_for("default", f"+1{i}", True, 100.0 + i) == (0.0, None)
        governor.record_send("default", f"+1{i}", True, 100.0 + i)
    wait, reason = governor.delay_for("default", "+19", True, 200.0)
    assert reason == NEW_CONTACT_BUDGET and wait == pytest.approx(100.0 + DAY - 200.0)
    # Replies to people who wrote first are not held back by the budget.
    assert governor.delay_for("default", "+18", False, 200.0) == (0.0, None)
    # The budget is per rolling day: once the oldest first contact ages out, one more may go.
    assert governor.delay_for("default", "+19", True, 100.0 + DAY + 0.001) == (0.0, None)


def test_a_budget_of_zero_holds_every_first_contact_and_nothing_else():
    governor = Governor(GovernorPolicy(burst=10, rate_per_minute=600.0, jitter=0.0, new_contacts_per_day=0))
    assert governor.delay_for("default", "+1", True, 0.0) == (DAY, NEW_CONTACT_BUDGET)
    assert governor.delay_for("default", "+1", False, 0.0) == (0.0, None)


def test_accounts_have_their_own_buckets_and_budgets():
    governor = Governor(GovernorPolicy(burst=1, rate_per_minute=1.0, jitter=0.0, new_contacts_per_day=1))
    governor.record_send("a", "+1", True, 0.0)
    assert governor.delay_for("a", "+2", False, 0.0)[1] == RATE_LIMITED
    assert governor.delay_for("b", "+2", True, 0.0) == (0.0, None)


def test_the_budget_survives_a_restart_through_restore():
    policy = GovernorPolicy(burst=100, rate_per_minute=6000.0, jitter=0.0, new_contacts_per_day=2)
    restarted = Governor(policy)
    restarted.restore("default", [10.0, 20.0, 20.0 - DAY], now=30.0)  # the third is older than a day
    assert restarted.delay_for("default", "+1", True, 30.0)[1] == NEW_CONTACT_BUDGET
    fresh = Governor(policy)
    fresh.restore("default", [10.0], now=30.0)
    assert fresh.delay_for("default", "+1", True, 30.0) == (0.0, None)


def test_settings_document_the_defaults_and_refuse_nonsense():
    policy = Settings.from_env({"WA_DATA_DIR": "/tmp/wa-governor"}).governor
    assert policy == GovernorPolicy(burst=10, rate_per_minute=30.0, jitter=1.0, new_contacts_per_day=None)
    for name, value in [("WA_SEND_BURST", "0"), ("WA_SEND_RATE_PER_MINUTE", "0"), ("WA_SEND_JITTER", "-1"),
                        ("WA_NEW_CONTACTS_PER_DAY", "-5"), ("WA_SEND_BURST", "many")]:
        with pytest.raises(SettingsError):
            Settings.from_env({"WA_DATA_DIR": "/tmp/wa-governor", name: value})


def test_groups_have_a_bucket_of_their_own_and_take_from_the_accounts_too():
    governor = Governor(GovernorPolicy(burst=100, rate_per_minute=6000.0, jitter=0.0, group_burst=3,
                                       group_rate_per_minute=6.0))
    group = "120363012345678901@g.us"
    now, times = 0.0, []
    for _ in range(5):
        while (wait := governor.delay_for("default", group, False, now))[0] > 0:
            assert wait[1] == RATE_LIMITED
            now += wait[0]
        governor.record_send("default", group, False, now)
        times.append(now)
    assert times == pytest.approx([0.0, 0.0, 0.0, 10.0, 20.0])  # the group bucket: 3 at once, then one per 10 s
    # meanwhile a one-to-one send is held only by the account's own (ample) bucket
    assert governor.delay_for("default", "+15550001111", False, now) == (0.0, None)
    # and group sends spend the account's bucket too
    tight = Governor(GovernorPolicy(burst=2, rate_per_minute=6.0, jitter=0.0, group_burst=50,
                                    group_rate_per_minute=600.0))
    for _ in range(2):
        tight.record_send("default", group, False, 0.0)
    assert tight.delay_for("default", "+15550001111", False, 0.0)[0] == pytest.approx(10.0)
