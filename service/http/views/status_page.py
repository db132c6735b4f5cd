"""``GET /``: the status page, a static page for the person who runs the gateway or links the phone.

service/http/static/status.{html,css,js}: no CDN, no build step, nothing loaded from elsewhere. The page is the
same for everyone and carries no data; it asks for an API key once (kept in the tab's sessionStorage) and
reads the API with it (X-API-Key on every call, the SSE stream read with fetch so that the key never goes
into a URL). Its CSS and script are inlined, and the Content-Security-Policy lets exactly those run.
"""

from __future__ import annotations

from aiohttp import web

from service.http.views import static_page


async def status_page(request: web.Request) -> web.Response:
    # blob: for the QR image, which the script fetches with the key and shows from memory.
    return static_page.respond("status", img_src="'self' blob:")
