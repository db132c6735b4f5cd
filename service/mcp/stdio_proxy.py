"""``wa-gateway mcp [--url URL]``: the gateway's MCP server over stdio, for desktop agents that start a
command (Claude Desktop, IDEs), talking to a running gateway.

It is a relay, not a second server: each JSON-RPC message from stdin goes to the gateway's /mcp (Streamable
HTTP, the SDK's own client transport), and what the gateway answers or sends on its own (resource updates, on the
session's GET stream) comes back on stdout. So the tools, the rails and the budget are the gateway's, once, and a
key sees over stdio exactly what it sees over HTTP. The key comes from the environment (``WA_API_KEY``), never
from the command line, where any user of the machine could read it in the process list. stdout carries the
protocol only: every word for a person goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import anyio
import httpx
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server

DEFAULT_URL = "http://127.0.0.1:3001"
EX_USAGE, EX_UNAVAILABLE, EX_NOPERM, EX_CONFIG = 64, 69, 77, 78
TIMEOUT = httpx.Timeout(90.0, read=600.0)  # a read waits for the session's events (the GET stream)


def _say(text: str) -> None:
    print(f"wa-gateway mcp: {text}", file=sys.stderr, flush=True)


async def preflight(http: httpx.AsyncClient, endpoint: str) -> int | None:
    """One GET without a session: the gateway answers 400 (no session id) when /mcp serves and the key is good.
    An exit code with one line on stderr when it will not work; None when it will."""
    try:
        response = await http.get(endpoint, headers={"Accept": "text/event-stream"})
    except httpx.HTTPError as exc:
        _say(f"no gateway answers at {endpoint} ({type(exc).__name__}); start it, or pass --url")
        return EX_UNAVAILABLE
    if response.status_code == 401:
        _say("the gateway refused the key in WA_API_KEY (401): print the admin key with `wa-gateway api-key`, "
             "or make a scoped one with `wa-gateway api-key create`")
        return EX_NOPERM
    if response.status_code == 404:
        _say(f"{endpoint} has no MCP server (404): is WA_MCP_ENABLED=false on the gateway?")
        return EX_UNAVAILABLE
    return None


async def _pump(source: ObjectReceiveStream[Any], sink: ObjectSendStream[Any], side: str) -> None:
    async for item in source:
        if isinstance(item, Exception):  # a transport failure on one message: said, and the relay goes on
            _say(f"{side}: {type(item).__name__}: {item}")
            continue
        await sink.send(item)


async def relay(url: str, key: str) -> int:
    endpoint = url.rstrip("/") + "/mcp"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT) as http:
        refused = await preflight(http, endpoint)
        if refused is not None:
            return refused
        async with stdio_server() as (stdin, stdout), \
                streamable_http_client(endpoint, http_client=http) as (from_gateway, to_gateway, _):
            async with anyio.create_task_group() as group:
                async def then_stop(source: ObjectReceiveStream[Any], sink: ObjectSendStream[Any], side: str) -> None:
                    await _pump(source, sink, side)
                    group.cancel_scope.cancel()  # either side ended (the client closed stdin): the relay ends

                group.start_soon(then_stop, stdin, to_gateway, "client")
                group.start_soon(then_stop, from_gateway, stdout, "gateway")
    return 0


def main(args: list[str], env: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wa-gateway mcp", description=(
        "The gateway's MCP server over stdio, relayed to a running gateway's /mcp. The key comes from the "
        "environment variable WA_API_KEY (an admin key, or a key scoped to one account)."))
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the gateway's base URL (default {DEFAULT_URL})")
    try:
        options = parser.parse_args(args)
    except SystemExit as exc:
        return EX_USAGE if exc.code else 0
    environ = os.environ if env is None else env
    key = (environ.get("WA_API_KEY") or "").split(",")[0].strip()
    if not key:
        _say("set WA_API_KEY to the key the gateway should see (never on the command line)")
        return EX_CONFIG
    if not options.url.startswith(("http://", "https://")):
        _say("--url must be http(s)://host:port")
        return EX_USAGE
    try:
        return anyio.run(relay, options.url, key)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the gateway went away mid-session, or refused a message for good
        _say(f"the relay stopped: {type(exc).__name__}: {exc}")
        return 1
