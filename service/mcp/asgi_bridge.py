"""One aiohttp request served by an ASGI app (the MCP SDK's Streamable HTTP transport is ASGI).

Our own adapter rather than a library: it is small, and it must do two things a generic one does not know
about. It runs inside the gateway's middlewares (key, scope, drain gate, request log), so the ASGI app only
ever sees authenticated requests, with what the key middleware learned passed in the scope (``extra``). And
it takes part in the drain: a long-lived response (the MCP session's GET event stream) must end when SIGTERM
begins, as the SSE streams do, or the drain would wait for it until its deadline. ``closing`` is that
signal: once it is set, ``receive`` answers ``http.disconnect`` and the transport ends the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

BODY_CHUNK = 64 * 1024
# How often a finished-reading request checks whether its client went away (aiohttp does not cancel handlers).
DISCONNECT_POLL = 1.0


def _scope(request: web.Request, extra: dict[str, Any]) -> dict[str, Any]:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    local = request.transport.get_extra_info("sockname") if request.transport else None
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": request.method, "scheme": request.scheme, "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1"),
        "query_string": request.query_string.encode("latin-1"), "root_path": "",
        "headers": [(name.lower(), value) for name, value in request.raw_headers],
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": tuple(local[:2]) if isinstance(local, tuple) else None,
        **extra,
    }


class _Exchange:
    """The ASGI side of one request: ``receive`` reads the body, then waits for the end; ``send`` writes."""

    def __init__(self, request: web.Request, closing: asyncio.Event):
        self.request = request
        self.closing = closing
        self.response: web.StreamResponse | None = None
        self.finished = asyncio.Event()
        self._status = 500
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body_done = False

    async def receive(self) -> Message:
        if not self._body_done:
            chunk = await self.request.content.read(BODY_CHUNK)
            self._body_done = self.request.content.at_eof()
            return {"type": "http.request", "body": chunk, "more_body": not self._body_done}
        # The body is read: the app asks again only to learn of a disconnect (an event stream does).
        while not self.finished.is_set() and not self.closing.is_set() and not self._gone():
            try:
                await asyncio.wait_for(self.finished.wait(), DISCONNECT_POLL)
            except TimeoutError:
                pass
        return {"type": "http.disconnect"}

    def _gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._status = int(message["status"])
            self._headers = CIMultiDict((bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                                        for k, v in message.get("headers", ()))
            # The SDK answers some refusals as bare text without a type (aiohttp would call it octet-stream).
            self._headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            # Headers go out now: an event stream's first body may come only with its first event or ping.
            await self._prepared()
        elif kind == "http.response.body":
            response = await self._prepared()
            body = message.get("body", b"")
            if body:
                await response.write(body)
            if not message.get("more_body", False):
                await response.write_eof()
                self.finished.set()

    async def _prepared(self) -> web.StreamResponse:
        if self.response is None:
            self.response = web.StreamResponse(status=self._status, headers=self._headers)
            await self.response.prepare(self.request)
        return self.response


async def serve(request: web.Request, app: AsgiApp, closing: asyncio.Event,
                extra: dict[str, Any]) -> web.StreamResponse:
    """Run ``app`` for ``request``; its answer is streamed as the app writes it."""
    exchange = _Exchange(request, closing)
    try:
        await app(_scope(request, extra), exchange.receive, exchange.send)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the client left mid-answer: nobody to tell
    finally:
        exchange.finished.set()
    if exchange.response is None:  # the app answered nothing at all: its failure
        raise web.HTTPInternalServerError(reason="The MCP transport gave no answer.")
    return exchange.response
