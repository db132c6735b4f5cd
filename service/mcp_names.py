"""The MCP tools' names, apart from the tools themselves (service/mcp/) so that the settings (WA_MCP_TOOLS) and the
key model (a scoped key's own tool list) can check a name without importing the MCP server, which sits above
the http layer. The destructive ones exist only when the operator sets WA_MCP_DESTRUCTIVE=true."""

from __future__ import annotations

SAFE_TOOLS = ("status", "send_message", "list_chats", "read_messages", "search_messages", "get_contact",
              "mark_read", "groups")
DESTRUCTIVE_TOOLS = ("logout", "revoke_message", "leave_group")
ALL_TOOLS = SAFE_TOOLS + DESTRUCTIVE_TOOLS
