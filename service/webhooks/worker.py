"""The delivery loop of one endpoint: fan out the log's new events into deliveries, claim the due ones,
attempt each, and record what ``schedule.decide`` makes of the outcome.

Each endpoint has its own worker, HTTP session and bounded number of requests in flight, so a slow or
dead endpoint never delays another. A worker wakes on ``wake`` (set by ``WebhookService.notify``) and also
polls every ``poll_interval`` so that nothing depends on the notify. On SIGTERM (``drain``) nothing more is
claimed; attempts in flight finish or are cut off at the deadline, staying pending with their attempt
counted and their lease released.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog

from service.store import webhooks as store
from service.store.db import Database
from service.store.full_disk import FullDiskLog, storage_full
from service.webhooks import attempt
from service.webhooks.address import AddressPolicy, guarded_connector
from service.webhooks.endpoint_names import endpoint_label, public_url
from service.webhooks.schedule import Policy, decide
from service.webhooks.secret import EndpointSecret

log = structlog.get_logger("gateway.webhooks")

LEASE_MARGIN = 5.0  # seconds beyond the attempt timeout before an unreported attempt is made again


class EndpointWorker:
    """Fans out and delivers the events of one endpoint."""

    def __init__(self, db: Database, url: str, types: tuple[str, ...], secrets: tuple[str, ...] | EndpointSecret,
                 policy: Policy, poll_interval: float, *, key: str | None = None, account: str | None = None,
                 on_outcome: Callable[[str, str], None] | None = None, egress: AddressPolicy | None = None):
        self.db = db
        self.url = url
        # Where it may connect (service/webhooks/address.py): None for the operator's WA_WEBHOOK_URL (trusted).
        self.egress = egress
        self.key = key or url  # the endpoint's id: its URL when global, whe_<ULID> when an account's
        self.account = account  # None: every account's events; else only this account's
        self.name = public_url(url)
        self.label = endpoint_label(self.key, account)
        # (endpoint label, outcome) per decision, for GET /metrics: delivered, retry_scheduled or dead_lettered,
        # named as the log events that say more.
        self.on_outcome = on_outcome
        # How log lines name it: the URL as shown publicly, and for an account's endpoint its account and id.
        self.ident = {"endpoint": self.name} if account is None else \
            {"endpoint": self.name, "account": account, "webhook_id": self.key}
        self.types = types
        self.secrets = secrets
        self.policy = policy
        self.poll_interval = poll_interval
        self.wake = asyncio.Event()
        self.in_flight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._draining = False  # SIGTERM: claim nothing more
        self._seqs: dict[asyncio.Task[None], int] = {}  # attempt in flight -> its delivery's seq
        # A full disk: one line now and then. A delivery whose outcome could not be stored stays claimed until its
        # lease runs out, then goes again (the same webhook-id): at least once, as after a crash.
        self._full = FullDiskLog(log, "webhook.store_full")

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=guarded_connector(self.egress, self.policy.concurrency),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self.policy.timeout),
        )
        self._task = asyncio.create_task(self._run(), name=f"webhooks:{self.name}")

    async def stop(self) -> None:
        tasks = [t for t in [self._task, *self.in_flight] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def drain(self, deadline: float) -> tuple[int, int, list[int]]:
        """SIGTERM (service/http/drain.py): claim nothing more; attempts in flight finish until ``deadline`` (the
        loop's clock) and record their outcome as always; the rest are cut off and stay pending, their attempt
        counted. Returns (in flight, finished, seqs cut off)."""
        self._draining = True
        self.wake.set()
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done():  # its round ends; what it claimed starts
            await asyncio.wait([self._task], timeout=max(0.0, deadline - loop.time()))
        tasks = list(self.in_flight)
        finished = 0
        if tasks:
            done, _ = await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
            finished = len(done)
        late = [t for t in tasks if not t.done()]
        cut = [self._seqs[t] for t in late]
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        return len(tasks), finished, cut

    async def _run(self) -> None:
        while not self._draining:
            self.wake.clear()  # before reading: a notify during the reads is not lost
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if storage_full(exc):
                    self._full.failed(exc, **self.ident)
                else:
                    log.exception("webhook.round_failed", **self.ident)
            try:
                # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives as the event
                # is set, and stop() would wait forever (seen in tests/app/test_drain.py). asyncio.timeout does not.
                async with asyncio.timeout(self.poll_interval):
                    await self.wake.wait()
            except TimeoutError:
                pass

    async def _round(self) -> None:
        while True:
            created, more = await self.db.run(store.fan_out, self.key, self.types, time.time(), self.policy.max_age,
                                              account=self.account)
            if not more:
                break
        if self._draining:
            return
        free = self.policy.concurrency - len(self.in_flight)
        claimed, expired = await self.db.run(store.claim, self.key, time.time(), max(free, 0),
                                             self.policy.timeout + LEASE_MARGIN)
        for row in expired:
            log.warning("webhook.dead_lettered", **self.ident, delivery_id=row["id"], event_id=row["event_id"],
                        attempts=row["attempts"], reason=row["last_error"])
            self._count("dead_lettered")
        for row in claimed:
            task = asyncio.create_task(self._attempt(row))
            self.in_flight.add(task)
            self._seqs[task] = row["seq"]
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self._seqs.pop(task, None)
        failure = None if task.cancelled() else task.exception()
        if failure is not None and storage_full(failure):
            self._full.failed(failure, **self.ident)
        elif failure is not None:
            log.error("webhook.attempt_failed", **self.ident, exc_info=failure)
        self.wake.set()  # a slot is free, and the next event of that contact may go now

    async def _attempt(self, row: dict[str, Any]) -> None:
        assert self._session is not None
        started = time.monotonic()
        answer = await attempt.post(self._session, self.url, self.egress, self.secrets, row["event_id"],
                                    row["payload"])
        await self._record(row, answer, started)

    async def _record(self, row: dict[str, Any], answer: attempt.Answer, started: float) -> None:
        """Store what ``decide`` makes of the attempt, then log and count it."""
        now = time.time()
        status_code = answer.status_code
        outcome, next_at, reason = decide(row, status_code, answer.error, answer.retry_after, now, self.policy)
        context = dict(**self.ident, delivery_id=row["id"], event_id=row["event_id"],
                       event_type=row["event_type"], attempts=row["attempts"], status_code=status_code,
                       duration_ms=round((time.monotonic() - started) * 1000, 1))
        if outcome == "delivered":
            await self.db.run(store.delivered, row["seq"], now, status_code)
            log.info("webhook.delivered", **context)
            self._count("delivered")
        elif outcome == "retry":
            assert next_at is not None
            await self.db.run(store.retry_later, row["seq"], now, status_code, reason, next_at)
            log.info("webhook.retry_scheduled", **context, reason=reason, retry_in_s=round(next_at - now, 3))
            self._count("retry_scheduled")
        else:
            await self.db.run(store.fail, row["seq"], now, status_code, reason)
            log.warning("webhook.dead_lettered", **context, reason=reason)
            self._count("dead_lettered")

    def _count(self, outcome: str) -> None:
        """Counted after the store committed the decision, so the counter never runs ahead of the store."""
        if self.on_outcome is not None:
            self.on_outcome(self.label, outcome)
