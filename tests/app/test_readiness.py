"""A readiness that tells the truth (issue 9, item 7): a link that carries nothing turns /health/ready
to 503 within a bound set by WA_LINK_PROBE_MS + WA_LINK_TIMEOUT_MS, long before Baileys' own
keep-alive would notice (WA_KEEPALIVE_MS + 5 s), and the worker reconnects by itself.

(The whole-stack part is in tests/system/test_readiness_stack.py.)
"""

import asyncio

import pytest
from aiohttp import web

from service.http.app import create_app
from service.http.appkeys import MONITOR
from service.settings import Settings

KEY = "k" * 32


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
