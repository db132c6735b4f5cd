"""A readiness that tells the truth (issue 9, item 7): a link that carries nothing turns /health/ready
to 503 within a bound set by WA_LINK_PROBE_MS + WA_LINK_TIMEOUT_MS, long before Baileys' own
keep-alive would notice (WA_KEEPALIVE_MS + 5 s), and the worker reconnects by itself.

(The part without a stack is in tests/app/test_readiness.py.)
"""

import time

import pytest

from tests.helpers.sandbox import pair
from tests.helpers.stack import wait_for

PROBE_MS = 1000
TIMEOUT_MS = 1500


KEEPALIVE_MS = 30000  # Baileys alone would end the socket only after 35 s of silence
BLACKHOLE_S = 8


SLACK_S = 3  # ticks (a quarter of the shorter bound), the gateway's poll and a busy 2-core machine


@pytest.mark.system
def test_blackhole_turns_ready_503_within_the_bound_and_recovers(make_stack):
    stack = make_stack({
        "WA_LINK_PROBE_MS": str(PROBE_MS),
        "WA_LINK_TIMEOUT_MS": str(TIMEOUT_MS),
        "WA_KEEPALIVE_MS": str(KEEPALIVE_MS),
    }, sandbox=True)
    pair(stack)
    wait_for(lambda: stack.get("/health/ready").status == 200, 30, "ready after pairing")
    link = stack.status()["link"]
    assert link["alive"] is True and link["events_stuck"] is False, link
    assert link["last_frame_age_ms"] < PROBE_MS + TIMEOUT_MS, link
    # A quiet, healthy link stays ready: the probes are answered (longer than probe + timeout).
    quiet_until = time.monotonic() + 2 * (PROBE_MS + TIMEOUT_MS) / 1000
    while time.monotonic() < quiet_until:
        assert stack.get("/health/ready").status == 200, stack.get("/health/ready").raw
        time.sleep(0.2)
    assert stack.status()["link"]["probes"] >= 1

    res = stack.emu("POST", "/faults", {"kind": "blackhole", "seconds": BLACKHOLE_S})
    assert res.status == 200 and res.json()["applied_to"] >= 1, res.raw
    started = time.monotonic()
    bound = (PROBE_MS + TIMEOUT_MS) / 1000 + SLACK_S
    ready = wait_for(lambda: (r := stack.get("/health/ready")).status == 503 and r, bound + 10,
                     "/health/ready 503 on a dead link")
    took = time.monotonic() - started
    print(f"readiness 503 after {took:.2f} s (bound {bound:.1f} s)")
    assert took < bound, f"readiness turned 503 after {took:.2f} s, bound {bound:.1f} s"
    body = ready.json()
    assert body["status"] == "not_ready"
    assert body["error"]["code"] in ("whatsapp_link_dead", "whatsapp_not_connected"), body
    assert set(body["error"]) == {"code", "message"}

    # The worker said why, once, and reconnects (not a logout).
    dead = wait_for(lambda: [e for e in stack.log_events() if e.get("event") == "session.link_dead"], 10,
                    "session.link_dead logged")
    assert len(dead) == 1 and dead[0]["level"] == "warning" and dead[0]["program"] == "worker", dead
    assert dead[0]["reason"] == "probe_unanswered"
    health = stack.health()
    assert health["status"] == "degraded"
    assert any("link dead" in r or "link is dead" in r for r in health["reasons"]), health["reasons"]
    status = stack.status()
    assert status["state"] in ("connecting", "connected"), status
    assert "link dead" in (status["last_error"] or ""), status
    # Well before Baileys' own keep-alive (35 s) could have noticed.
    assert time.monotonic() - started < (KEEPALIVE_MS + 5000) / 1000

    # By itself, once the black hole is gone: connected, alive, ready.
    wait_for(lambda: stack.get("/health/ready").status == 200, BLACKHOLE_S + 60, "ready again")
    print(f"ready again {time.monotonic() - started:.2f} s after the blackhole began ({BLACKHOLE_S} s)")
    status = stack.status()
    assert status["state"] == "connected" and status["link"]["alive"] is True, status
    health = stack.health()
    assert health["status"] == "ok" and health["whatsapp"]["link"]["alive"] is True, health
    assert not any(e.get("event") == "session.state" and e.get("state") == "logged_out" for e in stack.log_events())


@pytest.mark.system
def test_ready_again_as_soon_as_a_killed_worker_is_connected_not_after_startsecs(make_stack):
    """supervisord calls a restarted worker STARTING for its first startsecs (3 s); once that worker's
    WhatsApp link is connected it can send, and readiness says so."""
    import os
    import signal

    stack = make_stack(sandbox=True)
    pair(stack)
    wait_for(lambda: stack.get("/health/ready").status == 200, 30, "ready after pairing")
    old = stack.process_info("worker:worker-0")["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: stack.process_info("worker:worker-0")["pid"] not in (0, old), 10, "a new worker")
    wait_for(lambda: stack.get("/health/ready").status == 200, 30, "ready again")
    # still inside startsecs: readiness did not wait for RUNNING (a reconnect takes about 0.5 s, startsecs 3 s)
    assert stack.process_info("worker:worker-0")["statename"] == "STARTING"
