"""The dispatcher: sends the outbox through the worker, in order per recipient, exactly once per id.

    POST /send -> view -> outbox commit -> (wait briefly) -> 200/202
    dispatcher -> governor -> outbox: sending -> worker POST /send {id: wa_id} -> Baileys -> WhatsApp
    worker events (message.status, session.status, message) -> dispatcher -> outbox

- Order: per recipient only its oldest waiting message may go; recipients go in parallel (a bound).
- No connection: while WhatsApp is not connected (worker down, reconnecting) nothing is tried, and a
  send refused for that reason gives its attempt back.
- Transient failures (5xx, timeouts) are retried with capped exponential backoff and jitter; permanent
  ones fail with a reason: not_on_whatsapp, rejected, expired (TTL), too_many_attempts, cancelled.
- A message found in ``sending`` at start (the gateway died mid-send) is resent with the same WhatsApp
  id, which the recipient treats as the same message.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import structlog

from .errors import ApiError, WorkerUnavailable
from .governor import DAY, Governor
from .store import outbox
from .store.db import Database
from .worker_client import WorkerClient

log = structlog.get_logger("gateway.dispatch")

DONE = ("sent", "delivered", "read", "failed")
# Worker states in which nothing will ever be sent until someone pairs (again).
UNLINKED_STATES = ("logged_out", "qr")


class Dispatcher:
    def __init__(self, db: Database, worker: WorkerClient, governor: Governor, *,
                 account: str = outbox.DEFAULT_ACCOUNT, concurrency: int = 4, max_attempts: int = 10,
                 retry_base: float = 1.0, retry_max: float = 60.0, poll_interval: float = 1.0,
                 clock: Callable[[], float] = time.time, rng: Callable[[], float] = random.random):
        self.db = db
        self.worker = worker
        self.governor = governor
        self.account = account
        self.concurrency = max(1, concurrency)
        self.max_attempts = max(1, max_attempts)
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.poll_interval = poll_interval
        self.clock = clock
        self.rng = rng
        self.state: str | None = None  # the worker's WhatsApp state, None while unknown
        self._wake = asyncio.Event()
        self._waiters: dict[str, set[asyncio.Future]] = {}
        self._inflight: dict[str, asyncio.Task] = {}  # phone number -> its send
        self._tasks: list[asyncio.Task] = []
        self._expired_at = 0.0
        self._stopping = False
        self.on_change: list[Callable[[], None]] = []

    # --- life ------------------------------------------------------------------------------
    async def start(self) -> None:
        now = self.clock()
        resent = await self.db.run(outbox.recover_sending, now)
        if resent:
            log.info("outbox.recovered", messages=resent, reason="sending_at_restart")
        sends = await self.db.run(outbox.first_contact_sends, self.account, now - DAY)
        restore = getattr(self.governor, "restore", None)
        if restore is not None:
            restore(self.account, sends, now)
        self._tasks = [asyncio.create_task(self._run(), name="dispatcher"),
                       asyncio.create_task(self._watch_state(), name="dispatcher-state")]

    async def stop(self) -> None:
        self._stopping = True
        tasks = [*self._tasks, *self._inflight.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        # A send cut off here stays `sending` in the store and goes again, same id, at the next start.

    def wake(self) -> None:
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    # --- callers waiting for a status ----------------------------------------------------
    def waiter(self, message_id: str) -> asyncio.Future:
        """A future resolved with the message once it is sent (or further, or failed)."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, set()).add(future)
        return future

    def forget(self, message_id: str, future: asyncio.Future) -> None:
        waiting = self._waiters.get(message_id)
        if waiting is not None:
            waiting.discard(future)
            if not waiting:
                del self._waiters[message_id]

    def changed(self, row: dict | None) -> None:
        if row is None:
            return
        for notify in self.on_change:  # the change added to the event log: its readers wake up
            notify()
        if row["status"] not in DONE:
            return
        for future in self._waiters.pop(row["id"], set()):
            if not future.done():
                future.set_result(row)

    # --- whether anything can be sent at all -----------------------------------------------
    async def not_linked(self) -> bool:
        """True when nothing would ever send a message now: the account is logged out, or was never
        paired (the worker shows a QR or is stopped and this gateway never saw it connected)."""
        state = self.state
        if state != "connected":
            try:  # the cache may be stale (a pairing just finished, a logout): ask before deciding
                state = await self._refresh_state()
            except ApiError:
                return False  # the worker is restarting: accept, the message waits
        if state in UNLINKED_STATES:
            return True
        if state == "stopped":
            return not await self.db.run(outbox.is_linked, self.account)
        return False

    async def _refresh_state(self) -> str | None:
        status = await self.worker._request_once("GET", "/status", timeout=5.0)
        self._set_state(status.get("state"))
        return self.state

    def _set_state(self, state: str | None) -> None:
        if state == self.state:
            return
        was = self.state
        self.state = state
        log.info("dispatch.whatsapp_state", state=state, was=was)
        if state == "connected":
            self.db.submit(outbox.set_linked, self.account, True, self.clock())
            self.wake()
        elif state == "logged_out":
            self.db.submit(outbox.set_linked, self.account, False, self.clock())

    async def _watch_state(self) -> None:
        """Poll the worker's state (events bring changes sooner; this covers a worker that died)."""
        while not self._stopping:
            try:
                await self._refresh_state()
            except ApiError:
                self._set_state(None)
            except Exception:
                log.exception("dispatch.state_poll_failed")
            await asyncio.sleep(self.poll_interval if not self.connected else self.poll_interval * 5)

    # --- the worker's events (called by EventConsumer, in journal order) ---------------------
    def on_event(self, event: dict, result: dict) -> None:
        """A worker event, already stored (service/events.py): follow the state, release waiters."""
        if event.get("type") == "session.status":
            self._set_state(event.get("state"))
        row = result.get("message")
        if row is not None:
            log.info("message.status", message_id=row["id"], status=row["status"])
            self.changed(row)
            self.wake()  # a receipted message that was waiting to be resent no longer blocks its recipient

    # --- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            timeout = self.poll_interval
            try:
                timeout = await self._round()
            except Exception:
                log.exception("dispatch.round_failed")
            try:
                # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives as the
                # event is set, and stop() would wait forever. asyncio.timeout does not.
                async with asyncio.timeout(max(0.01, timeout)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _round(self) -> float:
        """Start every send that may go now; returns how long to sleep unless woken."""
        now = self.clock()
        if now - self._expired_at >= 1.0:
            self._expired_at = now
            for message_id in await self.db.run(outbox.expire, self.account, now):
                log.info("message.failed", message_id=message_id, reason="expired")
                self.changed(await self.db.run(outbox.get, self.account, message_id))
        if not self.connected:
            return self.poll_interval
        next_due = now + self.poll_interval
        for head in await self.db.run(outbox.heads, self.account):
            phone = head["phone_number"]
            if phone in self._inflight or head["status"] != "queued":
                continue
            if len(self._inflight) >= self.concurrency:
                break
            if head["next_attempt_at"] > now:
                next_due = min(next_due, head["next_attempt_at"])
                continue
            first_contact = not await self.db.run(outbox.is_known_contact, self.account, phone)
            now = self.clock()
            delay, reason = self.governor.delay_for(self.account, phone, first_contact, now)
            if delay > 0:
                next_due = min(next_due, now + delay)
                if head["wait_reason"] != reason:
                    await self.db.run(outbox.hold, head["id"], next_attempt_at=head["next_attempt_at"],
                                      wait_reason=reason)
                continue
            self.governor.record_send(self.account, phone, first_contact, now)
            self._inflight[phone] = asyncio.create_task(self._send(head, first_contact, now),
                                                        name=f"send-{head['id']}")
        return max(0.0, next_due - self.clock())

    def _backoff(self, attempts: int) -> float:
        delay = min(self.retry_max, self.retry_base * (2 ** max(0, attempts - 1)))
        return delay * (0.5 + self.rng() / 2)  # jitter: between half and all of it

    async def _send(self, head: dict, first_contact: bool, now: float) -> None:
        message_id = head["id"]
        try:
            row = await self.db.run(outbox.mark_sending, message_id, now, first_contact)
            if row is None:
                return  # cancelled or receipted meanwhile
            log.info("message.sending", message_id=message_id, whatsapp_id=row["wa_id"], attempt=row["attempts"])
            try:
                await self.worker.send_text(row["phone_number"], row["body"], message_id=row["wa_id"])
            except ApiError as exc:
                await self._failed(row, exc)
                return
            row = await self.db.run(outbox.set_status, self.account, message_id, "sent", self.clock())
            if row is not None:
                log.info("message.sent", message_id=message_id, whatsapp_id=row["wa_id"])
                self.changed(row)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dispatch.send_failed", message_id=message_id)
            await self.db.run(outbox.requeue, message_id, next_attempt_at=self.clock() + self.retry_base,
                              wait_reason="retry_backoff", last_error="internal_error", refund_attempt=False)
        finally:
            self._inflight.pop(head["phone_number"], None)
            self.wake()

    async def _failed(self, row: dict, exc: ApiError) -> None:
        message_id, now = row["id"], self.clock()
        if exc.code == "not_on_whatsapp":
            self.changed(await self.db.run(outbox.fail, message_id, "not_on_whatsapp", now, last_error=exc.code))
            log.info("message.failed", message_id=message_id, reason="not_on_whatsapp")
            return
        not_connected = exc.code == "not_connected" or (
            isinstance(exc, WorkerUnavailable) and exc.code != "worker_timeout")
        if not_connected:
            # Not the message's fault: the attempt is given back and the dispatcher waits for the connection.
            if exc.code != "not_connected":
                self._set_state(None)
            elif self.state == "connected":
                self._set_state("connecting")
            await self.db.run(outbox.requeue, message_id, next_attempt_at=now, wait_reason="not_connected",
                              last_error=exc.code, refund_attempt=True)
            log.info("message.waiting", message_id=message_id, reason=exc.code)
            return
        if 400 <= exc.status < 500 and exc.status not in (408, 409, 429):
            self.changed(await self.db.run(outbox.fail, message_id, "rejected", now, last_error=exc.code))
            log.warning("message.failed", message_id=message_id, reason="rejected", code=exc.code)
            return
        if row["attempts"] >= self.max_attempts:
            self.changed(await self.db.run(outbox.fail, message_id, "too_many_attempts", now, last_error=exc.code))
            log.warning("message.failed", message_id=message_id, reason="too_many_attempts", code=exc.code)
            return
        delay = self._backoff(row["attempts"])
        await self.db.run(outbox.requeue, message_id, next_attempt_at=now + delay, wait_reason="retry_backoff",
                          last_error=exc.code, refund_attempt=False)
        log.info("message.retry_scheduled", message_id=message_id, attempt=row["attempts"], code=exc.code,
                 delay_s=round(delay, 3))
