"""The MCP tools: each one call (or two) of the gateway's public API, with the caller's key.

A tool is its name, its schema and description (``tool_schemas.py``), whether it only reads or destroys
something (the MCP annotations a client shows its user), and a handler from the checked arguments to the
gateway's JSON answer. Nothing here validates beyond the schema or decides who may see what: the gateway
does, once, for MCP and HTTP alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from service.mcp.caller import Caller
from service.mcp.gateway_api import GatewayApi, segment
from service.mcp_names import ALL_TOOLS, DESTRUCTIVE_TOOLS


@dataclass(frozen=True, slots=True)
class Budget:
    """The caller's send budget in the store: ``take()`` -> (token, 0) or (None, seconds to wait)."""

    take: Callable[[], Awaitable[tuple[str | None, float]]]
    refund: Callable[[str], Awaitable[None]]
    left: Callable[[], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Call:
    api: GatewayApi
    caller: Caller
    account: str
    args: dict[str, Any]
    budget: Budget
    max_message_chars: int


Handler = Callable[[Call], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    handler: Handler
    read_only: bool
    idempotent: bool

    @property
    def destructive(self) -> bool:
        return self.name in DESTRUCTIVE_TOOLS


def _page(call: Call) -> dict[str, Any]:
    return {"limit": call.args.get("limit", 20), "cursor": call.args.get("cursor")}


async def status(call: Call) -> dict[str, Any]:
    return await call.api.call("GET", "/status", account=call.account)


async def list_chats(call: Call) -> dict[str, Any]:
    return await call.api.call("GET", "/chats", account=call.account, params=_page(call))


async def read_messages(call: Call) -> dict[str, Any]:
    return await call.api.call("GET", f"/chats/{segment(call.args['chat'])}/messages", account=call.account,
                               params=_page(call))


async def search_messages(call: Call) -> dict[str, Any]:
    return await call.api.call("GET", "/messages/search", account=call.account,
                               params={"q": call.args["query"], "chat": call.args.get("chat"), **_page(call)})


async def get_contact(call: Call) -> dict[str, Any]:
    picture = True if call.args.get("picture") else None
    return await call.api.call("GET", f"/contacts/{segment(call.args['phone_number'])}", account=call.account,
                               params={"picture": picture})


async def mark_read(call: Call) -> dict[str, Any]:
    return await call.api.call("POST", f"/chats/{segment(call.args['chat'])}/read", account=call.account, body={})


async def groups(call: Call) -> dict[str, Any]:
    group = call.args.get("group_id")
    path = "/groups" if group is None else f"/groups/{segment(group)}"
    return await call.api.call("GET", path, account=call.account)


async def logout(call: Call) -> dict[str, Any]:
    return await call.api.call("POST", "/disconnect", account=call.account, body={})


async def revoke_message(call: Call) -> dict[str, Any]:
    return await call.api.call("POST", f"/messages/{segment(call.args['message_id'])}/revoke", account=call.account,
                               body={})


async def leave_group(call: Call) -> dict[str, Any]:
    return await call.api.call("POST", f"/groups/{segment(call.args['group_id'])}/leave", account=call.account,
                               body={})


def registry(send: Handler) -> dict[str, Tool]:
    """Every tool by name, in the order they are listed; ``send`` is send_message's handler (sending.py)."""
    tools = [
        Tool("status", status, read_only=True, idempotent=True),
        Tool("send_message", send, read_only=False, idempotent=False),
        Tool("list_chats", list_chats, read_only=True, idempotent=True),
        Tool("read_messages", read_messages, read_only=True, idempotent=True),
        Tool("search_messages", search_messages, read_only=True, idempotent=True),
        Tool("get_contact", get_contact, read_only=True, idempotent=True),
        Tool("mark_read", mark_read, read_only=False, idempotent=True),
        Tool("groups", groups, read_only=True, idempotent=True),
        Tool("logout", logout, read_only=False, idempotent=True),
        Tool("revoke_message", revoke_message, read_only=False, idempotent=True),
        Tool("leave_group", leave_group, read_only=False, idempotent=True),
    ]
    assert tuple(t.name for t in tools) == ALL_TOOLS, "names.py lists every tool, in this order"
    return {t.name: t for t in tools}
