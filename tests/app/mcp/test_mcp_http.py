"""/mcp in-process (no worker): the SDK's client over Streamable HTTP against the app with the MCP endpoint
mounted as the gateway program mounts it. Who may come in, what a key lists, bad arguments, dry run, the
budget's refusal, and a scoped key that cannot reach another account or another key's session."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import McpError

from service.mcp_names import DESTRUCTIVE_TOOLS, SAFE_TOOLS
from tests.helpers.inprocess import AUTH, KEY
from tests.helpers.mcp_client import gateway, http_session, payload, scoped_key


async def test_the_admin_key_lists_the_safe_tools_with_their_schemas(aiohttp_client, tmp_path):
    _, url = await gateway(aiohttp_client, tmp_path)
    async with http_session(url, KEY) as mcp:
        tools = (await mcp.list_tools()).tools
        assert [t.name for t in tools] == list(SAFE_TOOLS)  # no destructive tool unless the operator enables them
        send = next(t for t in tools if t.name == "send_message")
        assert send.inputSchema["additionalProperties"] is False
        assert {"to", "group_id", "text", "reply_to", "location", "poll", "idempotency_key", "dry_run"} <= set(
            send.inputSchema["properties"])
        assert next(t for t in tools if t.name == "read_messages").annotations.readOnlyHint is True
        assert mcp.get_server_capabilities().resources.subscribe is True


async def test_destructive_tools_exist_only_when_the_operator_enables_them(aiohttp_client, tmp_path):
    _, url = await gateway(aiohttp_client, tmp_path, WA_MCP_DESTRUCTIVE="true")
    async with http_session(url, KEY) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
        revoked = payload(await mcp.call_tool("revoke_message", {"message_id": "01NOSUCHMESSAGE"}))
        left = payload(await mcp.call_tool("leave_group", {"group_id": "120363041234567890@g.us"}))
    assert set(DESTRUCTIVE_TOOLS) <= set(tools)
    assert tools["logout"].annotations.destructiveHint is True
    assert revoked["error"]["code"] == "message_not_found"  # the gateway's own answer, through the tool
    assert left["error"]["status"] in (404, 409, 503)  # no worker here: the route answers, nothing is left


async def test_each_reading_tool_reaches_its_route_with_the_chat_id_escaped(aiohttp_client, tmp_path):
    _, url = await gateway(aiohttp_client, tmp_path)
    async with http_session(url, KEY) as mcp:
        chats = payload(await mcp.call_tool("list_chats", {"limit": 5}))
        found = payload(await mcp.call_tool("search_messages", {"query": "hello", "chat": "+14155550123"}))
        history = payload(await mcp.call_tool("read_messages", {"chat": "+14155550123"}))
        lid = payload(await mcp.call_tool("read_messages", {"chat": "123456789012345@lid"}))
        contact = payload(await mcp.call_tool("get_contact", {"phone_number": "+14155550123"}))
        bad_chat = payload(await mcp.call_tool("read_messages", {"chat": "not a chat"}))
    assert chats == {"chats": [], "next_cursor": None} and found["messages"] == []
    assert history["error"]["code"] == lid["error"]["code"] == "chat_not_found"  # a valid id, no messages yet
    assert contact["error"]["code"] == "contact_not_found"
    assert bad_chat["error"]["code"] == "invalid_chat"


async def test_wa_mcp_tools_narrows_the_list_and_an_unlisted_tool_cannot_be_called(aiohttp_client, tmp_path):
    _, url = await gateway(aiohttp_client, tmp_path, WA_MCP_TOOLS="status,list_chats")
    async with http_session(url, KEY) as mcp:
        assert [t.name for t in (await mcp.list_tools()).tools] == ["status", "list_chats"]
        result = await mcp.call_tool("send_message", {"to": "+14155550123", "text": "hi"})
    assert result.isError and payload(result)["error"]["code"] == "unknown_tool"


@pytest.mark.parametrize("args, where", [
    ({"to": "+14155550123", "text": "hi", "colour": "red"}, "colour"),  # unknown argument
    ({"to": "+14155550123", "text": ""}, "text"),  # empty text
    ({"to": "+14155550123", "poll": {"question": "q", "options": ["only one"]}}, "poll/options"),
    ({"to": "+14155550123", "location": {"latitude": 91, "longitude": 0}}, "location/latitude"),
    ({"to": 14155550123, "text": "hi"}, "to"),  # a number is no phone string
    ({"to": "+14155550123", "text": "hi", "account": "Not An Account"}, "account"),
])
async def test_arguments_that_break_the_schema_are_refused_before_the_gateway(aiohttp_client, tmp_path, args, where):
    client, url = await gateway(aiohttp_client, tmp_path)
    async with http_session(url, KEY) as mcp:
        result = await mcp.call_tool("send_message", args)
    assert result.isError
    error = payload(result)["error"]
    assert error["code"] == "invalid_arguments" and where.split("/")[0] in error["message"]
    listed = await (await client.get("/messages", headers=AUTH)).json()
    assert listed["messages"] == []


async def test_what_only_the_gateway_can_check_comes_back_with_its_code(aiohttp_client, tmp_path):
    _, url = await gateway(aiohttp_client, tmp_path)
    async with http_session(url, KEY) as mcp:
        both = await mcp.call_tool("send_message", {"to": "+14155550123", "group_id": "120363041234567890@g.us",
                                                    "text": "hi", "dry_run": True})
        bad_phone = await mcp.call_tool("send_message", {"to": "+0 123 456 789", "text": "hi", "dry_run": True})
    assert payload(both)["error"]["code"] == "invalid_phone_number"
    assert payload(bad_phone)["error"]["code"] == "invalid_phone_number"


async def test_a_dry_run_answers_what_it_would_send_and_sends_nothing(aiohttp_client, tmp_path):
    client, url = await gateway(aiohttp_client, tmp_path)
    async with http_session(url, KEY) as mcp:
        result = await mcp.call_tool("send_message", {"to": "+1 (415) 555-0123", "text": "hello", "dry_run": True})
    answer = payload(result)
    assert not result.isError, answer
    assert answer["sent"] is False and answer["would_send"] == {"phone_number": "+14155550123", "message": "hello"}
    assert answer["send_budget_left"] == 60
    assert (await (await client.get("/messages", headers=AUTH)).json())["messages"] == []


async def test_wa_mcp_dry_run_makes_every_send_a_dry_run(aiohttp_client, tmp_path):
    client, url = await gateway(aiohttp_client, tmp_path, WA_MCP_DRY_RUN="true")
    async with http_session(url, KEY) as mcp:
        answer = payload(await mcp.call_tool("send_message", {"to": "+14155550123", "text": "hello"}))
    assert answer["dry_run"] is True and answer["sent"] is False
    assert (await (await client.get("/messages", headers=AUTH)).json())["messages"] == []


async def test_a_spent_budget_refuses_and_a_refused_send_gives_its_unit_back(aiohttp_client, tmp_path):
    client, url = await gateway(aiohttp_client, tmp_path, WA_MCP_SEND_BUDGET_PER_HOUR="1")
    async with http_session(url, KEY) as mcp:
        # The gateway refuses a reply to a message it does not have: nothing is sent, the unit comes back.
        for _ in range(2):
            refused = payload(await mcp.call_tool("send_message", {"to": "+14155550123", "text": "hi",
                                                                   "reply_to": "01NOSUCHMESSAGE"}))["error"]
            assert refused["code"] != "send_budget_exhausted" and 400 <= refused["status"] < 500
        accepted = payload(await mcp.call_tool("send_message", {"to": "+14155550123", "text": "hi"}))
        assert accepted["status"] == "queued" and accepted["send_budget_left"] == 0  # no worker: it waits
        spent = payload(await mcp.call_tool("send_message", {"to": "+14155550123", "text": "again"}))["error"]
        assert spent["code"] == "send_budget_exhausted" and spent["status"] == 429
    listed = await (await client.get("/messages", headers=AUTH)).json()
    assert [m["message"] for m in listed["messages"]] == ["hi"]
    _, url = await gateway(aiohttp_client, tmp_path / "zero", WA_MCP_SEND_BUDGET_PER_HOUR="0")
    async with http_session(url, KEY) as mcp:
        spent = payload(await mcp.call_tool("send_message", {"to": "+14155550123", "text": "hi"}))["error"]
    assert spent["code"] == "send_budget_exhausted"


async def test_a_scoped_key_cannot_see_or_send_for_another_account(aiohttp_client, tmp_path):
    client, url = await gateway(aiohttp_client, tmp_path)
    key = await scoped_key(client, "sales")
    async with http_session(url, key) as mcp:
        assert "send_message" in [t.name for t in (await mcp.list_tools()).tools]
        for tool, args in [("send_message", {"account": "default", "to": "+14155550123", "text": "hi"}),
                           ("send_message", {"account": "default", "to": "+14155550123", "dry_run": True, "text": "a"}),
                           ("list_chats", {"account": "default"}), ("status", {"account": "default"})]:
            result = await mcp.call_tool(tool, args)
            assert result.isError and payload(result)["error"]["code"] == "forbidden", (tool, payload(result))
        with pytest.raises(McpError):
            await mcp.read_resource("wa://accounts/default/inbox")
        resources = (await mcp.list_resources()).resources
        assert [str(r.uri) for r in resources] == ["wa://accounts/sales/inbox"]
    assert (await (await client.get("/messages", headers=AUTH)).json())["messages"] == []


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}


async def test_a_session_answers_only_the_key_that_opened_it(aiohttp_client, tmp_path):
    client, _ = await gateway(aiohttp_client, tmp_path)
    key = await scoped_key(client)
    opened = await client.post("/mcp", json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {key}"})
    assert opened.status == 200, await opened.text()
    session = {"Mcp-Session-Id": opened.headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-06-18", **ACCEPT}
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    other = await client.post("/mcp", json=listing, headers={**session, **AUTH})  # the admin key, not the opener
    assert other.status == 404
    own = await client.post("/mcp", json=listing, headers={**session, "Authorization": f"Bearer {key}"})
    assert own.status == 200 and "send_message" in await own.text()
    nobody = await client.post("/mcp", json=listing, headers=session)
    assert nobody.status == 401 and (await nobody.json())["error"]["code"] == "unauthorized"


async def test_off_is_404_mcp_disabled(aiohttp_client, tmp_path):
    client, _ = await gateway(aiohttp_client, tmp_path, WA_MCP_ENABLED="false")
    res = await client.post("/mcp", headers=AUTH, json={})
    assert res.status == 404 and (await res.json())["error"]["code"] == "mcp_disabled"
