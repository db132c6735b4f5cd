"""An MCP agent on one real sandbox stack (gateway, worker with the real Baileys, the emulator's contact), issue 27
item 2: the SDK's own client, over Streamable HTTP (/mcp) and over stdio (``wa-gateway mcp``, the key in the
environment), lists the tools, sends a message the emulator's contact receives, is told by its inbox subscription
that the contact answered, and reads the answer back; a key of another account sees and sends nothing of this one;
a tool left out of a key's rails is not listed, and its send budget stops the second send."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from mcp import types
from pydantic import AnyUrl

from tests.helpers.accounts import inbox
from tests.helpers.mcp_client import http_session, payload, stdio_session
from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import API_KEY, Stack

pytestmark = pytest.mark.system
INBOX = "wa://accounts/default/inbox"


@pytest.fixture(scope="module")
def stack():
    with Stack(sandbox=True) as running:
        pair(running)
        yield running


async def eventually(probe: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


class Updates:
    """The resource updates the server sent this client session."""

    def __init__(self) -> None:
        self.uris: list[str] = []

    async def __call__(self, message: Any) -> None:
        root = message.root if isinstance(message, types.ServerNotification) else None
        if isinstance(root, types.ResourceUpdatedNotification):
            self.uris.append(str(root.params.uri))


def key_for(stack: Stack, account: str = "default", **mcp: Any) -> str:
    res = stack.post(f"/accounts/{account}/keys", {"mcp": mcp} if mcp else {})
    assert res.status == 201, res.raw
    return str(res.json()["key"])


async def converse(stack: Stack, session, updates: Updates, tag: str) -> None:
    """Send, see it at the contact's phone, the contact answers, the subscription tells, read the answer back."""
    names = [t.name for t in (await session.list_tools()).tools]
    assert {"status", "send_message", "read_messages", "list_chats"} <= set(names)
    status = payload(await session.call_tool("status", {}))
    assert status["state"] == "connected", status
    await session.subscribe_resource(AnyUrl(INBOX))
    sent = await session.call_tool("send_message", {"to": CONTACT, "text": f"hello over {tag}",
                                                    "idempotency_key": f"mcp-{tag}-{os.getpid()}"})
    assert not sent.isError, payload(sent)
    assert payload(sent)["status"] in ("queued", "sending", "sent", "delivered", "read")
    await eventually(lambda: asyncio.to_thread(lambda: [m for m in inbox(stack, CONTACT)
                                                        if m.get("text") == f"hello over {tag}"]),
                     60, f"the contact's phone to receive the {tag} message")
    before = len(updates.uris)
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": f"answer over {tag}"})
    assert res.status == 200, res.raw
    await eventually(lambda: asyncio.sleep(0, len(updates.uris) > before), 60, f"the inbox update ({tag})")
    assert updates.uris[-1] == INBOX

    async def answer() -> dict | None:
        page = payload(await session.call_tool("read_messages", {"chat": CONTACT, "limit": 10}))
        return next((m for m in page.get("messages", []) if m["text"] == f"answer over {tag}"), None)

    found = await eventually(answer, 60, f"the contact's answer in read_messages ({tag})")
    assert found["direction"] == "in"
    recent = await session.read_resource(AnyUrl(INBOX))
    assert f"answer over {tag}" in recent.contents[0].text


async def test_over_streamable_http_an_agent_sends_and_reads_the_answer(stack):
    updates = Updates()
    async with http_session(stack.base, API_KEY, message_handler=updates) as session:
        await converse(stack, session, updates, "http")


async def test_over_stdio_an_agent_sends_and_reads_the_answer(stack):
    updates = Updates()
    async with stdio_session(stack.base, API_KEY, message_handler=updates) as session:
        await converse(stack, session, updates, "stdio")


async def test_a_key_of_another_account_sees_and_sends_nothing_of_this_one(stack):
    assert stack.post("/accounts", {"name": "sales"}).status == 201
    key = key_for(stack, "sales")
    async with stdio_session(stack.base, key) as session:
        for tool, args in [("send_message", {"account": "default", "to": CONTACT, "text": "not mine"}),
                           ("read_messages", {"account": "default", "chat": CONTACT}),
                           ("list_chats", {"account": "default"}),
                           ("search_messages", {"account": "default", "query": "answer"})]:
            refused = await session.call_tool(tool, args)
            assert refused.isError and payload(refused)["error"]["code"] == "forbidden", (tool, payload(refused))
        own = payload(await session.call_tool("list_chats", {}))  # its own account: nothing of default's
        assert CONTACT not in [c["id"] for c in own["chats"]]
    assert not [m for m in inbox(stack, CONTACT) if m.get("text") == "not mine"]


async def test_a_tool_left_out_is_not_listed_and_the_budget_stops_the_second_send(stack):
    key = key_for(stack, tools=["status", "send_message"], send_budget_per_hour=1)
    async with http_session(stack.base, key) as session:
        assert [t.name for t in (await session.list_tools()).tools] == ["status", "send_message"]
        hidden = await session.call_tool("read_messages", {"chat": CONTACT})
        assert payload(hidden)["error"]["code"] == "unknown_tool"
        first = payload(await session.call_tool("send_message", {"to": CONTACT, "text": "budget one"}))
        assert first["send_budget_left"] == 0
        second = payload(await session.call_tool("send_message", {"to": CONTACT, "text": "budget two"}))
        assert second["error"]["code"] == "send_budget_exhausted"
        dry = payload(await session.call_tool("send_message", {"to": CONTACT, "text": "dry", "dry_run": True}))
        assert dry["sent"] is False
    await eventually(lambda: asyncio.to_thread(lambda: [m for m in inbox(stack, CONTACT)
                                                        if m.get("text") == "budget one"]), 60, "the budgeted send")
    texts = [m.get("text") for m in inbox(stack, CONTACT)]
    assert "budget two" not in texts and "dry" not in texts
