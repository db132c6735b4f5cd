"""The send governor through the whole stack: its rate holds over 200 sends to the emulator (the policy itself, on
a simulated clock, is in tests/unit/test_governor.py)."""

from __future__ import annotations

import pytest

# --- through the whole stack ------------------------------------------------------------------

def _epoch(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.mark.system
def test_the_governor_holds_its_rate_over_200_sends_through_the_stack(make_stack):
    """200 messages accepted at once: the recorded send times (each message's ``sending`` step, taken
    when the governor let it go) never exceed the token bucket, over any stretch of the run."""
    from tests.helpers.sandbox import pair
    from tests.helpers.stack import wait_for

    burst, per_minute = 5, 1800.0  # 30 per second: the 200 sends take ~7 s
    stack = make_stack({"WA_SEND_BURST": str(burst), "WA_SEND_RATE_PER_MINUTE": str(per_minute),
                        "WA_SEND_JITTER": "0.02", "WA_DISPATCH_CONCURRENCY": "8"}, sandbox=True)
    pair(stack)
    contacts = [f"+1555000{n}10" for n in range(41, 46)]
    ids = []
    for n in range(200):
        res = stack.post("/send?wait=0", {"phone_number": contacts[n % 5], "message": f"paced {n}"})
        assert res.status == 202, res.raw
        ids.append(res.json()["id"])

    def all_sent():
        rows = [stack.get(f"/messages/{i}").json() for i in ids]
        return rows if all(r["status"] in ("sent", "delivered", "read") for r in rows) else None

    rows = wait_for(all_sent, 120, "all 200 messages sent")
    assert all(r["attempts"] == 1 for r in rows)  # one recorded send per message: the times are complete
    times = sorted(_epoch(r["timestamps"]["sending"]) for r in rows)
    rate = per_minute / 60.0
    worst = max((j - i + 1) - (burst + rate * (times[j] - times[i]))
                for i in range(len(times)) for j in range(i, len(times)))
    # Over any stretch [t_i, t_j], at most burst + rate * (t_j - t_i) sends (+1 ms of clock rounding).
    assert worst <= rate * 0.002 + 1e-9, f"{worst:.3f} sends over the bucket"
    # And it is a pace, not a stall: the steady part runs near the configured rate.
    steady = (len(times) - burst) / (times[-1] - times[burst - 1])
    assert steady >= rate * 0.5, f"{steady:.1f}/s against a rate of {rate:.1f}/s"
