"""The dispatcher: sends the outbox through the worker, in order per recipient, exactly once per id.

    POST /send -> view -> outbox commit -> settle (wait briefly) -> 200/202
    dispatcher -> governor -> outbox: sending -> worker POST /send {id: wa_id} -> Baileys -> WhatsApp
    worker events (message.status, message) -> EventConsumer (stored) -> dispatcher (waiters, next run)
    the shard's change watch (runtime/shard_watch.py) -> AccountLink (runtime/link.py): connected or not

- Order: per recipient only its oldest waiting messages may go, as one run (up to ``batch_size``, each let
  through by the governor) in one worker request that sends them in order and stops at a failure;
  recipients go in parallel (a bound). One round trip per run, not per message.
- No connection: nothing is tried (the link labels what waits); a refused send gives its attempt back.
  A refusal is judged in one place (runtime/verdict.py): fail, wait, or retry with capped backoff.
- A message found in ``sending`` at start (the gateway died mid-send) is resent with the same WhatsApp
  id, which the recipient treats as the same message.
- Drain (SIGTERM, http/drain.py): nothing more is claimed; a send in flight finishes or, at the deadline, goes back
  to ``queued`` (the same WhatsApp id next time); callers waiting on a message that will not go now get it as is.
- Idle (nothing queued): no store read until an accept, a send, a connection or the upkeep's due time wakes it.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import structlog

from service.errors import ApiError
from service.runtime.dispatch_upkeep import upkeep
from service.runtime.governor import DAY, Governor
from service.runtime.link import AccountLink
from service.runtime.verdict import backoff, judge
from service.runtime.waiters import Waiters
from service.runtime.worker_client import SendRun, WorkerApi, send_run
from service.states import DEFAULT_ACCOUNT, DONE, FailureReason, WaitReason
from service.store import contacts, dispatch_plan, inbound_status, leases, outbox
from service.store.db import Database
from service.store.full_disk import FullDiskLog, storage_full

log = structlog.get_logger("gateway.dispatch")


class Dispatcher:
    def __init__(self, db: Database, worker: WorkerApi, governor: Governor, *,
                 account: str = DEFAULT_ACCOUNT, concurrency: int = 4, max_attempts: int = 10,
                 retry_base: float = 1.0, retry_max: float = 60.0, poll_interval: float = 1.0,
                 batch_size: int = 32, fence: tuple[str, int] | None = None, receipt_bound: float = 600.0,
                 clock: Callable[[], float] = time.time, rng: Callable[[], float] = random.random,
                 link: AccountLink | None = None, send: SendRun = send_run):
        """``link``: the account's link (service/runtime/link.py), which the account starts and stops; without
        one the dispatcher makes its own and runs it (a dispatcher on its own, as in the outbox tests)."""
        self.db = db
        self.worker = worker
        self.governor = governor
        self.account = account
        self.concurrency = max(1, concurrency)
        self.max_attempts = max(1, max_attempts)
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.poll_interval = poll_interval
        self.batch_size = max(1, batch_size)
        # In a cluster: (instance, lease generation). Every claim checks it in its transaction, so a former
        # owner (paused past its lease, partitioned) marks nothing ``sending`` once another took over.
        self.fence = fence
        self.fenced = False
        self.clock = clock
        self.rng = rng
        self._own_link = link is None
        self.link = link if link is not None else AccountLink(db, worker, account=account,
                                                              poll_interval=poll_interval, clock=clock)
        self.link.on_connected.append(self.wake)  # what waited for the connection goes now
        self._wake = asyncio.Event()
        self._waiters = Waiters()
        self._inflight: dict[str, asyncio.Task[None]] = {}  # phone number -> its send
        self._inflight_ids: dict[str, list[str]] = {}  # phone number -> the messages being sent
        self._interrupted: set[str] = set()  # messages whose send was cancelled (a stop): back to the queue
        self._parked: set[str] = set()  # recipients the last round left waiting (a timer wakes the next)
        self._draining = False  # SIGTERM: claim nothing more
        self._tasks: list[asyncio.Task[None]] = []
        self._expired_at, self._send_run = 0.0, send  # send: a run to the worker (media: runtime/media_send.py)
        self._upkeep_due = 0.0  # when the upkeep next has something to do (dispatch_upkeep.py); 0: at the next round
        self._full = FullDiskLog(log, "dispatch.store_full")  # a full disk: one line now and then, not per round
        self.receipt_bound, self._stopping = receipt_bound, False  # receipt_bound: seconds after `sent` w/o receipt
        self.on_change: list[Callable[[], None]] = []
        # Called with (row, steps) when the store moved a message to steps it had not reached ("sent",
        # "delivered", "read"; outbox.advance), whether by the worker's ack or a receipt: once per step.
        self.on_advance: list[Callable[[dict[str, Any], tuple[str, ...]], None]] = []

    # --- life ------------------------------------------------------------------------------
    async def start(self) -> None:
        now = self.clock()
        resent = await self.db.run(outbox.recover_sending, now, self.account)
        if resent:
            log.info("outbox.recovered", messages=resent, reason="sending_at_restart")
        sends = await self.db.run(outbox.first_contact_sends, self.account, now - DAY)
        restore = getattr(self.governor, "restore", None)
        if restore is not None:
            restore(self.account, sends, now)
        self._tasks = [asyncio.create_task(self._run(), name="dispatcher")]
        if self._own_link:
            self.link.start()

    async def stop(self) -> None:
        self._stopping = True
        self._draining = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._own_link:
            await self.link.stop()
        await self._cut_off()
        self._waiters.release()

    async def drain(self, deadline: float) -> dict[str, Any]:
        """SIGTERM (service/http/drain.py): claim nothing more; the sends in flight at the worker may finish until
        ``deadline`` (the loop's clock), their result recorded as always; those still running then are cut
        off and their messages go back to ``queued``. Callers waiting on a message that will not go now are
        answered at once (POST /send: 202, queued)."""
        self._draining = self._waiters.closed = True
        sending = {message_id for ids in self._inflight_ids.values() for message_id in ids}
        self._waiters.release(keep=sending)
        tasks = list(self._inflight.values())
        finished = 0
        if tasks:
            done, _ = await asyncio.wait(tasks, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
            finished = len(done)
        requeued = await self._cut_off()
        self._waiters.release()
        return {"sends_in_flight": len(tasks), "sends_finished": finished, "sends_requeued": requeued}

    async def _cut_off(self) -> int:
        """Cancel the sends still in flight; their messages go back to the queue (a send cut off may have
        reached WhatsApp: the resend carries the same id, which the recipient treats as the same message)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ids, self._interrupted = sorted(self._interrupted), set()
        if not ids:
            return 0
        back = await self.db.run(outbox.requeue_interrupted, self.account, ids, self.clock())
        for message_id in back:
            log.info("message.requeued", message_id=message_id, reason="shutdown")
        return len(back)

    def wake(self, phone: str | None = None) -> None:
        """Run a round soon; not for a recipient being sent to or left waiting by the last round (its turn comes when
        that send or wait ends): a burst to one recipient costs one round per run, not a backlog scan per accept."""
        self._upkeep_due = 0.0  # something new (a message, a send, a connection): the upkeep looks again
        if phone is not None and (phone in self._inflight or phone in self._parked):
            return
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self.link.connected

    # --- callers waiting for a status (runtime/waiters.py) -----------------------------------------
    def waiter(self, message_id: str) -> asyncio.Future[dict[str, Any] | None]:
        """A future resolved with the message once it is done; with None when this process will not send it."""
        return self._waiters.add(message_id)

    async def settle(self, row: dict[str, Any], wait: float, *, new: bool) -> dict[str, Any]:
        """A message just accepted (``new``) or replayed, once it is sent (or further, or failed), or as it is
        after ``wait`` seconds (POST /send: 200 when done, else 202). Waits only when there is something to
        wait for; the waiter is registered before the dispatcher is woken, so no status change is missed."""
        if row["status"] in DONE or wait <= 0:
            if new:
                self.wake(row["phone_number"])
            return row
        done = await self._waiters.wait(row["id"], wait, then=lambda: self.wake(row["phone_number"]))
        return done or await self.db.run(outbox.get, self.account, row["id"]) or row

    @property
    def waiting_callers(self) -> int:
        """POST /send callers waiting for their message's outcome (for /metrics)."""
        return len(self._waiters)

    def changed(self, row: dict[str, Any] | None) -> None:
        if row is None:
            return
        for notify in self.on_change:  # the change added to the event log: its readers wake up
            notify()
        if row["status"] in DONE:
            self._waiters.resolve(row)

    def _advanced(self, row: dict[str, Any], reached: tuple[str, ...]) -> None:
        if not reached:
            return
        for observe in self.on_advance:
            try:
                observe(row, reached)
            except Exception:  # an observer's bug must not stop the dispatcher
                log.exception("dispatch.observer_failed", message_id=row["id"])

    # --- the worker's events (called by EventConsumer, in journal order) ---------------------
    def on_event(self, event: dict[str, Any], result: dict[str, Any]) -> None:
        """A worker event, already stored (service/runtime/worker_events.py): a message it moved (a receipt)
        releases its waiters and lets its recipient's next message go. (``session.status`` is the link's.)"""
        if self._own_link:
            self.link.on_event(event, result)
        row = result.get("message")
        if row is not None:  # logged already, as the worker's event (worker_events.py: whatsapp.message.status)
            reached = result.get("reached", ())
            self._advanced(row, reached)
            self.changed(row)
            if "sent" in reached and row["phone_number"] not in self._inflight:
                # A receipted message that was waiting (to be resent, in backoff) no longer blocks its recipient.
                # Any other receipt changes nothing here: one round per message it releases, not per receipt.
                self.wake()

    # --- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            timeout = self.poll_interval
            try:
                timeout = await self._round()
            except Exception as exc:
                if storage_full(exc):
                    self._full.failed(exc, account=self.account)
                else:
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
        if now - self._expired_at >= 1.0 and now >= self._upkeep_due:
            self._expired_at = now
            self._upkeep_due = await upkeep(self.db, self.account, now, self.receipt_bound, self.changed)
        idle = max(self.poll_interval, self._upkeep_due - now)  # a connection, an accept or a send wakes it sooner
        if not self.connected or self._draining or self.fenced:
            self._parked = set()
            return idle
        next_due = now + self.poll_interval
        parked: set[str] = set()
        free = self.concurrency - len(self._inflight)
        heads = await self.db.run(dispatch_plan.plan, self.account, set(self._inflight), free, now,
                                  self.batch_size - 1)
        if not heads and not self._inflight:  # nothing queued: nothing to ask the store again until woken
            self._parked = set()
            return idle
        for head in heads:
            phone = head["phone_number"]
            planned, following = head.pop(dispatch_plan.FIRST_CONTACT, None), head.pop(dispatch_plan.FOLLOWING, None)
            if phone in self._inflight:
                continue
            if head["status"] == "sending":
                # Nobody sends it (a full disk took no outcome): back to the queue, the same WhatsApp id (as at start).
                for message_id in await self.db.run(outbox.requeue_interrupted, self.account, [head["id"]], now):
                    log.info("message.requeued", message_id=message_id, reason="outcome_not_stored")
                    next_due = now
                continue
            if len(self._inflight) >= self.concurrency:
                break
            if head["next_attempt_at"] > now:
                next_due = min(next_due, head["next_attempt_at"])
                parked.add(phone)
                continue
            if planned is None:  # not among those the plan read ahead for (the governor held one of them)
                planned = await self.db.run(contacts.is_first_contact, self.account, phone)
                now = self.clock()
            first_contact = planned
            delay, reason = self.governor.delay_for(self.account, phone, first_contact, now)
            if delay > 0:
                next_due = min(next_due, now + delay)
                parked.add(phone)
                if head["wait_reason"] != reason:
                    await self.db.run(outbox.hold, head["id"], next_attempt_at=head["next_attempt_at"],
                                      wait_reason=reason)
                continue
            self.governor.record_send(self.account, phone, first_contact, now)
            run = [head]
            if self.batch_size > 1:
                run += await self._rest_of_run(head, first_contact, now, following)
            if self._draining:  # the drain began while this round read the store: it has counted what is in flight
                break
            self._inflight[phone] = asyncio.create_task(self._send(run, first_contact, now),
                                                        name=f"send-{head['id']}")
            self._inflight_ids[phone] = [r["id"] for r in run]
        self._parked = parked
        return max(0.0, next_due - self.clock())

    async def _rest_of_run(self, head: dict[str, Any], first_contact: bool, now: float,
                           following: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        """The recipient's next messages that may go with its head, in order, up to the first not due or held by the
        governor (a recipient's order is never broken). ``following``: what the plan read (None: read them now)."""
        if following is None:
            following = await self.db.run(outbox.next_queued, self.account, head["phone_number"], head["seq"],
                                          self.batch_size - 1)
        run = []
        for row in following:
            if row["status"] != "queued" or row["next_attempt_at"] > now:
                break
            delay, _ = self.governor.delay_for(self.account, row["phone_number"], first_contact, now)
            if delay > 0:
                break
            self.governor.record_send(self.account, row["phone_number"], first_contact, now)
            run.append(row)
        return run

    async def _send(self, run: list[dict[str, Any]], first_contact: bool, now: float) -> None:
        """Send a recipient's run (its head and those that may follow it) in one worker request and two commits."""
        phone = run[0]["phone_number"]
        rows: list[dict[str, Any]] = []
        try:
            fence = None if self.fence is None else (self.account, *self.fence)
            try:
                rows = await self.db.run(outbox.mark_sending_run, [r["id"] for r in run], now, first_contact, fence)
            except leases.NotOwner:
                self.fenced = True  # the lease keeper drops the account at its next round
                log.warning("dispatch.not_owner", account=self.account, generation=fence[2] if fence else None)
                return
            if not rows:
                return  # cancelled or receipted meanwhile
            self._full.ok()  # a write went through (it says so once, if the disk had been full)
            for row in rows:  # a first attempt says it with its worker's message.relayed and its status: not again
                if row["attempts"] > 1:
                    log.info("message.sending", message_id=row["id"], whatsapp_id=row["wa_id"], attempt=row["attempts"])
            results = await self._send_run(self.worker, rows)
            sent = [row["id"] for row, error in zip(rows, results, strict=True) if error is None]
            if sent:
                recorded = await self.db.run(inbound_status.advance_run, self.account, sent, "sent", self.clock())
                for moved, reached in recorded:
                    if moved is not None:
                        log.info("message.sent", message_id=moved["id"], whatsapp_id=moved["wa_id"])
                        self._advanced(moved, reached)
                        self.changed(moved)
            failed = [(row, error) for row, error in zip(rows, results, strict=True) if error is not None]
            for row, error in failed:
                if error.code == "not_attempted":
                    await self.db.run(outbox.requeue, row["id"], next_attempt_at=self.clock(),
                                      wait_reason=WaitReason.RETRY_BACKOFF, last_error=None, refund_attempt=True)
                else:
                    await self._failed(row, error)
        except asyncio.CancelledError:
            self._interrupted.update(r["id"] for r in rows)  # a stop cut it off: _cut_off puts it back
            raise
        except Exception as exc:
            if storage_full(exc):
                self._full.failed(exc, account=self.account, message_id=run[0]["id"], messages=len(run))
            else:
                log.exception("dispatch.send_failed", message_id=run[0]["id"], messages=len(run))
            try:
                for row in rows:
                    await self.db.run(outbox.requeue, row["id"], next_attempt_at=self.clock() + self.retry_base,
                                      wait_reason=WaitReason.RETRY_BACKOFF, last_error="internal_error",
                                      refund_attempt=False)
            except Exception as again:  # noqa: BLE001 - left `sending`: a later round puts them back (_round)
                if not storage_full(again):
                    log.exception("dispatch.requeue_failed", message_id=run[0]["id"])
        finally:
            self._inflight.pop(phone, None)
            self._inflight_ids.pop(phone, None)
            self.wake()

    def _backoff(self, attempts: int) -> float:
        return backoff(attempts, self.retry_base, self.retry_max, self.rng())

    async def _failed(self, row: dict[str, Any], exc: ApiError) -> None:
        """Apply the verdict on a send the worker refused (runtime/verdict.py)."""
        message_id, now = row["id"], self.clock()
        verdict = judge(exc, row["attempts"], self.max_attempts)
        if verdict.kind == "fail":
            self.changed(await self.db.run(outbox.fail, message_id, verdict.reason, now, last_error=exc.code))
            # the recipient's answer is news (info); the rest says something went wrong (warning)
            say = log.info if verdict.reason == FailureReason.NOT_ON_WHATSAPP else log.warning
            say("message.failed", message_id=message_id, reason=verdict.reason, code=exc.code)
            return
        if verdict.kind in ("not_owner", "not_connected"):
            # Not the message's fault: the attempt is given back. not_owner: the lease moved (cluster/lease_keeper.py),
            # the new owner sends it (the same WhatsApp id); else the dispatcher waits for the connection.
            if verdict.kind == "not_owner":
                self.fenced = True
                log.warning("dispatch.not_owner", account=self.account, message_id=message_id)
            else:
                self.link.dropped(worker_away=verdict.worker_away)
                log.info("message.waiting", message_id=message_id, reason=exc.code)
            reason = self.link.wait_reason() or WaitReason.NOT_CONNECTED
            await self.db.run(outbox.requeue, message_id, next_attempt_at=now, wait_reason=reason,
                              last_error=exc.code, refund_attempt=True)
            return
        delay = self._backoff(row["attempts"])
        await self.db.run(outbox.requeue, message_id, next_attempt_at=now + delay,
                          wait_reason=WaitReason.RETRY_BACKOFF, last_error=exc.code, refund_attempt=False)
        log.info("message.retry_scheduled", message_id=message_id, attempt=row["attempts"], code=exc.code,
                 delay_s=round(delay, 3))
