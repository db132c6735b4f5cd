"""Test pings (``POST /webhooks/test``): one ``webhook.test`` event POSTed to each target right now.

A ping is signed exactly like a real delivery (``headers_for``: the Standard Webhooks headers with every
signing secret) and carries the same envelope as the stored events (``id``, ``type``, ``account``,
``timestamp``, ``data``), so a receiver that verifies and parses real deliveries takes it the same way.
It is not queued, not stored and never retried. An account's endpoint (and a URL the admin gives) goes only
where the address policy permits (service/webhooks/address.py: resolved once, checked, pinned, no redirect);
the operator's WA_WEBHOOK_URL endpoints are trusted. The admin learns what the endpoint answered; a key scoped
to an account only whether it was delivered (``tenant_view``): no status, no error text, no timing.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from service.store.event_log import iso
from service.store.ids import new_id
from service.webhooks.address import AddressPolicy, guarded_connector
from service.webhooks.attempt import describe
from service.webhooks.endpoint_names import public_url
from service.webhooks.secret import EndpointSecret, signing
from service.webhooks.signature import headers_for

log = structlog.get_logger("gateway.webhooks")

TYPE = "webhook.test"
CONCURRENCY = 8  # targets pinged at once


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # as configured (may carry credentials: never shown or logged as is)
    id: str | None  # an account endpoint's whe_...; None for a global endpoint (its id is its URL) or a given URL
    account: str | None  # the endpoint's account; None for a global endpoint or a given URL
    secrets: tuple[str, ...] | EndpointSecret = ()  # what it is signed with (an account endpoint: its own)
    trusted: bool = False  # a WA_WEBHOOK_URL endpoint: not checked against the address policy


def payload(target: Target, now: float) -> tuple[str, str]:
    """(webhook-id, body) of the ping to ``target``."""
    msg_id = "evt_" + new_id(now)
    body = json.dumps(
        {"id": msg_id, "type": TYPE, "account": target.account, "timestamp": iso(now),
         "data": {"account": target.account, "endpoint": public_url(target.url)}},
        ensure_ascii=False, separators=(",", ":"),
    )
    return msg_id, body


async def _one(session: aiohttp.ClientSession, target: Target, egress: AddressPolicy | None) -> dict[str, Any]:
    now = time.time()
    msg_id, body = payload(target, now)
    headers = headers_for(signing(target.secrets, now), msg_id, int(now), body)
    status_code: int | None = None
    error: str | None = None
    started = time.monotonic()
    try:
        if egress is not None:
            egress.check_literal(target.url)
        async with session.post(target.url, data=body.encode("utf-8"), headers=headers,
                                allow_redirects=False) as resp:
            status_code = resp.status
    except asyncio.CancelledError:
        raise
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        error = describe(exc)
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


def tenant_view(result: dict[str, Any]) -> dict[str, Any]:
    """What a key scoped to an account learns of a ping: delivered or not, nothing the receiver answered."""
    return {k: result[k] for k in ("endpoint", "id", "ok", "webhook_id")}


async def ping(targets: list[Target], egress: AddressPolicy, timeout: float) -> list[dict[str, Any]]:
    """One signed ``webhook.test`` POST to each target (``timeout`` seconds each), in the given order: the
    trusted ones directly, the others through ``egress`` (checked, pinned)."""
    if not targets:
        return []
    gate = asyncio.Semaphore(CONCURRENCY)

    def session(policy: AddressPolicy | None) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=guarded_connector(policy), cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=timeout))

    async with session(None) as trusted, session(egress) as guarded:
        async def bounded(target: Target) -> dict[str, Any]:
            async with gate:
                if target.trusted:
                    return await _one(trusted, target, None)
                return await _one(guarded, target, egress)

        return list(await asyncio.gather(*(bounded(t) for t in targets)))
