"""The WhatsApp session as the public API sees it: status, connect, disconnect."""

from __future__ import annotations

from aiohttp import web

from service.http.appkeys import SETTINGS
from service.http.models import ConnectRequest, DisconnectRequest, parse
from service.http.validation import json_object
from service.http.views.context import on_owner, served_here


@on_owner
async def status(request: web.Request) -> web.Response:
    return web.json_response(await served_here(request).worker.status())


@on_owner
async def connect(request: web.Request) -> web.Response:
    # `curl -X POST .../connect` (no body, no Content-Type) is the original contract and stays valid.
    body = parse(ConnectRequest, await json_object(request, allow_empty=True))
    wait = request.app[SETTINGS].connect_qr_wait
    return web.json_response(await served_here(request).worker.connect(wait, phone_number=body.phone_number))


@on_owner
async def disconnect(request: web.Request) -> web.Response:
    parse(DisconnectRequest, await json_object(request, allow_empty=True))
    return web.json_response(await served_here(request).worker.disconnect())
