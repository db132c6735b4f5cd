"""``GET|POST|DELETE /mcp``: the Model Context Protocol over Streamable HTTP (service/mcp/).

Only a door here: the http layer does not know MCP. The MCP package (above it) mounts its endpoint in the app
(service/mcp/endpoint.py) when the gateway program starts; without it (WA_MCP_ENABLED=false, or an app made
without it) the path answers 404 ``mcp_disabled``. Any valid key may come in: what it may see and do inside is
its own account's, because every tool calls this API with that same key.
"""

from __future__ import annotations

from aiohttp import web

from service.errors import NotFound
from service.http.appkeys import MCP_ENDPOINT


async def _door(request: web.Request) -> web.StreamResponse:
    endpoint = request.app.get(MCP_ENDPOINT)
    if endpoint is None:
        raise NotFound("The MCP server is off (WA_MCP_ENABLED=false).", code="mcp_disabled")
    return await endpoint(request)


# One handler per method: the contract names each operation after its handler.
async def mcp_message(request: web.Request) -> web.StreamResponse:
    """POST: a client's JSON-RPC message (the first one, initialize, opens a session)."""
    return await _door(request)


async def mcp_stream(request: web.Request) -> web.StreamResponse:
    """GET: the session's event stream of the server's own messages (resource updates)."""
    return await _door(request)


async def mcp_close(request: web.Request) -> web.StreamResponse:
    """DELETE: the client ends its session."""
    return await _door(request)
