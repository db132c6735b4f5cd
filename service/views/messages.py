"""Sending messages. Kept thin so that a durable outbox can slot in behind it unchanged."""

from __future__ import annotations

import structlog
from aiohttp import web

from ..keys import SETTINGS, WORKER
from ..validation import json_object, message_text, phone_number

log = structlog.get_logger("gateway.messages")


async def send(request: web.Request) -> web.Response:
    body = await json_object(request)
    phone = phone_number(body.get("phone_number"))
    text = message_text(body.get("message"), request.app[SETTINGS].max_message_chars)
    result = await request.app[WORKER].send_text(phone, text)
    log.info("message.sent", message_id=result.get("id"), status=result.get("status"))
    return web.json_response(
        {"id": result["id"], "status": result.get("status", "sent"), "phone_number": phone}
    )
