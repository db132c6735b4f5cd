"""``GET /events?after=CURSOR``: replay the durable event log (service/store/event_log.py).

A reader keeps the ``seq`` of the last event it handled and asks for what came after; the log is
the same one webhooks and the SSE stream read, so a reader that was away misses nothing (within
the retention, WA_EVENT_RETENTION_DAYS).
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from service.errors import BadRequest
from service.http.appkeys import DATABASE
from service.http.views.context import account_of
from service.store import event_log

MAX_LIMIT = 500


def _whole(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name, str(default))
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}.", code=f"invalid_{name}")
    return int(raw)


def types_filter(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    wanted = tuple(t.strip() for t in raw.split(",") if t.strip())
    unknown = [t for t in wanted if t not in event_log.TYPES]
    if not wanted or unknown:
        raise BadRequest(f"types must be a comma-separated list of {', '.join(event_log.TYPES)}.", code="invalid_types")
    return wanted


async def list_events(request: web.Request) -> web.Response:
    after = _whole(request.query, "after", 0, 0, 2**62)
    limit = _whole(request.query, "limit", 100, 1, MAX_LIMIT)
    types = types_filter(request.query.get("types"))
    rows = await request.app[DATABASE].run(
        event_log.after, after, account=account_of(request).name, types=types, limit=limit)
    items = [event_log.public(r) for r in rows]
    return web.json_response({"events": items, "next_after": items[-1]["seq"] if items else after})
