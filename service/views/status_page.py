"""``GET /``: the status page, a static page for the person who runs the gateway or links the phone.

service/static/status.{html,css,js}: no CDN, no build step, nothing loaded from elsewhere. The page is the
same for everyone and carries no data; it asks for an API key once (kept in the tab's sessionStorage) and
reads the API with it (X-API-Key on every call, the SSE stream read with fetch so that the key never goes
into a URL). Its CSS and script are inlined, and the Content-Security-Policy lets exactly those run.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from importlib import resources

from aiohttp import web


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@functools.lru_cache(maxsize=1)
def _page() -> tuple[str, str]:
    """The page with its CSS and script inlined, and the CSP that lets exactly that style and script in."""
    static = resources.files("service") / "static"
    css = (static / "status.css").read_text(encoding="utf-8")
    script = (static / "status.js").read_text(encoding="utf-8")
    html = (static / "status.html").read_text(encoding="utf-8")
    html = html.replace("/*CSS*/", css).replace("/*JS*/", script)
    # blob: for the QR image, which the script fetches with the key and shows from memory.
    csp = (f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(css)}; connect-src 'self'; "
           "img-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


async def status_page(request: web.Request) -> web.Response:
    html, csp = _page()
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})
