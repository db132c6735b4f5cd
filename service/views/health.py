"""Health for humans (``/health``) and for orchestrators (``/health/live``, ``/health/ready``)."""

from __future__ import annotations

import time

from aiohttp import web

from .. import __version__
from ..errors import ApiError
from ..keys import ACCOUNTS, AUTHENTICATED, MONITOR, STARTED_AT, WEBHOOKS


async def _whatsapp_state(request: web.Request) -> tuple[str, str | None, dict | None]:
    """The worker's session state, its last error and, while connected, its link (see the worker's
    link-monitor.js): ``{"alive", "last_frame_age_ms", "events_stuck", ...}``."""
    try:
        status = await request.app[ACCOUNTS].default.worker.status()
    except ApiError as exc:
        return "unknown", exc.message, None
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
    body = {
        "status": "ok" if not reasons else "degraded",
        "reasons": reasons,
        "uptime_seconds": round(time.monotonic() - request.app[STARTED_AT], 3),
        "version": __version__,
        "worker": {"state": snap.state},
        "whatsapp": {"state": wa_state},
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
        # Per endpoint: pending and failed (dead-lettered) deliveries, and whether it is configured.
        "webhooks": await request.app[WEBHOOKS].summary() if WEBHOOKS in request.app else {},
    }
    return web.json_response(body)


async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    snap = request.app[MONITOR].snapshot
    wa_state, _, link = await _whatsapp_state(request)
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
