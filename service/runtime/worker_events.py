"""The hand-over from the worker: read its event journal, store every event, then acknowledge it.

The worker keeps each event on disk until the gateway acknowledges it (node_worker/src/event-journal.js);
the gateway stores a batch in one transaction (service/store/inbound.py: inbound messages, outbox
statuses, session changes and the event log they produce) and only then acknowledges the batch. A
crash of either side at any instant leaves the event with the worker or in the store, and a repeat
is stored once (events carry a stable ``event_id``). So: at least once over the wire, exactly once
in the store.

The worker numbers its events; the gateway reads with the last number it stored. A new worker
boot is recognised by its ``boot_id``: the gateway starts over from 0, which yields exactly the
events still unacknowledged.

When to read (issue 28): an idle account holds no request of its own. The shard's watcher
(service/runtime/shard_watch.py) follows every account's journal with one long-poll and ``nudge``s the
reader when its journal holds events beyond what it stored; the reader then reads with ``wait=0``. After a
batch it keeps long-polling its own journal for ``HOT_WAIT`` seconds (a conversation, a burst of sends and
their receipts: each event arrives with the reader already waiting, no slower than before), then goes idle
again. A long, jittered ``IDLE_READ`` bounds what a lost nudge could delay.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import structlog

from service.errors import ApiError
from service.runtime.worker_client import WorkerApi
from service.states import DEFAULT_ACCOUNT
from service.store import inbound
from service.store.db import Database
from service.store.full_disk import FullDiskLog, storage_full

log = structlog.get_logger("gateway.events")

HOT_WAIT = 2.0  # seconds a reader long-polls its own journal after a batch, before it goes idle
# An idle reader reads anyway after a random time in this range (a nudge lost, which should not happen): long, so
# that a thousand idle accounts cost the worker a read every 0.6 s on average, not 17 a second.
IDLE_READ = (300.0, 900.0)
RETRY = 1.0  # seconds before the next try after a failure that is not the worker's absence


class EventConsumer:
    def __init__(self, worker: WorkerApi, db: Database, *, account: str = DEFAULT_ACCOUNT,
                 clock: Callable[[], float] = time.time):
        self._worker = worker
        self._db = db
        self._account = account
        self._clock = clock
        self._boot_id: str | None = None
        self._after = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.reads = 0  # requests for events (tests, the bench)
        self.received = 0
        # Called after each stored batch, per worker event in journal order, with what it changed:
        # listener(event, {"event": stored log event or None, "message": changed outbox row or None}).
        self.listeners: list[Callable[[dict[str, Any], dict[str, Any]], None]] = []
        # Called once after each stored batch that added to the event log (webhooks, SSE wake up).
        self.on_stored: list[Callable[[], None]] = []

    def _log(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "unknown")
        # which group and what changed in it, never its subject or description (the members' text, like a body)
        keep = ("event_id", "status", "state", "from", "lid", "kind", "offline", "error", "last_error", "group_id",
                "action")
        fields = {k: event[k] for k in keep if k in event}
        if isinstance(event.get("text"), str):  # never the body itself, at any level
            fields["text_length"] = len(event["text"])
        ids = {"message_id": event["id"]} if event.get("id") else {}
        with structlog.contextvars.bound_contextvars(**ids):
            log.info(f"whatsapp.{kind}", seq=event.get("seq"), **fields)

    def nudge(self, last_seq: Any, boot_id: Any) -> None:
        """The shard's watcher saw the account's journal at ``last_seq`` of journal boot ``boot_id``: read now if
        that holds events this reader has not stored."""
        if boot_id != self._boot_id or (isinstance(last_seq, int) and last_seq > self._after):
            self._wake.set()

    async def poll_once(self, wait: float = 0.0) -> int:
        """Hand over one batch of the worker's events; returns how many there were."""
        self.reads += 1
        batch = await self._worker.events(self._after, wait, self._boot_id)
        if batch.get("boot_id") != self._boot_id:
            if self._boot_id is not None:
                log.info("worker.new_boot", boot_id=batch.get("boot_id"))
            self._boot_id = batch.get("boot_id")
            self._after = 0
            batch = await self._worker.events(0, 0)
            self._boot_id = batch.get("boot_id")
        events = [e for e in batch.get("events", []) if isinstance(e, dict)]
        if not events:
            return 0
        results = await self._db.run(inbound.store_worker_events, self._account, events, self._clock())
        upto = max(int(e.get("seq", 0)) for e in events)
        try:
            await self._worker.ack_events(upto, self._boot_id)
        except ApiError as exc:
            # Stored already; the worker will hand them over again and the store ignores repeats.
            log.info("events.ack_failed", upto=upto, code=exc.code)
        self._after = max(self._after, upto)
        added = False
        for event, result in zip(events, results, strict=True):
            self._log(event)
            self.received += 1
            added = added or result["event"] is not None
            for listener in self.listeners:
                try:
                    listener(event, result)
                except Exception:
                    log.exception("events.listener_failed", event_type=event.get("type"))
        if added:
            for notify in self.on_stored:
                notify()
        return len(events)

    async def run(self) -> None:
        full = FullDiskLog(log, "events.store_full")
        wait = 0.0  # the first read at once: what the worker kept while this gateway was away
        while True:
            self._wake.clear()  # before reading: a nudge from now on is not lost
            try:
                got = await self.poll_once(wait)
            except ApiError:
                # The worker is away (restarting, down): its watcher nudges every reader once it answers again.
                await self._idle()
                wait = 0.0
                continue
            except Exception as exc:
                if storage_full(exc):
                    # Not acknowledged: the worker keeps the batch on its disk, and it is stored once there is room.
                    full.failed(exc, account=self._account)
                else:
                    log.exception("events.poll_failed")
                await asyncio.sleep(RETRY)
                wait = 0.0
                continue
            if got:
                full.ok()
                wait = HOT_WAIT
                continue
            await self._idle()
            wait = 0.0

    async def _idle(self) -> None:
        """Until the watcher's nudge, or a long random while (nothing lost for good if a nudge never came)."""
        try:
            # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives as the event is set,
            # and stop() would wait forever (as in dispatch.py). asyncio.timeout does not.
            async with asyncio.timeout(random.uniform(*IDLE_READ)):
                await self._wake.wait()
        except TimeoutError:
            pass

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="worker-events")

    async def drain(self, timeout: float) -> None:
        """Stop reading in the background, then hand over what the worker still holds (its session was
        closed: nothing new comes), within ``timeout``; what is left stays in the worker's journal."""
        await self.stop()
        try:
            async with asyncio.timeout(timeout):
                while await self.poll_once(wait=0):
                    pass
        except (TimeoutError, ApiError) as exc:
            log.warning("events.drain_incomplete", reason=type(exc).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
