"""Health for humans (``/health``) and for orchestrators (``/health/live``, ``/health/ready``)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from aiohttp import web

from .. import __version__
from ..errors import ApiError, NotFound
from ..accounts import Account
from ..keys import ACCOUNTS, AUTHENTICATED, MONITOR, STARTED_AT, WEBHOOKS

STATUS_TIMEOUT = 3.0


async def _whatsapp_state(request: web.Request, account: Account | None = None) -> tuple[str, str | None, dict | None]:
    """An account's session state (``default`` unless given), its last error and, while connected, its
    link (see the worker's link-monitor.js): ``{"alive", "last_frame_age_ms", "events_stuck", ...}``."""
    account = account or request.app[ACCOUNTS].default
    try:
        async with asyncio.timeout(STATUS_TIMEOUT):
            status = await account.worker.status()
    except ApiError as exc:
        return "unknown", exc.message, None
    except TimeoutError:
        return "unknown", "the worker did not answer in time", None
    link = status.get("link")
    return status.get("state", "unknown"), status.get("last_error"), link if isinstance(link, dict) else None


def _link_problem(wa_state: str, link: dict | None) -> tuple[str, str] | None:
    """Why a session that says connected does not demonstrably work: (code, message), or None.
    The messages carry only durations, never a number or a path (the probes are open)."""
    if wa_state != "connected" or link is None:
        return None
    if link.get("alive") is False:
        why = link.get("message") or link.get("reason") or "no frames from WhatsApp"
        return "whatsapp_link_dead", f"the WhatsApp link is dead: {why}; the worker reconnects"
    if link.get("events_stuck"):
        held = (link.get("buffering_ms") or 0) / 1000
        return "whatsapp_events_stuck", f"Baileys has held back events for {held:.1f} s"
    return None


async def health(request: web.Request) -> web.Response:
    """Open to anyone, so without a valid API key it says only states, never details: no phone
    number, no QR, no error text (an error message can carry a number or a path)."""
    detailed = request.get(AUTHENTICATED, False)
    monitor = request.app[MONITOR]
    snap = await monitor.refresh()
    wa_state, wa_error, link = await _whatsapp_state(request)
    reasons = []
    if snap.state != "RUNNING":
        detail = (snap.error or snap.description or snap.spawn_error) if detailed else None
        reasons.append(f"worker is {snap.state}" + (f": {detail}" if detail else ""))
    if wa_state != "connected":
        detail = wa_error if detailed else None
        reasons.append(f"whatsapp is {wa_state}" + (f": {detail}" if detail else ""))
    problem = _link_problem(wa_state, link)
    if problem:
        reasons.append(problem[1])
    runtime = request.app[ACCOUNTS]
    others = [runtime.get(n) for n in runtime.names() if n != "default" and runtime.get(n)]
    states = [wa_state, *[s for s, _, _ in await asyncio.gather(*(_whatsapp_state(request, a) for a in others))]]
    for n, shard in enumerate(monitor.shards[1:], start=1):
        if shard.state != "RUNNING":
            reasons.append(f"worker shard {n} is {shard.state}")
    body = {
        "status": "ok" if not reasons else "degraded",
        "reasons": reasons,
        "uptime_seconds": round(time.monotonic() - request.app[STARTED_AT], 3),
        "version": __version__,
        "worker": {"state": snap.state},
        "whatsapp": {"state": wa_state},
        # Every account by WhatsApp state, every worker shard by supervisord state.
        "accounts": dict(Counter(states)),
        "shards": [{"name": monitor.name(n), "state": shard.state} for n, shard in enumerate(monitor.shards)],
    }
    if not detailed:
        return web.json_response(body)
    rss, cpu = monitor.process_usage()
    dog = snap.watchdog
    now = time.time()
    body |= {
        "worker": {
            "state": snap.state,
            "pid": snap.pid,
            "uptime_seconds": (
                round(now - snap.started_at, 3)
                if snap.state == "RUNNING" and snap.started_at else None
            ),
            "rss_bytes": rss,
            "cpu_percent": cpu,
            "restarts": snap.restarts,
            "exit_status": snap.exit_status,
            "watchdog": {
                "restarts": dog.restarts,
                "next_delay_seconds": dog.next_delay,
                "last_restart_at": dog.last_restart_at,
                "last_error": dog.last_error,
            },
        },
        "whatsapp": {"state": wa_state, "link": link},
        "shards": [
            {"name": monitor.name(n), "state": shard.state, "pid": shard.pid, "restarts": shard.restarts,
             "rss_bytes": monitor.process_usage(n)[0], "accounts": runtime.on_shard(n)}
            for n, shard in enumerate(monitor.shards)
        ],
        # Per endpoint: pending and failed (dead-lettered) deliveries, and whether it is configured.
        "webhooks": await request.app[WEBHOOKS].summary() if WEBHOOKS in request.app else {},
    }
    return web.json_response(body)


async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Ready when the gateway and ``default`` (or ``?account=NAME``) can send: its worker shard is
    RUNNING, WhatsApp is connected and the link demonstrably works."""
    name = request.query.get("account", "default")
    account = request.app[ACCOUNTS].get(name)
    if account is None:
        raise NotFound("No account with this name.", code="account_not_found")
    snap = request.app[MONITOR].shards[account.shard]
    wa_state, _, link = await _whatsapp_state(request, account)
    body = {"status": "ready", "worker": snap.state, "whatsapp": wa_state}
    if snap.state != "RUNNING":
        problem = ("worker_not_running", f"the worker is {snap.state}")
    elif wa_state != "connected":
        problem = ("whatsapp_not_connected", f"WhatsApp is {wa_state}")
    else:
        problem = _link_problem(wa_state, link)
    if problem is None:
        return web.json_response(body)
    code, message = problem
    body |= {"status": "not_ready", "error": {"code": code, "message": message}}
    return web.json_response(body, status=503)
