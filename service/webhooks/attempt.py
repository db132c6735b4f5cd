"""One attempt: the delivery's stored body POSTed once, signed, and what came back.

Nothing is decided here (``schedule.decide`` does that) and nothing is stored (the worker does that):
an attempt only talks to the endpoint. Redirects are not followed; an account endpoint reaches only what
its address policy permits (``address.py``), an IP literal included.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from service.webhooks.address import REFUSED_REASON, AddressPolicy, AddressRefused
from service.webhooks.schedule import retry_after
from service.webhooks.secret import EndpointSecret, signing
from service.webhooks.signature import headers_for


@dataclass(frozen=True, slots=True)
class Answer:
    """What one POST got: the status (None when no answer came), why it failed without one, and the
    ``Retry-After`` hint in seconds."""

    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


def describe(exc: BaseException) -> str:
    """A short reason for a failed request, without the URL (it may carry credentials)."""
    if isinstance(exc, AddressRefused) or isinstance(getattr(exc, "os_error", None), AddressRefused):
        return REFUSED_REASON  # generic: never which address, nor what it is
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return f"request: {type(exc).__name__}"


async def post(session: aiohttp.ClientSession, url: str, egress: AddressPolicy | None,
               secrets: tuple[str, ...] | EndpointSecret, event_id: str, body: str) -> Answer:
    """POST ``body`` to ``url`` once, signed with ``secrets`` as of now (``webhook-id``: ``event_id``)."""
    timestamp = int(time.time())
    headers = headers_for(signing(secrets, time.time()), event_id, timestamp, body)
    status_code: int | None = None
    error: str | None = None
    wait_hint: float | None = None
    try:
        if egress is not None:
            egress.check_literal(url)  # an IP literal never reaches the pinned resolver
        async with session.post(url, data=body.encode("utf-8"), headers=headers, allow_redirects=False) as resp:
            status_code = resp.status
            wait_hint = retry_after(resp.headers.get("Retry-After"), time.time())
    except asyncio.CancelledError:
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        error = describe(exc)
    return Answer(status_code, error, wait_hint)
