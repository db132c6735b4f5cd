"""The MCP SDK's own client on the gateway's /mcp (Streamable HTTP) or on ``wa-gateway mcp`` (stdio), for the
MCP tests: ``http_session(url, key)`` / ``stdio_session(url, key)`` yield an initialized ``ClientSession``;
``payload(result)`` is a tool answer's JSON; ``gateway`` and ``scoped_key`` make the in-process app and keys."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from service.http.app import create_app
from service.mcp.mount import mount
from tests.helpers.inprocess import AUTH, settings
from tests.helpers.stack import REPO


async def gateway(aiohttp_client, tmp_path, **env):
    """The in-process app with /mcp mounted as the gateway program mounts it: (aiohttp test client, its base URL)."""
    app = create_app(settings(tmp_path, **env))
    mount(app)
    client = await aiohttp_client(app)
    return client, str(client.make_url("/")).rstrip("/")


async def scoped_key(client, account: str = "default", **body) -> str:
    """A new key scoped to ``account`` (created first unless it is default), with ``body`` (label, mcp)."""
    if account != "default":
        assert (await client.post("/accounts", json={"name": account}, headers=AUTH)).status == 201
    res = await client.post(f"/accounts/{account}/keys", json=body, headers=AUTH)
    assert res.status == 201, await res.text()
    return str((await res.json())["key"])


@asynccontextmanager
async def http_session(base_url: str, key: str, **session: Any) -> AsyncIterator[ClientSession]:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http, \
            streamable_http_client(base_url.rstrip("/") + "/mcp", http_client=http) as (read, write, _), \
            ClientSession(read, write, **session) as client:
        await client.initialize()
        yield client


@asynccontextmanager
async def stdio_session(base_url: str, key: str, **session: Any) -> AsyncIterator[ClientSession]:
    """``wa-gateway mcp --url`` as a desktop agent starts it: the key in the environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WA_")} | {"WA_API_KEY": key}
    params = StdioServerParameters(command=sys.executable, args=["-m", "service.programs.launcher", "mcp", "--url",
                                                                 base_url], env=env, cwd=str(REPO))
    async with stdio_client(params) as (read, write), ClientSession(read, write, **session) as client:
        await client.initialize()
        yield client


def payload(result: Any) -> dict[str, Any]:
    """A tool result's JSON (its structured content, else its text)."""
    if result.structuredContent is not None:
        return dict(result.structuredContent)
    return dict(json.loads(result.content[0].text))
