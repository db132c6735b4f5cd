"""The contract: ``GET /openapi.json`` (any valid key) and ``GET /docs``, a static page that asks for a key
and renders the document (service/static/: no CDN, no build step; its CSS and script are inlined)."""

from __future__ import annotations

import base64
import functools
import hashlib
from importlib import resources

from aiohttp import web

from ..keys import SETTINGS


async def openapi_json(request: web.Request) -> web.Response:
    from ..openapi import document  # openapi.py imports the views

    settings = request.app[SETTINGS]
    return web.json_response(document(settings.max_message_chars, settings.send_wait_max))


@functools.lru_cache(maxsize=1)
def _page() -> tuple[str, str]:
    """The page with its CSS and script inlined, and the CSP that lets exactly that script run."""
    static = resources.files("service") / "static"
    css = (static / "docs.css").read_text(encoding="utf-8")
    script = (static / "docs.js").read_text(encoding="utf-8")
    html = (static / "docs.html").read_text(encoding="utf-8")
    html = html.replace("/*CSS*/", css).replace("/*JS*/", script)
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; connect-src 'self'; "
           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


async def page(request: web.Request) -> web.Response:
    html, csp = _page()
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "no-referrer"})
