"""Reads the worker's event journal (inbound messages, receipts, session changes) and logs each once.

The worker numbers its events; the gateway long-polls with the last number it saw. A new worker
boot starts a new numbering, recognised by its ``boot_id``. Later work stores these events and
fans them out to webhooks and SSE; this module is the single place that will change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from .errors import ApiError
from .worker_client import WorkerClient

log = structlog.get_logger("gateway.events")

_POLL_WAIT = 20.0


class EventConsumer:
    def __init__(self, worker: WorkerClient):
        self._worker = worker
        self._boot_id: str | None = None
        self._after = 0
        self._task: asyncio.Task | None = None
        self.received = 0
        # Called with every event, in journal order (the dispatcher: receipts, session state, senders).
        self.listeners: list[Callable[[dict], None]] = []

    def handle(self, event: dict) -> None:
        kind = event.get("type", "unknown")
        fields = {k: v for k, v in event.items() if k not in {"type", "text", "seq", "timestamp"}}
        if "timestamp" in event:  # the message's own time; structlog's "timestamp" is the log time
            fields["message_timestamp"] = event["timestamp"]
        ids = {"message_id": event["id"]} if event.get("id") else {}
        fields.pop("id", None)
        if isinstance(event.get("text"), str):  # never the body itself, at any level
            fields["text_length"] = len(event["text"])
        with structlog.contextvars.bound_contextvars(**ids):
            log.info(f"whatsapp.{kind}", seq=event.get("seq"), **fields)
        self.received += 1
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("events.listener_failed", event_type=kind)

    async def poll_once(self) -> None:
        batch = await self._worker.events(self._after, _POLL_WAIT, self._boot_id)
        if batch.get("boot_id") != self._boot_id:
            if self._boot_id is not None:
                log.info("worker.new_boot", boot_id=batch.get("boot_id"))
            self._boot_id = batch.get("boot_id")
            self._after = 0
            batch = await self._worker.events(0, 0)
        for event in batch.get("events", []):
            self.handle(event)
            self._after = max(self._after, int(event.get("seq", 0)))

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except ApiError:
                await asyncio.sleep(1.0)  # worker restarting: the monitor reports it
            except Exception:
                log.exception("events.poll_failed")
                await asyncio.sleep(1.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="worker-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
