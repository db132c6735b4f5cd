"""A real webhook receiver for tests: an aiohttp server on a free loopback port, in its own thread (so
both async tests and the blocking whole-stack tests can use it), that verifies every request with the
``standardwebhooks`` reference package exactly as a receiver would and records what it saw.

``script(record)`` decides each answer: an int status, ``(status, headers)``, or ``HANG`` (never answer).
``trust(secret)`` adds a secret it verifies with (an account webhook's own, shown at its creation).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError
from standardwebhooks.webhooks import EmptyWebhookSecretError

HANG = "hang"


@dataclass
class Record:
    n: int  # the how-manieth request with this webhook-id (1 = the first attempt)
    index: int  # the how-manieth request overall
    at: float  # time.monotonic() on arrival
    headers: dict
    body: bytes
    event: dict | None  # the verified payload; None when verification failed
    error: str | None = None
    status: int | None = None  # what the receiver answered (None: hung)
    answered_at: float | None = None

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class Receiver:
    secret: str
    script: object = None  # callable(Record) -> int | (int, dict) | HANG; default 200
    records: list[Record] = field(default_factory=list)

    def __post_init__(self):
        self.trusted: list[str] = []  # more secrets accepted besides `secret` (trust())
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self._serve, name="webhook-receiver", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the webhook receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._startup())
        self._ready.set()
        self._loop.run_forever()
        pending = asyncio.all_tasks(self._loop)  # hung handlers: end them before the loop closes
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _startup(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- requests ----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        event, error = None, None
        for secret in [self.secret, *self.trusted]:  # `secret` as it is now: a test may set it after start
            try:
                event, error = Webhook(secret).verify(body, headers), None
                break
            except (WebhookVerificationError, ValueError, EmptyWebhookSecretError) as exc:
                error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            n = 1 + sum(1 for r in self.records if r.id == headers.get("webhook-id"))
            record = Record(n=n, index=len(self.records), at=time.monotonic(), headers=headers, body=body,
                            event=event, error=error)
            self.records.append(record)
        answer = self.script(record) if self.script is not None else 200
        if answer == HANG:
            await asyncio.sleep(3600)
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        record.status, record.answered_at = status, time.monotonic()
        return web.Response(status=status, headers=extra, text="ok" if status < 300 else "no")

    # --- for the tests -----------------------------------------------------------------------
    def trust(self, secret: str) -> None:
        if secret != self.secret and secret not in self.trusted:
            self.trusted.append(secret)

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def delivered(self) -> list[Record]:
        """Requests answered 2xx, in arrival order."""
        return [r for r in self.snapshot() if r.status is not None and 200 <= r.status < 300]

    def by_id(self, webhook_id: str) -> list[Record]:
        return [r for r in self.snapshot() if r.id == webhook_id]
