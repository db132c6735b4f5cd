"""``GET /qr``: the account's pairing QR code as an image, as text for a terminal, or as its payload.

The payload comes from the worker's status (its ``qr`` field, set while the state is ``qr``); drawing is
service/http/qr.py. Nothing here logs the payload, and no cache may keep it (``Cache-Control: no-store``).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from service.errors import BadRequest, Conflict
from service.http import qr as drawing
from service.http.views.context import on_owner, served_here

NO_STORE = {"Cache-Control": "no-store"}


@on_owner
async def qr(request: web.Request) -> web.Response:
    account = served_here(request)
    fmt = request.query.get("format", "png")
    if fmt not in drawing.FORMATS:
        raise BadRequest(f"format must be one of {', '.join(drawing.FORMATS)}.", code="invalid_format")
    background = request.query.get("background", "dark")
    if background not in drawing.BACKGROUNDS:
        raise BadRequest(f"background must be one of {', '.join(drawing.BACKGROUNDS)}.", code="invalid_background")
    status = await account.worker.status()
    state = status.get("state") if isinstance(status.get("state"), str) else "unknown"
    payload = status.get("qr")
    if state != "qr" or not isinstance(payload, str) or not payload:
        connect = request.path.removesuffix("/qr") + "/connect"
        hint = "it is linked already" if state == "connected" else f"POST {connect} starts a session and shows one"
        raise Conflict(f"The account has no QR code to scan now (state {state}): {hint}.", code="qr_unavailable",
                       details={"state": state})
    body, content_type = await asyncio.to_thread(drawing.render, payload, fmt, background)
    charset = "utf-8" if content_type.startswith("text/") else None
    return web.Response(body=body, content_type=content_type, charset=charset, headers=NO_STORE)
