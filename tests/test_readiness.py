"""A readiness that tells the truth (issue 9, item 7): a link that carries nothing turns /health/ready
to 503 within a bound set by WA_LINK_PROBE_MS + WA_LINK_TIMEOUT_MS, long before Baileys' own
keep-alive would notice (WA_KEEPALIVE_MS + 5 s), and the worker reconnects by itself."""

import asyncio
import time

import pytest
from aiohttp import web

from service.http.app import create_app
from service.http.appkeys import MONITOR
from service.settings import Settings
from tests.stack import wait_for
from tests.test_sandbox import pair

KEY = "k" * 32

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


# --- the gateway's side, in-process: what it makes of the worker's `link` -----------------------

LINKS = {
    "alive": ({"alive": True, "last_frame_age_ms": 120, "probe_pending_ms": None, "probes": 3,
               "buffering_ms": 0, "events_stuck": False}, None),
    "dead": ({"alive": False, "last_frame_age_ms": 2600, "probe_pending_ms": 1500, "probes": 4, "buffering_ms": 0,
              "events_stuck": False, "reason": "probe_unanswered",
              "message": "no frame from WhatsApp for 2.5 s, a ping unanswered for 1.5 s"}, "whatsapp_link_dead"),
    "stuck": ({"alive": True, "last_frame_age_ms": 50, "probe_pending_ms": None, "probes": 0,
               "buffering_ms": 12000, "events_stuck": True}, "whatsapp_events_stuck"),
}


@pytest.mark.parametrize("case", sorted(LINKS))
async def test_ready_and_health_follow_the_link_of_a_connected_worker(aiohttp_client, tmp_path, case):
    link, code = LINKS[case]
    settings = Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_RUN_DIR": str(tmp_path / "run"),
                                  "WA_API_KEY": KEY})

    async def status(request):
        return web.json_response({"state": "connected", "connected": True, "last_error": None, "link": link})

    async def events(request):
        await asyncio.sleep(0.05)
        return web.json_response({"boot_id": "b", "last_seq": 0, "events": []})

    worker = web.Application()
    for prefix in ("", "/accounts/{account}"):  # the gateway addresses /accounts/<name>/...
        worker.router.add_get(prefix + "/status", status)
        worker.router.add_get(prefix + "/events", events)
    runner = web.AppRunner(worker)
    await runner.setup()
    settings.worker_socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    await web.UnixSite(runner, str(settings.worker_socket)).start()
    try:
        client = await aiohttp_client(create_app(settings))
        monitor = client.app[MONITOR]
        await monitor.stop()  # no supervisord here: say RUNNING, as it would
        monitor.snapshot.state = "RUNNING"
        res = await client.get("/health/ready")
        body = await res.json()
        if code is None:
            assert res.status == 200 and body["status"] == "ready", body
        else:
            assert res.status == 503, body
            assert body["status"] == "not_ready" and body["whatsapp"] == "connected"
            assert set(body["error"]) == {"code", "message"} and body["error"]["code"] == code, body
        health = await (await client.get("/health", headers={"X-API-Key": KEY})).json()
        assert health["whatsapp"]["link"] == link
        whatsapp_reasons = [r for r in health["reasons"] if not r.startswith("worker is")]
        if code is None:
            assert whatsapp_reasons == [], health["reasons"]
        else:
            assert len(whatsapp_reasons) == 1, health["reasons"]
            assert ("link is dead" if case == "dead" else "held back events") in whatsapp_reasons[0]
    finally:
        await runner.cleanup()


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
