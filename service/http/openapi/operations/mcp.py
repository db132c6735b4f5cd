"""The documentation of ``/mcp``: the Model Context Protocol over Streamable HTTP (service/mcp/).

Its messages are JSON-RPC as the MCP specification defines them, not this API's models: the operations say
what HTTP shows (who may call, what comes back, the gateway's own errors) and point to the README's MCP section
for the tools.
"""

from __future__ import annotations

from service.http.openapi.spec import JSON, Op
from service.http.route_table import Handler
from service.http.views import mcp

JSONRPC = {JSON: {"schema": {"type": "object", "description": "A JSON-RPC 2.0 message (MCP)."}},
           "text/event-stream": {"schema": {"type": "string", "description": "JSON-RPC messages as SSE events."}}}
ABOUT = ("The Model Context Protocol's Streamable HTTP transport (MCP 2025-06-18 and later): an MCP client "
         "(an AI agent) lists and calls the gateway's tools (status, send_message, list_chats, read_messages, "
         "search_messages, get_contact, mark_read, groups) and reads or subscribes to the resource "
         "wa://accounts/{account}/inbox. Any valid key: a key scoped to one account acts on that account only, "
         "since every tool calls this API with the same key. The rails (tools allowed, send budget per hour, dry "
         "run) are the WA_MCP_* settings, or what the admin set on a scoped key. 404 `mcp_disabled` while "
         "WA_MCP_ENABLED=false. See the README's MCP section.")

OPERATIONS: dict[Handler, Op] = {
    mcp.mcp_message: Op("MCP: send a JSON-RPC message", "MCP", {200: JSONRPC, 202: {}},
                        errors={404: ("mcp_disabled",)}, description=ABOUT),
    mcp.mcp_stream: Op("MCP: the session's event stream", "MCP", {200: JSONRPC}, errors={404: ("mcp_disabled",)},
                       description="Server-Sent Events: the server's notifications to the session (resource "
                                   "updates). Needs the Mcp-Session-Id the session's initialize answered."),
    mcp.mcp_close: Op("MCP: end the session", "MCP", {200: {}}, errors={404: ("mcp_disabled",)},
                      description="Ends the session named by the Mcp-Session-Id header."),
}
