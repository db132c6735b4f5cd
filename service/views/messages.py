"""Sending messages. Kept thin so that a durable outbox can slot in behind it unchanged."""

from __future__ import annotations

import structlog
from aiohttp import web

from ..keys import SETTINGS, WORKER
from ..models import SendRequest, parse
from ..validation import json_object

log = structlog.get_logger("gateway.messages")


async def send(request: web.Request) -> web.Response:
    body = parse(
        SendRequest, await json_object(request),
        max_message_chars=request.app[SETTINGS].max_message_chars,
    )
    result = await request.app[WORKER].send_text(body.phone_number, body.message)
    log.info("message.sent", message_id=result.get("id"), status=result.get("status"))
    return web.json_response(
        {"id": result["id"], "status": result.get("status", "sent"), "phone_number": body.phone_number}
    )
