"""/mcp and SIGTERM's drain (service/http/drain.py): an MCP session's open event stream (its GET) is a request in
flight, and ends by itself when the drain begins, so the drain does not wait for its deadline; a new MCP request
during the drain is 503 shutting_down like any other; stopping the app ends the sessions. And ``wa-gateway mcp``
refuses to start, with one line and its exit code, when the gateway refuses its key or has MCP off."""

from __future__ import annotations

import asyncio

from service.http.appkeys import DRAIN
from service.mcp import stdio_proxy
from tests.helpers.inprocess import KEY
from tests.helpers.mcp_client import gateway, http_session

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "X-API-Key": KEY}


async def test_a_sessions_event_stream_ends_when_the_drain_begins(aiohttp_client, tmp_path):
    client, _ = await gateway(aiohttp_client, tmp_path, WA_SHUTDOWN_TIMEOUT="20")
    opened = await client.post("/mcp", json=INIT, headers=HEADERS)
    assert opened.status == 200
    session = {**HEADERS, "Mcp-Session-Id": opened.headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-06-18"}
    await client.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    stream = await asyncio.wait_for(client.get("/mcp", headers=session), 5)  # headers at once, before any event
    assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
    drain = client.app[DRAIN]
    assert drain.requests == 1  # the open event stream
    left = await asyncio.wait_for(drain.run(), 10)
    assert left > 15  # it ended by itself, at once, not at the 20 s deadline
    assert drain.requests == 0
    refused = await client.post("/mcp", json=INIT, headers=HEADERS)
    assert refused.status == 503 and (await refused.json())["error"]["code"] == "shutting_down"


async def test_stopping_the_app_ends_open_sessions(aiohttp_client, tmp_path):
    client, url = await gateway(aiohttp_client, tmp_path)
    async with http_session(url, KEY) as mcp:
        await mcp.list_tools()
        await asyncio.wait_for(client.close(), 10)  # the session manager's task ends with the app


async def test_the_stdio_relay_refuses_to_start_with_a_refused_key_or_mcp_off(aiohttp_client, tmp_path, capsys):
    _, url = await gateway(aiohttp_client, tmp_path)
    code = await asyncio.to_thread(stdio_proxy.main, ["--url", url], {"WA_API_KEY": "not-the-key"})
    assert code == stdio_proxy.EX_NOPERM and "refused the key" in capsys.readouterr().err
    _, url = await gateway(aiohttp_client, tmp_path / "off", WA_MCP_ENABLED="false")
    code = await asyncio.to_thread(stdio_proxy.main, ["--url", url], {"WA_API_KEY": KEY})
    assert code == stdio_proxy.EX_UNAVAILABLE and "WA_MCP_ENABLED" in capsys.readouterr().err
