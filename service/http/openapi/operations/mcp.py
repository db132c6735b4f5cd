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
         "WA_MCP_ENABLED=false. A refusal is this API's error (`unauthorized`, `mcp_disabled`, `unknown_field`, "
         "`shutting_down`) or the MCP transport's own JSON-RPC error. See the README's MCP section.")

# What the SDK's transport answers itself (a JSON-RPC error, not this API's shape) beside the gateway's own errors:
# 400 a malformed message or no Mcp-Session-Id, 404 an unknown or another key's session, 406 an Accept without
# application/json and text/event-stream, 413 a body over WA_MAX_BODY_BYTES, 415 a body that is not JSON, 503 too
# many open sessions; a POST whose Content-Type is not JSON gets 400 in plain text.
JSONRPC_ERROR = {"type": "object", "required": ["jsonrpc", "error"], "properties": {
    "jsonrpc": {"const": "2.0"}, "id": {}, "error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "integer"}, "message": {"type": "string"}, "data": {}}}}}
EITHER = {JSON: {"schema": {"anyOf": [{"$ref": "#/components/schemas/ErrorResponse"}, JSONRPC_ERROR]}},
          "text/plain": {"schema": {"type": "string", "description": "The transport's words (a bad Content-Type)."}}}
REFUSED = {status: EITHER for status in (400, 404, 406, 413, 415, 503)}
RETRY: dict[int, tuple[str, ...]] = {503: ("Retry-After",)}

OPERATIONS: dict[Handler, Op] = {
    mcp.mcp_message: Op("MCP: send a JSON-RPC message", "MCP", {200: JSONRPC, 202: {}, **REFUSED},
                        headers=RETRY, description=ABOUT),
    mcp.mcp_stream: Op("MCP: the session's event stream", "MCP", {200: JSONRPC, **REFUSED}, headers=RETRY,
                       description="Server-Sent Events: the server's notifications to the session (resource "
                                   "updates). Needs the Mcp-Session-Id the session's initialize answered."),
    mcp.mcp_close: Op("MCP: end the session", "MCP", {200: {}, **REFUSED}, headers=RETRY,
                      description="Ends the session named by the Mcp-Session-Id header."),
}
