"""Mounting ``/mcp`` in the gateway's app, with the MCP SDK loaded on the first request that needs it.

Why lazily: importing the SDK (starlette, pydantic models of the whole protocol, jsonschema) is about a third of
the gateway's start-up (0.43 of 1.45 s measured), paid at every start and every restart after a crash, while most
deployments never call /mcp. So this module imports nothing of the SDK: the endpoint (service/mcp/endpoint.py) is
made and started by the first /mcp request (one at a time, behind a lock) and stopped at clean-up if it ran.

Shutdown: aiohttp waits for running handlers before its clean-up, so the open event streams must end at
``on_shutdown`` (any shutdown) and when a drain begins (SIGTERM): both set the endpoint's ``closing``. A drain that
begins before the first request leaves nothing to close, and the drain middleware refuses /mcp from then on.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from service.http.appkeys import DRAIN, MCP_ENDPOINT, SETTINGS

if TYPE_CHECKING:
    from service.mcp.endpoint import McpEndpoint


class LazyEndpoint:
    """The app's /mcp handler: makes the SDK's session manager on first use, then hands every request to it."""

    def __init__(self, app: web.Application):
        self.app = app
        self.endpoint: McpEndpoint | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> McpEndpoint:
        async with self._lock:
            if self.endpoint is None:
                from service.mcp.endpoint import McpEndpoint  # the SDK: loaded here, once

                endpoint = McpEndpoint(self.app)
                await endpoint.start()
                self.app[DRAIN].on_begin.append(endpoint.closing.set)
                self.endpoint = endpoint
            return self.endpoint

    async def handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = self.endpoint or await self._started()
        return await endpoint.handle(request)

    async def shutting_down(self, app: web.Application) -> None:
        if self.endpoint is not None:
            self.endpoint.closing.set()

    async def cleanup(self, app: web.Application) -> None:
        if self.endpoint is not None:
            await self.endpoint.stop()


def mount(app: web.Application) -> None:
    """Serve /mcp in ``app`` (made by create_app) unless WA_MCP_ENABLED=false."""
    if not app[SETTINGS].mcp_enabled:
        return
    lazy = LazyEndpoint(app)
    app[MCP_ENDPOINT] = lazy.handle
    app.on_shutdown.append(lazy.shutting_down)
    app.on_cleanup.append(lazy.cleanup)
