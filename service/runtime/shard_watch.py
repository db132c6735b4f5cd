"""One long-poll per worker shard that keeps every account's link mirror and event reader up to date (issue 28).

The worker answers ``GET /changes?after=<seq>&wait_ms=&boot_id=`` with the accounts whose state, registered flag
or event journal changed since ``seq`` (node_worker/src/changes.js). From each answer the watcher

* sets the account's ``AccountLink`` (its state and registered flag, as a poll of its ``/status`` did), and
* wakes its ``EventConsumer`` when the journal holds events it has not stored (``last_seq`` beyond its cursor,
  or another journal boot), which then reads them with one request.

So an idle shard costs the gateway one waiting request and one connection, however many accounts it holds,
where a poll of ``/status`` per account per second and a long-poll of ``/events`` per account cost 1,000 requests
a second and 1,000 connections at 1,000 accounts. A shard that fails to answer (its worker is down, restarting,
hung) makes its accounts' state unknown (None), as the poll did; the watcher asks again every ``retry`` seconds
and, once the worker answers, starts over from the whole list (``after=0``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog

from service.runtime.link import AccountLink
from service.runtime.tasks import cancel_and_wait
from service.runtime.worker_client import WorkerClient
from service.runtime.worker_events import EventConsumer

log = structlog.get_logger("gateway.shard_watch")

WAIT = 25.0  # seconds one long-poll may wait for a change (then it is asked again)
RETRY = 1.0  # seconds between tries while the shard does not answer
# An answer that came back within this many seconds (a busy shard: every event is a change) is followed by a pause
# this long before the next ask, so that changes are taken in batches: at most 1/COALESCE asks a second however
# busy, while an idle shard still answers its first change at once (an account's hot reader needs no watcher).
COALESCE = 0.05


@dataclass
class Followed:
    link: AccountLink
    events: EventConsumer


class ShardWatcher:
    def __init__(self, worker: WorkerClient, shard: int, *, wait: float = WAIT, retry: float = RETRY,
                 coalesce: float = COALESCE):
        self._worker = worker
        self.shard = shard
        self._wait = wait
        self._retry = retry
        self._coalesce = coalesce
        self._followed: dict[str, Followed] = {}
        # The worker's last word on each account it listed (for an account served from now on: its state at once).
        self._known: dict[str, dict[str, Any]] = {}
        self._boot_id: str | None = None
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self.answers = 0  # answers taken (tests, the bench)

    # --- what it feeds -----------------------------------------------------------------------
    def follow(self, name: str, link: AccountLink, events: EventConsumer) -> None:
        self._followed[name] = Followed(link, events)
        entry = self._known.get(name)
        if entry is not None:
            self._apply(entry)

    def unfollow(self, name: str) -> None:
        self._followed.pop(name, None)

    # --- life --------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"shard-watch-{self.shard}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def run(self) -> None:
        failing = False
        while True:
            asked = time.monotonic()
            try:
                answer = await self._worker.changes(self._seq, self._wait, self._boot_id)
            except Exception as exc:  # noqa: BLE001 - whatever it is, the shard's state is unknown until it answers
                if not failing:
                    log.info("shard.watch_failed", shard=self.shard, error=f"{type(exc).__name__}: {exc}"[:200])
                failing = True
                self._lost()
                await asyncio.sleep(self._retry)
                continue
            if failing:
                log.info("shard.watch_back", shard=self.shard)
            failing = False
            try:
                changed = self.take(answer)
            except Exception:
                log.exception("shard.watch_answer_failed", shard=self.shard)
                self._lost()
                await asyncio.sleep(self._retry)
                continue
            if changed and time.monotonic() - asked < self._coalesce:
                await asyncio.sleep(self._coalesce)

    # --- what it does with an answer ---------------------------------------------------------
    def take(self, answer: dict[str, Any]) -> int:
        """One answer of GET /changes; returns how many accounts it listed."""
        boot_id = answer.get("boot_id")
        whole = self._seq == 0 or boot_id != self._boot_id  # the worker listed every open account
        entries = [e for e in answer.get("accounts", []) if isinstance(e, dict) and isinstance(e.get("name"), str)]
        if whole:
            self._known = {}
        for entry in entries:
            if entry.get("removed"):
                self._known.pop(entry["name"], None)
            else:
                self._known[entry["name"]] = entry
            self._apply(entry)
        if whole:  # an account the worker does not hold open (not yet, after its restart): its state is unknown
            listed = {e["name"] for e in entries}
            for name, followed in self._followed.items():
                if name not in listed:
                    followed.link.set(None)
        self._boot_id = boot_id if isinstance(boot_id, str) else None
        seq = answer.get("seq")
        self._seq = seq if isinstance(seq, int) and seq > 0 else 0
        self.answers += 1
        return len(entries)

    def _apply(self, entry: dict[str, Any]) -> None:
        followed = self._followed.get(entry["name"])
        if followed is None:
            return
        registered = entry.get("registered")
        followed.link.registered = registered if isinstance(registered, bool) else None
        state = entry.get("state")
        followed.link.set(state if isinstance(state, str) else None)
        if not entry.get("removed"):
            followed.events.nudge(entry.get("last_seq"), entry.get("events_boot_id"))

    def _lost(self) -> None:
        """The shard did not answer: every account's state is unknown, and the next answer is the whole list."""
        self._boot_id, self._seq, self._known = None, 0, {}
        for followed in self._followed.values():
            followed.link.set(None)
