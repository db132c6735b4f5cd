"""``GET /metrics``: the Prometheus text format (service/metrics.py). The admin key only, unless
``WA_METRICS_PUBLIC=true`` (service/middlewares.py): the numbers name accounts and webhook endpoints."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..keys import METRICS
from ..metrics import CONTENT_TYPE


async def metrics(request: web.Request) -> web.Response:
    # Off the event loop: collecting waits on the store's writer thread (bounded, service/metrics.py).
    body = await asyncio.to_thread(request.app[METRICS].render)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
