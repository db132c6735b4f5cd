"""One reader of the event log for every live SSE stream (``GET /events/stream``), and the streams' bounds.

Before, each stream queried the store after every new event: with many streams one key could keep the single
store queue busy for every account. Here one task reads each new page of the log once and hands every row to
the streams that want it (their account and types), each through a bounded queue. A stream whose client
reads too slowly to keep up overflows its queue and is ended; it resumes with ``Last-Event-ID`` from the
durable log, so nothing is lost. Streams are capped per API key and in total: one more is 429
``too_many_streams`` with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from service.errors import ApiError
from service.runtime.notify import Notifier
from service.store import event_log

log = structlog.get_logger("gateway.sse")

PAGE = 500  # rows per read of the log
IDLE = 15.0  # seconds between reads when nothing wakes the reader (another instance's events, a missed wake)
QUEUE = 1000  # rows a stream may fall behind the reader before it is ended (its client resumes)
RETRY_AFTER = 5


class TooManyStreams(ApiError):
    """429, answered with ``Retry-After: RETRY_AFTER`` (service/http/views/stream.py)."""

    status = 429
    code = "too_many_streams"


class Subscription:
    """One stream's view of the live log: rows after ``start`` for its account and types, or ``overflowed``."""

    def __init__(self, account: str, types: tuple[str, ...] | None, start: int):
        self.account, self.types, self.start = account, types, start
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE)
        self.overflowed = False

    def offer(self, row: dict[str, Any]) -> None:
        if row["account"] != self.account or (self.types and row["type"] not in self.types):
            return
        try:
            self.queue.put_nowait(row)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        """Ends the stream: its reader gets None next (what it had not sent yet it resumes from the log)."""
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()  # room for the end marker: the client resumes from the log anyway


class EventHub:
    # run: the database's ``run`` (store.db.Database.run): a store function and its arguments -> its result.
    def __init__(self, run: Callable[..., Awaitable[Any]], notifier: Notifier, *, max_total: int, max_per_key: int):
        self._run_db, self._notifier = run, notifier
        self.max_total, self.max_per_key = max_total, max_per_key
        self.head = 0  # the last seq the reader has handed out
        self._subs: dict[Subscription, str] = {}  # subscription -> the key it counts against
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.head = await self._run_db(event_log.last_seq)
        self._task = asyncio.create_task(self._read(), name="sse-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in list(self._subs):
            sub.close()

    @property
    def streams(self) -> int:
        return len(self._subs)

    def subscribe(self, key: str, account: str, types: tuple[str, ...] | None) -> Subscription:
        """A live view from the reader's current head on; 429 over the per-key or total cap."""
        if len(self._subs) >= self.max_total:
            raise TooManyStreams(f"The gateway serves at most {self.max_total} event streams at once; retry later.")
        if sum(1 for k in self._subs.values() if k == key) >= self.max_per_key:
            raise TooManyStreams(f"This API key has {self.max_per_key} event streams open already (the most one key "
                                 "may hold); close one or retry later.")
        sub = Subscription(account, types, self.head)
        self._subs[sub] = key
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.pop(sub, None)

    def close_all(self) -> None:
        """SIGTERM (service/http/drain.py): every stream ends now; its client resumes at another gateway."""
        for sub in list(self._subs):
            sub.close()

    async def _read(self) -> None:
        while True:
            woken = self._notifier.current()
            try:
                if not self._subs:
                    # Nobody to hand rows to: only where the log ends (a new stream starts there), not every row.
                    # A stream that subscribed meanwhile started at the old head: then its rows are read below.
                    last = await self._run_db(event_log.last_seq)
                    if not self._subs:
                        self.head = max(self.head, last)
                        await self._notifier.wait(IDLE, woken)
                        continue
                rows = await self._run_db(event_log.after, self.head, limit=PAGE)
            except Exception as exc:  # noqa: BLE001 - the store may be busy or full: try again later
                log.warning("sse.read_failed", error=type(exc).__name__)
                rows = []
                await asyncio.sleep(1.0)
            for row in rows:
                for sub in list(self._subs):
                    sub.offer(row)
                    if sub.overflowed:
                        log.info("sse.stream_overflowed", account=sub.account, behind=QUEUE)
                        self.unsubscribe(sub)
                self.head = row["seq"]
            if len(rows) < PAGE:
                await self._notifier.wait(IDLE, woken)
