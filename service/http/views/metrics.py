"""``GET /metrics``: the Prometheus text format (service/http/metrics.py). The admin key only, unless
``WA_METRICS_PUBLIC=true`` (service/http/middlewares.py): the numbers name accounts and webhook endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from service.errors import ApiError
from service.http.appkeys import ACCOUNTS, METRICS
from service.http.metrics import CONTENT_TYPE, WorkerQueues
from service.runtime.worker_client import WorkerClient

SHARD_TIMEOUT = 1.0  # seconds a worker shard may take to list its accounts' queues for a scrape


async def _worker_queues(request: web.Request) -> WorkerQueues:
    """Every served account's in-memory queues with their bounds (the worker's GET /accounts: one request per
    shard, not per account); a shard that does not answer in time is left out of this scrape."""
    runtime = request.app.get(ACCOUNTS)
    if runtime is None:
        return {}

    async def shard(worker: WorkerClient) -> list[dict[str, Any]]:
        try:
            async with asyncio.timeout(SHARD_TIMEOUT):
                accounts: list[dict[str, Any]] = (await worker.request("GET", "/accounts")).get("accounts") or []
                return accounts
        except (ApiError, TimeoutError):
            return []
    listed = await asyncio.gather(*(shard(w) for w in runtime.workers))
    return {a["name"]: a.get("queues") or {} for accounts in listed for a in accounts if isinstance(a, dict)}


async def metrics(request: web.Request) -> web.Response:
    request.app[METRICS].worker_queues = await _worker_queues(request)
    # Off the event loop: collecting waits on the store's writer thread (bounded, service/http/metrics.py).
    body = await asyncio.to_thread(request.app[METRICS].render)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
