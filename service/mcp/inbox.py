"""New messages for an agent: the resource ``wa://accounts/{account}/inbox`` (the account's latest inbound
messages, newest first) that a client may subscribe to; it is told ``notifications/resources/updated`` when a
new message came in, and reads the resource again.

A subscription is a task of the MCP session (cancelled with it, ``Subscriptions.close``). It asks the API, with
the subscriber's key, for the newest inbound message whenever the gateway's notifier rings (a new event was
stored) and at least every ``POLL`` seconds (another instance of a cluster stored it), and notifies when that
message changed. Over Streamable HTTP the notification travels on the session's GET stream; over stdio, through
``wa-gateway mcp``, which forwards that stream.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from service.mcp.gateway_api import GatewayApi, ToolError

log = structlog.get_logger("gateway.mcp")

TEMPLATE = "wa://accounts/{account}/inbox"
_URI = re.compile(r"wa://accounts/([a-z][a-z0-9-]{0,30}[a-z0-9])/inbox")
RECENT = 20  # messages the resource shows
POLL = 5.0  # seconds between two looks when the notifier stays silent


def uri_of(account: str) -> str:
    return TEMPLATE.format(account=account)


def account_of(uri: str) -> str:
    """The account a resource URI names; ToolError 404 for any other URI."""
    match = _URI.fullmatch(uri)
    if match is None:
        raise ToolError(404, "resource_not_found", f"No such resource; the inbox is {TEMPLATE}.")
    return match.group(1)


async def recent(api: GatewayApi, account: str, limit: int = RECENT) -> dict[str, Any]:
    return await api.call("GET", "/messages", account=account, params={"direction": "in", "limit": limit})


def _newest(page: dict[str, Any]) -> str | None:
    messages = page.get("messages") or []
    return str(messages[0].get("id")) if messages and isinstance(messages[0], dict) else None


class Subscriptions:
    """One MCP session's subscriptions: URI -> its watching task."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def subscribe(self, uri: str, api: GatewayApi, notify: Callable[[str], Awaitable[None]],
                        wake: Callable[[], asyncio.Event] | None) -> None:
        """Watch ``uri`` for the session; ``wake``: the notifier's current event (None: poll only)."""
        account = account_of(uri)
        seen = _newest(await recent(api, account, 1))  # also: 403/404 now, for an account the key may not see
        self.unsubscribe(uri)
        self._tasks[uri] = asyncio.create_task(self._watch(uri, account, seen, api, notify, wake), name="mcp-inbox")

    def unsubscribe(self, uri: str) -> None:
        task = self._tasks.pop(uri, None)
        if task is not None:
            task.cancel()

    def close(self) -> None:
        for uri in list(self._tasks):
            self.unsubscribe(uri)

    async def _watch(self, uri: str, account: str, seen: str | None, api: GatewayApi,
                     notify: Callable[[str], Awaitable[None]], wake: Callable[[], asyncio.Event] | None) -> None:
        while True:
            if wake is not None:
                try:
                    async with asyncio.timeout(POLL):
                        await wake().wait()
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(POLL)
            try:
                newest = _newest(await recent(api, account, 1))
            except ToolError as exc:
                if exc.status in (401, 403, 404):  # the key was revoked, the account deleted: nothing to watch
                    log.info("mcp.subscription_ended", account=account, code=exc.code)
                    return
                continue
            if newest != seen:
                seen = newest
                try:
                    await notify(uri)
                except Exception:  # the session is gone (its streams closed): so is the subscription
                    return
