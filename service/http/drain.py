"""Graceful drain: what SIGTERM (or SIGINT) does to the gateway before it exits.

    SIGTERM -> new requests: 503 shutting_down with Retry-After (the middleware in middlewares.py);
               /health/ready: 503 not_ready (an orchestrator stops routing); /health/live: still 200
            -> requests already in flight finish; the SSE streams end (clients resume with Last-Event-ID)
            -> every dispatcher claims nothing more; its sends in flight at the worker finish (the result
               recorded) or, at the deadline, go back to `queued` (sent again later with the same WhatsApp id,
               which the recipient treats as the same message)
            -> every webhook worker claims nothing more; attempts in flight finish or stay pending (the
               attempt stays counted, the lease is released: due at once at the next start)
            -> the listener closes, whatever still runs is cancelled, the cleanup contexts close the rest
               (the store last), and the process exits 0.

The whole drain is bounded by WA_SHUTDOWN_TIMEOUT (5 s by default), well under supervisord's stopwaitsecs
for the gateway (15 s). The listener stays open during the drain so that a new request gets an answer it can
act on (503 and Retry-After) instead of a refused connection.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from aiohttp import web

from service.errors import error_response

log = structlog.get_logger("gateway.drain")

CODE = "shutting_down"
MESSAGE = "The gateway is shutting down; retry after Retry-After seconds."
# A hook that ignores its deadline must not hold the process beyond it for long (the cleanup then cancels it).
HOOK_GRACE = 1.0

# hook(deadline) -> a summary for the log line; deadline is on the loop's clock (loop.time()).
Hook = Callable[[float], Coroutine[Any, Any, dict[str, Any] | None]]


class Drain:
    """The gateway's drain: a flag the middleware reads, a count of the requests in flight, and the hooks
    that stop the background work (dispatchers, webhook workers) within the deadline."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        # By then this process is gone and a restarted one (supervisord, the orchestrator) answers.
        self.retry_after = max(1, math.ceil(timeout))
        self.since: float | None = None  # time.monotonic() of the signal
        self.requests = 0  # handlers running now (past the middleware)
        self._idle: asyncio.Event | None = None
        self.on_begin: list[Callable[[], None]] = []  # called at once (wake the SSE streams so they end)
        self.hooks: list[tuple[str, Hook]] = []

    @property
    def draining(self) -> bool:
        return self.since is not None

    # --- the middleware's side ------------------------------------------------------------------------
    @contextmanager
    def request(self) -> Iterator[None]:
        """Around one handler let through: counted until it returns."""
        self.requests += 1
        try:
            yield
        finally:
            self.requests -= 1
            if self.requests == 0 and self._idle is not None:
                self._idle.set()

    def refusal(self) -> web.Response:
        response = error_response(503, CODE, MESSAGE, headers={"Retry-After": str(self.retry_after)})
        response.force_close()  # a keep-alive client reconnects, to wherever the traffic goes now
        return response

    # --- the signal's side -----------------------------------------------------------------------------
    def add_hook(self, name: str, hook: Hook) -> None:
        self.hooks.append((name, hook))

    def begin(self) -> None:
        """From now on new requests are refused (idempotent)."""
        if self.since is None:
            self.since = time.monotonic()
            self._idle = asyncio.Event()
            if self.requests == 0:
                self._idle.set()

    async def run(self, signal_name: str = "SIGTERM") -> float:
        """Drain within ``timeout`` seconds; returns the seconds left of it (0 when it ran out)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.timeout
        self.begin()
        log.info("gateway.draining", signal=signal_name, requests=self.requests, timeout_s=self.timeout)
        for notify in self.on_begin:
            try:
                notify()
            except Exception:
                log.exception("gateway.drain_notify_failed")
        hooks = {asyncio.create_task(hook(deadline), name=f"drain:{name}"): name for name, hook in self.hooks}
        summary: dict[str, Any] = {}
        if hooks:
            done, pending = await asyncio.wait(hooks, timeout=max(0.0, deadline - loop.time()) + HOOK_GRACE)
            for task in done:
                if task.exception() is not None:
                    log.error("gateway.drain_hook_failed", hook=hooks[task], error=repr(task.exception()))
                elif task.result():
                    summary[hooks[task]] = task.result()
            for task in pending:  # left to the cleanup, which cancels what still runs
                log.warning("gateway.drain_hook_late", hook=hooks[task])
        assert self._idle is not None
        try:
            async with asyncio.timeout_at(deadline):
                await self._idle.wait()
        except TimeoutError:
            pass
        left = max(0.0, deadline - loop.time())
        log.info("gateway.drained", duration_ms=round((loop.time() - started) * 1000, 1),
                 requests_cut=self.requests, **summary)
        return left
