"""A scoped key's own MCP rails, set by the admin when the key is made (POST /accounts/{account}/keys {"mcp"}):
its tools (a tool left out is neither listed nor callable), its send budget (per key, kept in the store across
a restart), its dry run; a rail it leaves out is the WA_MCP_* default; bad rails are 400 invalid_mcp."""

from __future__ import annotations

import pytest

from service.mcp_names import SAFE_TOOLS
from tests.helpers.inprocess import AUTH, KEY
from tests.helpers.mcp_client import gateway, http_session, payload, scoped_key

SEND = {"to": "+14155550123", "text": "hi"}


async def test_a_tool_left_out_of_the_keys_list_is_not_listed_nor_callable(aiohttp_client, tmp_path):
    client, url = await gateway(aiohttp_client, tmp_path)
    key = await scoped_key(client, mcp={"tools": ["status", "read_messages"]})
    async with http_session(url, key) as mcp:
        assert [t.name for t in (await mcp.list_tools()).tools] == ["status", "read_messages"]
        refused = await mcp.call_tool("send_message", SEND)
    assert refused.isError and payload(refused)["error"]["code"] == "unknown_tool"
    async with http_session(url, KEY) as mcp:  # the admin key keeps the defaults
        assert [t.name for t in (await mcp.list_tools()).tools] == list(SAFE_TOOLS)


async def test_a_key_cannot_list_a_destructive_tool_the_operator_did_not_enable(aiohttp_client, tmp_path):
    client, url = await gateway(aiohttp_client, tmp_path)
    key = await scoped_key(client, mcp={"tools": ["status", "logout"]})
    async with http_session(url, key) as mcp:
        assert [t.name for t in (await mcp.list_tools()).tools] == ["status"]
        refused = await mcp.call_tool("logout", {})
    assert payload(refused)["error"]["code"] == "unknown_tool"


async def test_the_budget_is_per_key_and_survives_a_restart(aiohttp_client, tmp_path):
    client, url = await gateway(aiohttp_client, tmp_path)
    key = await scoped_key(client, mcp={"send_budget_per_hour": 1})
    async with http_session(url, key) as mcp:
        assert payload(await mcp.call_tool("send_message", SEND))["send_budget_left"] == 0
        spent = payload(await mcp.call_tool("send_message", SEND))["error"]
        assert spent["code"] == "send_budget_exhausted" and "1 per hour" in spent["message"]
    async with http_session(url, KEY) as mcp:  # another key: its own budget (the default 60)
        assert payload(await mcp.call_tool("send_message", SEND))["send_budget_left"] == 59
    await client.close()
    _, url = await gateway(aiohttp_client, tmp_path)  # the same data dir, a new gateway
    async with http_session(url, key) as mcp:
        again = payload(await mcp.call_tool("send_message", SEND))["error"]
    assert again["code"] == "send_budget_exhausted"


async def test_a_dry_run_key_never_sends(aiohttp_client, tmp_path):
    client, url = await gateway(aiohttp_client, tmp_path)
    key = await scoped_key(client, mcp={"dry_run": True})
    async with http_session(url, key) as mcp:
        answer = payload(await mcp.call_tool("send_message", SEND))
    assert answer["sent"] is False and answer["would_send"]["phone_number"] == "+14155550123"
    assert (await (await client.get("/messages", headers=AUTH)).json())["messages"] == []


async def test_the_created_and_listed_key_shows_its_rails(aiohttp_client, tmp_path):
    client, _ = await gateway(aiohttp_client, tmp_path)
    res = await client.post("/accounts/default/keys", json={"mcp": {"tools": ["status"], "dry_run": True}},
                            headers=AUTH)
    assert (await res.json())["mcp"] == {"tools": ["status"], "dry_run": True}
    plain = await client.post("/accounts/default/keys", json={}, headers=AUTH)
    assert "mcp" not in await plain.json()
    listed = (await (await client.get("/accounts/default/keys", headers=AUTH)).json())["keys"]
    assert [k.get("mcp") for k in listed] == [{"tools": ["status"], "dry_run": True}, None]
    revoked = await client.delete(f"/accounts/default/keys/{listed[0]['id']}", headers=AUTH)
    assert (await revoked.json())["mcp"] == {"tools": ["status"], "dry_run": True}


@pytest.mark.parametrize("rails", [{"tools": ["status", "format_disk"]}, {"tools": "status"},
                                   {"send_budget_per_hour": -1}, {"send_budget_per_hour": 1.5},
                                   {"dry_run": "yes"}, {"budget": 3}, []])
async def test_bad_rails_are_400_invalid_mcp(aiohttp_client, tmp_path, rails):
    client, _ = await gateway(aiohttp_client, tmp_path)
    res = await client.post("/accounts/default/keys", json={"mcp": rails}, headers=AUTH)
    assert res.status == 400
    assert (await res.json())["error"]["code"] in ("invalid_mcp", "unknown_field")
    assert (await (await client.get("/accounts/default/keys", headers=AUTH)).json())["keys"] == []


async def test_the_admin_changes_a_keys_rails_and_its_open_session_follows(aiohttp_client, tmp_path):
    client, url = await gateway(aiohttp_client, tmp_path)
    key = await scoped_key(client, mcp={"tools": ["status"]})
    key_id = (await (await client.get("/accounts/default/keys", headers=AUTH)).json())["keys"][0]["id"]
    async with http_session(url, key) as mcp:
        assert [t.name for t in (await mcp.list_tools()).tools] == ["status"]
        res = await client.patch(f"/accounts/default/keys/{key_id}", headers=AUTH,
                                 json={"mcp": {"tools": ["status", "list_chats"], "send_budget_per_hour": 0}})
        assert res.status == 200 and (await res.json())["mcp"] == {"tools": ["status", "list_chats"],
                                                                  "send_budget_per_hour": 0}
        assert [t.name for t in (await mcp.list_tools()).tools] == ["status", "list_chats"]
        cleared = await client.patch(f"/accounts/default/keys/{key_id}", headers=AUTH, json={"mcp": None})
        assert "mcp" not in await cleared.json()
        assert [t.name for t in (await mcp.list_tools()).tools] == list(SAFE_TOOLS)  # the defaults again
    itself = await client.patch(f"/accounts/default/keys/{key_id}", headers={"X-API-Key": key}, json={"mcp": None})
    assert itself.status == 403  # only the admin sets rails
    unknown = await client.patch("/accounts/default/keys/key_nope", headers=AUTH, json={"mcp": None})
    assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "key_not_found"
    bad = await client.patch(f"/accounts/default/keys/{key_id}", headers=AUTH, json={"mcp": {"dry_run": 1}})
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "invalid_mcp"
