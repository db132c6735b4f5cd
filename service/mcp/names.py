"""The MCP tools' names, apart from the tools themselves so that the settings (WA_MCP_TOOLS) can check a name
without importing the server. The destructive ones exist only when the operator sets WA_MCP_DESTRUCTIVE=true."""

from __future__ import annotations

SAFE_TOOLS = ("status", "send_message", "list_chats", "read_messages", "search_messages", "get_contact",
              "mark_read", "groups")
DESTRUCTIVE_TOOLS = ("logout", "revoke_message", "leave_group")
ALL_TOOLS = SAFE_TOOLS + DESTRUCTIVE_TOOLS
# Tools that send something to WhatsApp on the caller's behalf: each call takes one unit of the send budget.
SENDING_TOOLS = frozenset({"send_message"})
