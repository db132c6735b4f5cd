"""``/mcp`` in the gateway: the SDK's Streamable HTTP session manager, started by the first /mcp request and run
until the app's clean-up (service/mcp/mount.py), reached through the route the key middleware guards
(service/http/views/mcp.py calls ``McpEndpoint.handle``).

Lifecycle: the manager's ``run()`` holds an anyio task group that must be entered and left by one task, and
aiohttp may run an app's start-up and clean-up in different tasks, so the manager runs in a task of its own
from start to stop. SIGTERM's drain sets ``closing``: the sessions' open event streams end at once (the bridge
answers ``http.disconnect``), requests in flight finish; the clean-up then stops the manager, which ends every
session.

Sessions are bound to the key that opened them: the manager refuses (404) a request for a session made by
another key, because the scope says who the caller is (an AuthenticatedUser whose client id is the key's
identity, never its value).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from service.http.appkeys import DATABASE, NOTIFIER, SETTINGS
from service.mcp import asgi_bridge
from service.mcp.caller import Caller, caller_of
from service.mcp.gateway_api import GatewayApi
from service.mcp.server import SCOPE_KEY, Context, build_server
from service.mcp.tools import Budget
from service.store import mcp_rails
from service.store.db import Database

log = structlog.get_logger("gateway.mcp")

MAX_SESSIONS = 1000  # open MCP sessions at once (each holds a task); one more is 503 until one ends
SESSION_IDLE = 30 * 60.0  # seconds: a session without any request for this long is closed


def budget_of(database: Database, caller: Caller) -> Budget:
    rails = caller.rails

    async def take() -> tuple[str | None, float]:
        return await database.run(mcp_rails.take_send, caller.key_ref, rails.send_budget, time.time())

    async def refund(token: str) -> None:
        await database.run(mcp_rails.refund_send, token)

    async def left() -> int:
        return await database.run(mcp_rails.sends_left, caller.key_ref, rails.send_budget, time.time())

    return Budget(take, refund, left)


def base_url(request: web.Request) -> str:
    """Where this gateway answers the request's own connection: the local address of its socket."""
    local = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(local, tuple):
        settings = request.app[SETTINGS]
        return f"http://127.0.0.1:{settings.port}"
    host, port = local[0], local[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class McpEndpoint:
    def __init__(self, app: web.Application):
        self.app = app
        settings = app[SETTINGS]
        self.manager = StreamableHTTPSessionManager(
            build_server(self._context), max_request_body_size=settings.max_body_bytes,
            session_idle_timeout=SESSION_IDLE, max_sessions=MAX_SESSIONS)
        self.closing = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.http: aiohttp.ClientSession | None = None

    def _context(self) -> Context:
        request = self.manager.app.request_context.request
        return request.scope[SCOPE_KEY]  # type: ignore[no-any-return,union-attr]

    async def start(self) -> None:
        self.http = aiohttp.ClientSession()
        running = asyncio.Event()

        async def run() -> None:
            async with self.manager.run():
                running.set()
                await self._stop.wait()

        self._task = asyncio.create_task(run(), name="mcp-sessions")
        await running.wait()

    async def stop(self) -> None:
        self.closing.set()
        self._stop.set()
        if self._task is not None:
            await self._task
        if self.http is not None:
            await self.http.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        caller = await caller_of(request)
        assert self.http is not None
        settings = request.app[SETTINGS]
        notifier = request.app.get(NOTIFIER)
        context = Context(caller, GatewayApi(self.http, base_url(request), caller.key),
                          budget_of(request.app[DATABASE], caller), settings.max_message_chars,
                          notifier.current if notifier is not None else None)
        user = AuthenticatedUser(AccessToken(token="-", client_id=caller.key_ref, scopes=[]))
        extra: dict[str, Any] = {SCOPE_KEY: context, "user": user}
        return await asgi_bridge.serve(request, self.manager.handle_request, self.closing, extra)
