"""The dispatcher against a real store (no stack): order per recipient, runs, retry and give-up rules,
crash-resume of `sending`, receipts and the governor, with a scripted stand-in for the worker's HTTP API
(tests/helpers/fake_worker.py)."""

from __future__ import annotations

import asyncio
import time

from service.errors import ApiError, WorkerUnavailable
from service.runtime.dispatch import Dispatcher
from service.runtime.governor import Governor, GovernorPolicy
from service.store import dispatch_plan, outbox
from tests.helpers.fake_worker import (
    P1,
    P2,
    A,
    FakeWorker,
    accept,
    hand_over,
    make_dispatcher,
    status_of,
    until,
)
from tests.helpers.postgres import store_database


async def test_in_order_per_recipient_with_the_derived_whatsapp_id(db):
    worker = FakeWorker()
    rows = [accept(db, phone=P1 if i % 2 else P2, text=f"m{i}")[0] for i in range(10)]
    dispatcher = make_dispatcher(db, worker)
    await dispatcher.start()
    try:
        await until(lambda: len(worker.sent) == 10)
        await until(lambda: all(status_of(db, r["id"])["status"] == "sent" for r in rows))
    finally:
        await dispatcher.stop()
    for phone in (P1, P2):
        assert [t for p, t, _ in worker.sent if p == phone] == [r["body"] for r in rows if r["phone_number"] == phone]
    assert {w for _, _, w in worker.sent} == {outbox.wa_id_for(r["id"]) for r in rows}


async def test_a_recipients_waiting_messages_go_as_one_run_and_a_failure_inside_keeps_the_order(db):
    worker = FakeWorker()
    # The third fails transiently: it backs off, the two after it are given back unattempted and wait for it.
    worker.script = [None, None, ApiError("boom", code="whatsapp_error", status=502)]
    rows = [accept(db, phone=P1, text=f"r{i}")[0] for i in range(5)]
    dispatcher = make_dispatcher(db, worker, batch_size=4)
    await dispatcher.start()
    try:
        await until(lambda: all(status_of(db, r["id"])["status"] == "sent" for r in rows))
    finally:
        await dispatcher.stop()
    assert worker.requests[0] == 4  # the head and the three after it, in one request (the batch bound is 4)
    texts = [t for _, t, _ in worker.sent]
    assert texts[:3] == ["r0", "r1", "r2"] and texts[3:] == ["r2", "r3", "r4"]  # r2 again first: none overtook it
    attempts = [status_of(db, r["id"])["attempts"] for r in rows]
    assert attempts == [1, 1, 2, 1, 1]  # r3 was never attempted in the first run: no attempt spent


async def test_no_attempt_is_spent_while_whatsapp_is_not_connected(db):
    worker = FakeWorker(state="connecting")
    row, _ = accept(db)
    dispatcher = make_dispatcher(db, worker)
    await dispatcher.start()
    try:
        await asyncio.sleep(0.2)
        assert worker.sent == [] and status_of(db, row["id"])["attempts"] == 0
        # Connected, but the connection drops under the send: the attempt is given back.
        worker.state = "connected"
        worker.script = [ApiError("closed", code="not_connected", status=409)]
        await until(lambda: status_of(db, row["id"])["status"] == "sent")
    finally:
        await dispatcher.stop()
    assert len(worker.sent) == 2 and status_of(db, row["id"])["attempts"] == 1
    assert worker.sent[0][2] == worker.sent[1][2]  # the same WhatsApp id both times


async def test_transient_failures_back_off_then_give_up_with_too_many_attempts(db):
    worker = FakeWorker()
    worker.script = [ApiError("boom", code="whatsapp_error", status=502)] * 2
    ok, _ = accept(db, phone=P1)
    dispatcher = make_dispatcher(db, worker, max_attempts=3, retry_base=0.1, retry_max=0.2)
    await dispatcher.start()
    try:
        await until(lambda: status_of(db, ok["id"])["status"] == "sent")
        assert status_of(db, ok["id"])["attempts"] == 3
        gaps = [b - a for a, b in zip(worker.times, worker.times[1:], strict=False)]
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1, gaps  # backed off: at least half of 0.1, then of 0.2
        worker.script = [WorkerUnavailable("slow", code="worker_timeout", status=504)] * 3
        bad, _ = accept(db, phone=P2)
        dispatcher.wake()
        await until(lambda: status_of(db, bad["id"])["status"] == "failed")
    finally:
        await dispatcher.stop()
    failed = status_of(db, bad["id"])
    assert (failed["reason"], failed["attempts"], failed["last_error"]) == ("too_many_attempts", 3, "worker_timeout")


async def test_permanent_failures_expiry_and_cancel(db):
    worker = FakeWorker(state="connecting")
    stale, _ = accept(db, phone=P1, ttl=0.01, now=0.0)
    gone, _ = accept(db, phone=P2, text="cancel me")
    db.call(outbox.cancel, A, gone["id"], 1.0)
    nobody, _ = accept(db, phone="+15550009999")
    dispatcher = make_dispatcher(db, worker)
    await dispatcher.start()
    try:
        await until(lambda: status_of(db, stale["id"])["status"] == "failed")
        worker.state = "connected"
        worker.script = [ApiError("nope", code="not_on_whatsapp", status=422)]
        await until(lambda: status_of(db, nobody["id"])["status"] == "failed")
    finally:
        await dispatcher.stop()
    assert status_of(db, stale["id"])["reason"] == "expired"
    assert status_of(db, nobody["id"])["reason"] == "not_on_whatsapp"
    assert [p for p, _, _ in worker.sent] == ["+15550009999"]  # neither the expired nor the cancelled one went


async def test_a_message_left_sending_by_a_crash_is_resent_with_the_same_whatsapp_id(tmp_path):
    path = tmp_path / "gateway.db"
    first = store_database(path).open()
    row, _ = accept(first)
    first.call(outbox.mark_sending, row["id"], 1001.0, False)  # the gateway dies during this send
    first.close()
    again = store_database(path).open()
    worker = FakeWorker()
    dispatcher = make_dispatcher(again, worker)
    await dispatcher.start()
    try:
        await until(lambda: status_of(again, row["id"])["status"] == "sent")
    finally:
        await dispatcher.stop()
        again.close()
    assert worker.sent == [(P1, "hi", outbox.wa_id_for(row["id"]))]


async def test_a_receipt_for_a_message_waiting_for_its_resend_settles_it(db):
    worker = FakeWorker(state="connecting")
    row, _ = accept(db)
    dispatcher = make_dispatcher(db, worker)
    await dispatcher.start()
    try:
        hand_over(db, dispatcher, {"type": "message.status", "id": row["wa_id"], "status": "delivered"})
        await until(lambda: status_of(db, row["id"])["status"] == "delivered")
        hand_over(db, dispatcher, {"type": "session.status", "state": "connected"})
        worker.state = "connected"
        await asyncio.sleep(0.2)
    finally:
        await dispatcher.stop()
    assert worker.sent == []  # it reached the recipient already: never sent again


async def test_the_governor_is_asked_before_every_send_and_its_reason_shows(db):
    worker = FakeWorker()
    policy = GovernorPolicy(burst=1000, rate_per_minute=60000, jitter=0, new_contacts_per_day=1)
    dispatcher = Dispatcher(db, worker, Governor(policy), poll_interval=0.02)
    # Today's one first contact went already (before a restart: the dispatcher gives it back to the governor).
    db.call(lambda c: c.execute("INSERT INTO messages (account, id, wa_id, direction, phone_number, body, status,"
                                " expires_at, request_hash, created_at, sending_at, first_contact)"
                                " VALUES (?, 'OLD', 'W', 'out', '+15550007777', 'x', 'sent', 0, 'h', ?, ?, 1)",
                                (A, time.time() - 60, time.time() - 60)))
    hand_over(db, dispatcher, {"type": "message", "from": P2, "id": "IN1", "text": "hello",  # P2 wrote to us
                               "from_jid": "15550002222@s.whatsapp.net", "event_id": "in:1"})
    stranger, _ = accept(db, phone=P1, text="a")
    known, _ = accept(db, phone=P2, text="b")
    await dispatcher.start()
    try:
        await until(lambda: status_of(db, known["id"])["status"] == "sent"
                    and status_of(db, stranger["id"])["wait_reason"] == "new_contact_budget")
    finally:
        await dispatcher.stop()
    assert [p for p, _, _ in worker.sent] == [P2]  # the first message to a stranger waits, it is not dropped
    assert status_of(db, stranger["id"])["status"] == "queued"
    assert status_of(db, known["id"])["first_contact"] == 0


async def test_a_burst_to_a_waiting_recipient_does_not_rescan_the_backlog_per_message(db):
    """Each accept wakes the dispatcher with its recipient; a recipient the last round left waiting (here the
    governor's rate) needs no new round, so 40 accepts cost a handful of scans, not 40."""
    worker = FakeWorker()
    dispatcher = Dispatcher(db, worker, Governor(GovernorPolicy(burst=1, rate_per_minute=0.01, jitter=0)),
                            poll_interval=5.0)
    scans = 0
    real_run = db.run

    async def counting_run(fn, *args, **kwargs):
        nonlocal scans
        scans += fn is dispatch_plan.plan  # a round's read of the heads
        return await real_run(fn, *args, **kwargs)

    db.run = counting_run
    first, _ = accept(db, phone=P1, text="first")
    await dispatcher.start()
    try:
        await until(lambda: status_of(db, first["id"])["status"] == "sent")
        second, _ = accept(db, phone=P1, text="second")
        dispatcher.wake(P1)
        await until(lambda: status_of(db, second["id"])["wait_reason"] == "rate_limited")
        before = scans
        for i in range(40):
            accept(db, phone=P1, text=f"burst {i}")
            dispatcher.wake(P1)
            await asyncio.sleep(0.005)
        assert scans - before <= 2, scans - before
        other, _ = accept(db, phone=P2, text="another recipient")  # not waiting: it does get a round
        dispatcher.wake(P2)
        await until(lambda: scans > before + 0 and status_of(db, other["id"])["wait_reason"] == "rate_limited")
    finally:
        await dispatcher.stop()


async def test_rate_limited_sends_wait_with_the_reason_shown(db):
    worker = FakeWorker()
    dispatcher = Dispatcher(db, worker, Governor(GovernorPolicy(burst=1, rate_per_minute=0.01, jitter=0)),
                            poll_interval=0.02)
    first, _ = accept(db, phone=P1, text="a")
    second, _ = accept(db, phone=P2, text="b")
    await dispatcher.start()
    try:
        await until(lambda: status_of(db, second["id"])["wait_reason"] == "rate_limited")
    finally:
        await dispatcher.stop()
    assert [p for p, _, _ in worker.sent] == [P1]
    assert status_of(db, first["id"])["first_contact"] == 1


def test_retry_backoff_is_exponential_capped_and_jittered(db):
    top = Dispatcher(db, FakeWorker(), Governor(GovernorPolicy()), retry_base=1.0, retry_max=8.0, rng=lambda: 1.0)
    assert [top._backoff(a) for a in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    low = Dispatcher(db, FakeWorker(), Governor(GovernorPolicy()), retry_base=1.0, retry_max=8.0, rng=lambda: 0.0)
    assert [low._backoff(a) for a in range(1, 5)] == [0.5, 1, 2, 4]  # jitter: between half and all of it
