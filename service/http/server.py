"""Serving the app: ``web.run_app`` with two changes: errors the HTTP parser finds are JSON too, and SIGTERM
drains (service/http/drain.py) before the listener closes.

aiohttp answers requests its low-level parser rejects (an oversized request line or header, too
many headers, bytes that are not HTTP, broken chunked framing) before any middleware runs, from
``RequestHandler.handle_error``: a ``text/plain`` body and a logged traceback at error level. The
only way in is the protocol class, which ``web.Server`` instantiates per connection and
``web.run_app`` does not let one choose. So this module subclasses ``RequestHandler`` (the one
documented override point), has the runner's server build it, and runs the app as ``run_app``
does. Tests pin the result (tests/test_hostile_input.py), so an aiohttp upgrade that moves these
internals fails loudly instead of silently answering HTML again.

aiohttp's own shutdown closes the listener first, so a request arriving during it is refused; here the signal
handlers are ours: on SIGTERM or SIGINT the app drains with the listener open (new requests get 503
``shutting_down`` with Retry-After), and only then does aiohttp's cleanup run, with whatever is left of
WA_SHUTDOWN_TIMEOUT (tests/test_drain.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress
from typing import Any

import structlog
import uvloop
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, ContentEncodingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from service.errors import error_response
from service.http.appkeys import DRAIN

log = structlog.get_logger("gateway.http")
# Seconds the cleanup gives handlers still running after the drain's deadline before it cancels them (aiohttp
# reads 0 as "no limit").
CUTOFF = 0.1


def describe_parse_error(status: int, exc: BaseException | None) -> tuple[int, str, str]:
    """(status, code, message) for what the parser refused; the message never echoes the input."""
    if status >= 500:
        return 500, "internal_error", "The gateway failed; see its logs."
    if isinstance(exc, ContentEncodingError):
        return 400, "invalid_body", "The request body's Content-Encoding is not supported or broken."
    if isinstance(exc, LineTooLong):
        return 431, "header_too_large", (
            "The request line or a header field is too long (8190 bytes at most)."
        )
    if exc is not None and "Too many headers" in str(exc):
        return 431, "too_many_headers", "The request has too many header fields."
    if isinstance(exc, BadHttpMethod):
        return 400, "bad_request", "The request is not HTTP/1.1."
    return status, "bad_request", "The request is not valid HTTP/1.1."


class JsonErrorRequestHandler(RequestHandler):
    __slots__ = ()

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:  # noqa: D401
        """Like aiohttp's, but the body is the API's JSON error shape and a client's garbage is
        one info line without a traceback."""
        if request.writer.output_size > 0:
            raise ConnectionError(
                "Response is sent already, cannot send another response with the error message"
            )
        status, code, text = describe_parse_error(status, exc)
        if status >= 500:
            log.error("http.unhandled", status=status, error=type(exc).__name__ if exc else None)
        else:
            log.info("http.bad_message", status=status, code=code,
                     reason=type(exc).__name__ if exc else None)
        response = error_response(status, code, text)
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # same state; only the per-connection protocol differs
        return server


async def _serve(app: web.Application, host: str, port: int, *, handle_signals: bool,
                 shutdown_timeout: float, **runner_kwargs: Any) -> None:
    """Serve until SIGTERM or SIGINT, then drain (service/http/drain.py) with the listener still open, so that a
    new request is answered 503 shutting_down instead of refused; then close as aiohttp does, cutting off
    whatever still runs after the drain's deadline."""
    loop = asyncio.get_running_loop()
    signalled: asyncio.Future[int] = loop.create_future()

    def on_signal(signum: int) -> None:
        if signalled.done():
            log.info("gateway.signal_ignored", signal=signal.Signals(signum).name, reason="draining already")
        else:
            signalled.set_result(signum)

    if handle_signals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
    runner = GatewayRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout, **runner_kwargs)
    try:
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            received = await signalled
            drain = app.get(DRAIN)
            if drain is not None:
                left = await drain.run(signal.Signals(received).name)
                # What still runs now is past the deadline: the cleanup below cancels it at once.
                runner._shutdown_timeout = max(CUTOFF, left)
        finally:
            await runner.cleanup()
    finally:
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


def run_app(app: web.Application, *, host: str, port: int, shutdown_timeout: float,
            handle_signals: bool = True, access_log: logging.Logger | None = None, idle_timeout: float = 30.0,
            **_ignored: Any) -> None:
    """``web.run_app(app, host=, port=, shutdown_timeout=, ...)`` with the JSON error handler. A connection
    with no whole request for ``idle_timeout`` seconds (idle from its start or between requests, or its
    headers trickling in) is closed: aiohttp's keep-alive timer, which defaults to an hour."""
    # uvloop: libuv's loop in C under the same asyncio API; aiohttp's sockets, timers and callbacks cost less
    # there (bench/accept.py: docs/benchmarks.md, Accept).
    loop = uvloop.new_event_loop()
    main = loop.create_task(_serve(
        app, host, port, handle_signals=handle_signals, access_log=access_log,
        shutdown_timeout=shutdown_timeout, keepalive_timeout=idle_timeout,
    ))
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)
