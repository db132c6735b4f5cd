"""The contract: ``GET /openapi.json`` (any valid key) and ``GET /docs``, a static page that asks for a key
and renders the document (service/http/static/: no CDN, no build step; its CSS and script are inlined)."""

from __future__ import annotations

from aiohttp import web

from service.http.appkeys import SETTINGS
from service.http.views import static_page


async def openapi_json(request: web.Request) -> web.Response:
    from service.http.openapi import document  # openapi.py imports the views

    settings = request.app[SETTINGS]
    return web.json_response(document(settings.max_message_chars, settings.send_wait_max))


async def page(request: web.Request) -> web.Response:
    # data: for the inline images the document's renderer may draw
    return static_page.respond("docs", img_src="'self' data:")
