"""Test pings (``POST /webhooks/test``): one ``webhook.test`` event POSTed to each target right now.

A ping is signed exactly like a real delivery (``headers_for``: the Standard Webhooks headers with every
signing secret) and carries the same envelope as the stored events (``id``, ``type``, ``account``,
``timestamp``, ``data``), so a receiver that verifies and parses real deliveries takes it the same way.
It is not queued, not stored and never retried: the answer says what the endpoint answered this once.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import aiohttp
import structlog

from ..store.events import iso
from ..store.ids import new_id
from .delivery import _describe, headers_for, public_url

log = structlog.get_logger("gateway.webhooks")

TYPE = "webhook.test"
CONCURRENCY = 8  # targets pinged at once


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # as configured (may carry credentials: never shown or logged as is)
    id: str | None  # an account endpoint's whe_...; None for a global endpoint (its id is its URL) or a given URL
    account: str | None  # the endpoint's account; None for a global endpoint or a given URL


def payload(target: Target, now: float) -> tuple[str, str]:
    """(webhook-id, body) of the ping to ``target``."""
    msg_id = "evt_" + new_id(now)
    body = json.dumps(
        {"id": msg_id, "type": TYPE, "account": target.account, "timestamp": iso(now),
         "data": {"account": target.account, "endpoint": public_url(target.url)}},
        ensure_ascii=False, separators=(",", ":"),
    )
    return msg_id, body


async def _one(session: aiohttp.ClientSession, target: Target, secrets: tuple[str, ...]) -> dict:
    now = time.time()
    msg_id, body = payload(target, now)
    headers = headers_for(secrets, msg_id, int(now), body)
    status_code: int | None = None
    error: str | None = None
    started = time.monotonic()
    try:
        async with session.post(target.url, data=body.encode("utf-8"), headers=headers,
                                allow_redirects=False) as resp:
            status_code = resp.status
    except asyncio.CancelledError:
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
        error = _describe(exc)
    elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    ok = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not ok:
        error = f"HTTP {status_code}"
    endpoint = public_url(target.url)
    # The public URL, never the secret, the signature or the body.
    log.info("webhook.test", endpoint=endpoint, webhook_id=msg_id, account=target.account, ok=ok,
             status_code=status_code, error=error, elapsed_ms=elapsed_ms)
    return {"endpoint": endpoint, "id": target.id, "ok": ok, "status_code": status_code, "error": error,
            "elapsed_ms": elapsed_ms, "webhook_id": msg_id}


async def ping(targets: list[Target], secrets: tuple[str, ...], timeout: float) -> list[dict]:
    """One signed ``webhook.test`` POST to each target (``timeout`` seconds each), in the given order."""
    if not targets:
        return []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def bounded(target: Target) -> dict:
        async with gate:
            return await _one(session, target, secrets)

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        return list(await asyncio.gather(*(bounded(t) for t in targets)))
