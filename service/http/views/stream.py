"""``GET /events/stream``: the event log as Server-Sent Events, live, resumable.

Each SSE event is one log event: ``id`` is its ``seq``, ``event`` its type, ``data`` the event JSON
(the same body a webhook receives). A client that reconnects with ``Last-Event-ID`` (browsers do it
by themselves) or ``?after=SEQ`` gets everything after it from the durable log, so it misses nothing
across its own disconnects or a gateway restart; without either it gets only what happens from now
on. ``?types=`` filters by event type. A comment line every 15 s keeps proxies from closing it. On SIGTERM
the stream ends (service/http/drain.py); the client resumes with Last-Event-ID once a gateway answers again.

Live events come from the one reader of the log (service/http/sse_hub.py), not from a query per stream; a
backlog (a resume) is read from the log by the stream itself, up to where its live view starts. Streams are
capped per API key (``WA_SSE_MAX_PER_KEY``) and in total (``WA_SSE_MAX``): one more is 429.
"""

from __future__ import annotations

import asyncio
import hashlib

from aiohttp import web
from aiohttp_sse import sse_response

from service.errors import BadRequest, error_response
from service.http.appkeys import DATABASE, DRAIN, STREAMS
from service.http.sse_hub import RETRY_AFTER, TooManyStreams
from service.http.views.context import account_of
from service.http.views.event_log import types_filter
from service.store import event_log

PAGE = 200
IDLE = 15.0


def _start(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest("Last-Event-ID (or after) must be the seq of an event.", code="invalid_last_event_id")
    return int(raw)


def _key_of(request: web.Request) -> str:
    """Which API key the stream counts against: a digest of the credential presented (never the key)."""
    presented = request.headers.get("X-API-Key") or request.headers.get("Authorization") or ""
    return hashlib.sha256(presented.encode()).hexdigest()[:16]


async def stream(request: web.Request) -> web.StreamResponse:
    after = _start(request)
    types = types_filter(request.query.get("types"))
    db, hub, name, drain = request.app[DATABASE], request.app[STREAMS], account_of(request).name, request.app[DRAIN]
    try:
        live = hub.subscribe(_key_of(request), name, types)
    except TooManyStreams as exc:
        return error_response(exc.status, exc.code, exc.message, headers={"Retry-After": str(RETRY_AFTER)})
    try:
        after = live.start if after is None else after
        async with sse_response(request, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}) as resp:
            resp.ping_interval = IDLE
            while after < live.start and resp.is_connected() and not drain.draining:  # the backlog
                rows = [r for r in await db.run(event_log.after, after, account=name, types=types, limit=PAGE)
                        if r["seq"] <= live.start]
                if not rows:
                    break
                for row in rows:
                    await resp.send(row["payload"], id=str(row["seq"]), event=row["type"])
                    after = row["seq"]
            while resp.is_connected() and not drain.draining:  # live, from the hub
                try:
                    async with asyncio.timeout(IDLE):  # then look again whether the client is still there
                        item = await live.queue.get()
                except TimeoutError:
                    continue
                if item is None:  # ended: SIGTERM, or this client fell too far behind (it resumes)
                    break
                if item["seq"] > after:
                    await resp.send(item["payload"], id=str(item["seq"]), event=item["type"])
                    after = item["seq"]
    finally:
        hub.unsubscribe(live)
    return resp
