"""``GET /events/stream``: the event log as Server-Sent Events, live, resumable.

Each SSE event is one log event: ``id`` is its ``seq``, ``event`` its type, ``data`` the event JSON
(the same body a webhook receives). A client that reconnects with ``Last-Event-ID`` (browsers do it
by themselves) or ``?after=SEQ`` gets everything after it from the durable log, so it misses nothing
across its own disconnects or a gateway restart; without either it gets only what happens from now
on. ``?types=`` filters by event type. A comment line every 15 s keeps proxies from closing it. On SIGTERM
the stream ends (service/drain.py); the client resumes with Last-Event-ID once a gateway answers again.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp_sse import sse_response

from ..errors import BadRequest
from ..keys import DATABASE, DRAIN, NOTIFIER
from ..store import events
from .context import account_of
from .events import types_filter

PAGE = 200
IDLE = 15.0


def _start(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest("Last-Event-ID (or after) must be the seq of an event.", code="invalid_last_event_id")
    return int(raw)


async def stream(request: web.Request) -> web.StreamResponse:
    after = _start(request)
    types = types_filter(request.query.get("types"))
    db, notifier, name = request.app[DATABASE], request.app[NOTIFIER], account_of(request).name
    drain = request.app[DRAIN]
    if after is None:
        after = await db.run(events.last_seq)
    async with sse_response(request, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}) as resp:
        resp.ping_interval = IDLE
        while resp.is_connected() and not drain.draining:
            woken = notifier.current()
            rows = await db.run(events.after, after, account=name, types=types, limit=PAGE)
            for row in rows:
                await resp.send(row["payload"], id=str(row["seq"]), event=row["type"])
                after = row["seq"]
            if len(rows) < PAGE:
                await notifier.wait(IDLE, woken)
    return resp
