"""The shipped pages (``/`` and ``/docs``): one HTML file with its CSS and script (dom.js, the shared DOM
helpers, then the page's own parts ``<name>-*.js`` and its main script) inlined from service/http/static/, and
a Content-Security-Policy that lets exactly that script and style run (by their sha256) and nothing be loaded
from elsewhere. Built once per process: the files do not change while it runs."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from importlib import resources

from aiohttp import web

from service.states import MessageStatus, WorkerState

# The states the pages name, from service/states.py: ``STATE_NAMES.worker.QR`` is "qr" (no string in a
# page's script spells a state itself).
STATES_PRELUDE = "const STATE_NAMES = " + json.dumps({
    "worker": {s.name: s.value for s in WorkerState},
    "message": {s.name: s.value for s in MessageStatus},
}, sort_keys=True) + ";\n"


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@functools.cache
def _build(name: str, img_src: str) -> tuple[str, str]:
    static = resources.files("service.http") / "static"
    css = (static / f"{name}.css").read_text(encoding="utf-8")
    # A page's own parts (``status-media.js``) come before its main script, which uses them.
    parts = sorted((p for p in static.iterdir() if p.name.startswith(f"{name}-") and p.name.endswith(".js")),
                   key=lambda p: p.name)
    script = STATES_PRELUDE + "".join(p.read_text(encoding="utf-8")
                                      for p in (static / "dom.js", *parts, static / f"{name}.js"))
    html = (static / f"{name}.html").read_text(encoding="utf-8").replace("/*CSS*/", css).replace("/*JS*/", script)
    csp = (f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(css)}; connect-src 'self'; "
           f"img-src {img_src}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


def respond(name: str, *, img_src: str = "'self'") -> web.Response:
    """``service/http/static/<name>.{html,css,js}`` as one page; ``img_src`` widens images (e.g. ``blob:``)."""
    html, csp = _build(name, img_src)
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})
