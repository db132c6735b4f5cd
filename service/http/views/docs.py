"""The contract: ``GET /openapi.json`` (any valid key) and ``GET /docs``, a static page that asks for a key
and renders the document (service/http/static/: no CDN, no build step; its CSS and script are inlined).

The document's builder comes in through the app (``DOCUMENT``, set by ``routes.setup_routes``) rather than
an import: the builder documents these views, so importing it here would close a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from service.http.appkeys import SETTINGS
from service.http.views import static_page

# (max_message_chars, send_wait_max) -> the OpenAPI document (service/http/openapi/document.py).
DocumentBuilder = Callable[[int, float], dict[str, Any]]
DOCUMENT: web.AppKey[DocumentBuilder] = web.AppKey("openapi_document")


async def openapi_json(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(request.app[DOCUMENT](settings.max_message_chars, settings.send_wait_max))


async def page(request: web.Request) -> web.Response:
    # data: for the inline images the document's renderer may draw
    return static_page.respond("docs", img_src="'self' data:")
