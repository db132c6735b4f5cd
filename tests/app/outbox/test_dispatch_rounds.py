"""What wakes the dispatcher for a round, and what a round reads: a receipt starts a round only when it releases
a recipient (its head was waiting to be resent), never per receipt of a message sent already; a round reads the
heads, the first contact and the run's messages in one trip to the store."""

from __future__ import annotations

import asyncio

from service.errors import ApiError
from service.store import dispatch_plan, outbox
from tests.helpers.fake_worker import P1, P2, FakeWorker, accept, hand_over, make_dispatcher, status_of, until


def _count(db, fns):
    """Counts the store calls of ``fns`` made through ``db.run``."""
    calls = {fn: 0 for fn in fns}
    real_run = db.run

    async def counting_run(fn, *args, **kwargs):
        if fn in calls:
            calls[fn] += 1
        return await real_run(fn, *args, **kwargs)

    db.run = counting_run
    return calls


async def test_a_receipt_for_a_head_waiting_in_backoff_lets_its_recipients_next_message_go_at_once(db):
    worker = FakeWorker()
    worker.script = [ApiError("boom", code="whatsapp_error", status=502)]  # the head fails once: backoff
    head, _ = accept(db, phone=P1, text="head")
    dispatcher = make_dispatcher(db, worker, retry_base=30.0, retry_max=30.0)
    dispatcher.poll_interval = 5.0  # only a wake can start the next round within the test
    await dispatcher.start()
    try:
        await until(lambda: status_of(db, head["id"])["wait_reason"] == "retry_backoff")
        behind, _ = accept(db, phone=P1, text="behind")
        dispatcher.wake(P1)  # parked: no round for it
        await asyncio.sleep(0.1)
        assert status_of(db, behind["id"])["status"] == "queued"
        # the recipient had it after all (the send reached WhatsApp before it failed here): its receipt comes
        hand_over(db, dispatcher, {"type": "message.status", "id": head["wa_id"], "status": "delivered"})
        await until(lambda: status_of(db, behind["id"])["status"] == "sent", timeout=2.0)
    finally:
        await dispatcher.stop()
    assert [text for _, text, _ in worker.sent] == ["head", "behind"]  # the head was not sent again


async def test_receipts_of_messages_sent_already_start_no_round(db):
    worker = FakeWorker()
    rows = [accept(db, phone=P1 if i % 2 else P2, text=f"m{i}")[0] for i in range(6)]
    dispatcher = make_dispatcher(db, worker)
    dispatcher.poll_interval = 5.0
    await dispatcher.start()
    try:
        await until(lambda: all(status_of(db, r["id"])["status"] == "sent" for r in rows))
        await asyncio.sleep(0.05)  # the last send's own wake-up round is over
        calls = _count(db, (dispatch_plan.plan, outbox.heads))
        for row in rows:
            for status in ("sent", "delivered", "read"):
                hand_over(db, dispatcher, {"type": "message.status", "id": row["wa_id"], "status": status})
        await asyncio.sleep(0.1)
        assert all(status_of(db, r["id"])["status"] == "read" for r in rows)
        assert calls == {dispatch_plan.plan: 0, outbox.heads: 0}, calls
    finally:
        await dispatcher.stop()


async def test_a_round_reads_what_it_sends_in_one_trip_to_the_store(db):
    worker = FakeWorker()
    dispatcher = make_dispatcher(db, worker, batch_size=8)
    dispatcher.poll_interval = 5.0
    calls = _count(db, (dispatch_plan.plan, outbox.heads, outbox.next_queued))
    await dispatcher.start()
    try:
        for k in range(3):
            rows = [accept(db, phone=P1, text=f"r{k} m{i}")[0] for i in range(3)]
            dispatcher.wake(P1)
            await until(lambda rs=rows: all(status_of(db, r["id"])["status"] == "sent" for r in rs))
            await asyncio.sleep(0.02)
    finally:
        await dispatcher.stop()
    assert worker.requests == [3, 3, 3]  # each wake: the recipient's three as one run
    assert calls[outbox.heads] == 0 and calls[outbox.next_queued] == 0, calls  # all of it read by the plan
    assert calls[dispatch_plan.plan] >= 3


async def test_an_idle_dispatcher_reads_nothing_until_woken_and_an_accept_still_goes_at_once(db):
    """Issue 28: with nothing queued and nothing awaiting a receipt a dispatcher waits for a wake, instead of
    reading the store every poll (three reads a second per account were most of an idle gateway's CPU at 300
    accounts); a message accepted afterwards still goes at its wake, and a sent one awaiting its receipt makes the
    upkeep due at its bound."""
    worker = FakeWorker()
    calls = _count(db, (dispatch_plan.plan, dispatch_plan.upkeep))
    dispatcher = make_dispatcher(db, worker)  # poll_interval 0.02 s: 25 rounds in the window below if it polled
    await dispatcher.start()
    try:
        await asyncio.sleep(0.1)
        before = dict(calls)
        await asyncio.sleep(0.5)
        assert calls == before, f"an idle dispatcher read the store: {before} -> {calls}"
        row, _ = accept(db, phone=P1)
        dispatcher.wake(P1)
        await until(lambda: status_of(db, row["id"])["status"] == "sent")
    finally:
        await dispatcher.stop()


def test_the_upkeep_says_when_it_is_next_due(db):
    now = 1000.0
    assert db.call(dispatch_plan.upkeep, "default", now, 60.0)["due"] is None
    queued, _ = accept(db, phone=P1, ttl=30.0, now=now)
    assert db.call(dispatch_plan.upkeep, "default", now, 60.0)["due"] == queued["expires_at"]
    db.call(outbox.mark_sending, queued["id"], now, False)
    db.call(outbox.advance, "default", queued["id"], "sent", now + 1)
    assert db.call(dispatch_plan.upkeep, "default", now + 2, 60.0)["due"] == now + 1 + 60.0
    flagged = db.call(dispatch_plan.upkeep, "default", now + 62, 60.0)
    assert [r["id"] for r in flagged["flagged"]] == [queued["id"]] and flagged["due"] is None
