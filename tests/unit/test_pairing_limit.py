"""The per-account spacing of pairing codes (service/http/pairing_limit.py) on a clock the test moves: the
interval, the sliding hour, a code given back when none was asked for, and the hold after WhatsApp refused.
The stack tests (tests/system/test_pair_code_stack.py) show the same answers through POST /connect."""

from __future__ import annotations

import pytest

from service.http.pairing_limit import HOUR, WHATSAPP_HOLD, PairingLimit, PairingRateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused_for(limit: PairingLimit, name: str) -> int:
    with pytest.raises(PairingRateLimited) as caught:
        limit.take(name)
    assert caught.value.status == 429 and caught.value.code == "pairing_rate_limited"
    return caught.value.retry_after


def test_codes_are_spaced_by_the_interval_and_counted_per_sliding_hour_per_account():
    clock = Clock()
    limit = PairingLimit(20.0, 3, clock=clock)
    limit.take("a")
    clock.now += 5
    assert refused_for(limit, "a") == 15
    limit.take("b")  # another account has its own count
    for _ in range(2):
        clock.now += 20
        limit.take("a")
    clock.now += 20
    assert refused_for(limit, "a") == HOUR - 65  # the first of the three leaves the hour then
    clock.now += HOUR - 65
    limit.take("a")


def test_a_code_given_back_does_not_count_and_whatsapps_refusal_holds_the_account():
    clock = Clock()
    limit = PairingLimit(20.0, 5, clock=clock)
    limit.give_back("a", limit.take("a"))  # e.g. the account was linked already: nothing was asked
    limit.take("a")
    clock.now += 20
    answer = limit.refused("a")
    assert answer.retry_after == WHATSAPP_HOLD and answer.details == {"retry_after": int(WHATSAPP_HOLD)}
    clock.now += 60
    assert refused_for(limit, "a") == WHATSAPP_HOLD - 60
    clock.now += WHATSAPP_HOLD
    limit.take("a")
