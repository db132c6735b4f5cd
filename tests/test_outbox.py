"""The outbox store and dispatcher against real SQLite files (no stack): migrations, idempotency, group
commit, cursor paging, status rules, crash-resume of `sending`, and the dispatcher's retry rules with a
scripted stand-in for the worker's HTTP API."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import threading
import time

import pytest

from service.errors import ApiError, WorkerUnavailable
from service.runtime.dispatch import Dispatcher
from service.runtime.governor import Governor, GovernorPolicy
from service.store import inbound, outbox
from service.store.db import Database, DatabaseError, migrate, migrations
from tests import postgres
from tests.postgres import store_database

A = outbox.DEFAULT_ACCOUNT
P1, P2 = "+15550002222", "+15550003333"


@pytest.fixture
def db(tmp_path):
    database = store_database(tmp_path / "data" / "gateway.db").open()  # PostgreSQL with WA_TEST_DATABASE
    yield database
    database.close()


def accept(db, phone=P1, text="hi", key=None, now=None, ttl=3600.0, max_outbox=100):
    return db.call(outbox.accept, account=A, phone_number=phone, body=text, idempotency_key=key,
                   now=time.time() if now is None else now, ttl=ttl, max_outbox=max_outbox)


# --- the database ------------------------------------------------------------------------------

def test_migrations_apply_once_in_wal_mode_with_a_private_file(tmp_path):
    path = tmp_path / "data" / "gateway.db"
    first = Database(path).open()
    assert first.applied == [v for v, _, _ in migrations()]
    first.close()
    again = Database(path).open()
    assert again.applied == []
    assert again.call(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    assert again.call(lambda c: [r[0] for r in c.execute("SELECT version FROM schema_migrations")]) == [v for v, _, _ in migrations()]
    again.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_a_newer_schema_or_a_gap_in_the_migrations_is_refused(tmp_path):
    path = tmp_path / "gateway.db"
    Database(path).open().close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseError, match="newer"):
        Database(path).open()
    gap = tmp_path / "migrations"
    gap.mkdir()
    (gap / "001_a.sql").write_text("CREATE TABLE a (x INTEGER);")
    (gap / "003_c.sql").write_text("CREATE TABLE c (x INTEGER);")
    with pytest.raises(DatabaseError, match="out of sequence"):
        migrate(sqlite3.connect(tmp_path / "other.db", isolation_level=None), gap)


def test_a_failing_piece_rolls_back_alone_within_its_group(db):
    def boom(conn):
        conn.execute("INSERT INTO contacts VALUES ('default', '+1', 0, 0)")
        raise ValueError("no")

    futures = [db.submit(outbox.record_inbound, A, P1, 1.0), db.submit(boom), db.submit(outbox.record_inbound, A, P2, 1.0)]
    assert futures[0].result() is None and futures[2].result() is None
    with pytest.raises(ValueError):
        futures[1].result()
    assert db.call(lambda c: sorted(r[0] for r in c.execute("SELECT phone_number FROM contacts"))) == [P1, P2]


def test_accepts_that_arrive_together_share_one_commit(tmp_path):
    for grouped in (True, False):
        database = store_database(tmp_path / f"g{grouped}.db", group_commit=grouped).open()
        futures = [database.submit(outbox.accept, account=A, phone_number=P1, body=str(i), idempotency_key=None,
                                   now=1.0, ttl=60.0, max_outbox=1000) for i in range(200)]
        for f in futures:
            f.result()
        commits = database.commits
        database.close()
        if grouped:
            assert commits < 50, commits
        else:
            assert commits == 200


# --- ids and idempotency -------------------------------------------------------------------------

def test_ids_sort_by_time_and_the_whatsapp_id_is_derived_from_ours():
    a, b = outbox.new_id(1000.0), outbox.new_id(1001.0)
    assert len(a) == 26 and a < b
    assert outbox.wa_id_for(a) == outbox.wa_id_for(a)
    assert outbox.wa_id_for(a).startswith("3EB0") and len(outbox.wa_id_for(a)) == 22
    assert outbox.wa_id_for(a) != outbox.wa_id_for(b)


def test_an_idempotency_key_names_one_message_for_24_hours(db):
    first, created = accept(db, key="k-1", now=1000.0)
    assert created
    again, created = accept(db, key="k-1", now=1000.0 + 3600)
    assert not created and again["id"] == first["id"]
    with pytest.raises(outbox.KeyReused):
        accept(db, key="k-1", text="another body", now=1001.0)
    later, created = accept(db, key="k-1", now=1000.0 + 24 * 3600 + 1)
    assert created and later["id"] != first["id"]
    assert db.call(outbox.pending_count, A) == 2


def test_fifty_concurrent_accepts_with_one_key_make_one_message(db):
    results = []
    barrier = threading.Barrier(50)

    def post():
        barrier.wait()
        results.append(accept(db, key="same"))

    threads = [threading.Thread(target=post) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 50  # every caller got an answer (no constraint error)
    assert len({row["id"] for row, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert db.call(outbox.pending_count, A) == 1


def test_a_full_outbox_refuses_and_frees_up_as_messages_go(db):
    rows = [accept(db, text=str(i), max_outbox=3)[0] for i in range(3)]
    with pytest.raises(outbox.OutboxFull):
        accept(db, text="x", max_outbox=3)
    db.call(outbox.mark_sending, rows[0]["id"], 1001.0, False)
    db.call(outbox.set_status, A, rows[0]["id"], "sent", 1002.0)
    accept(db, text="x", max_outbox=3)


def test_the_outbox_depth_row_follows_every_path_out_of_the_queue(db):
    """The limit reads one counter (outbox_depth) instead of counting the backlog: every way a message
    enters or leaves queued/sending must keep it equal to the count, in any order."""
    import random
    rng = random.Random(13)
    ids: list[str] = []
    now = 2000.0
    for step in range(400):
        now += 1
        op = rng.choice(["accept", "accept", "keyed", "sending", "requeue", "sent", "receipt", "fail", "cancel",
                         "expire", "recover", "refail_receipt"])
        pick = rng.choice(ids) if ids else None
        try:
            if op == "accept":
                ids.append(accept(db, phone=rng.choice([P1, P2]), text=f"t{step}", now=now, ttl=rng.choice([5, 500]),
                                  max_outbox=1000)[0]["id"])
            elif op == "keyed":  # a replay adds nothing
                accept(db, key=f"k{rng.randrange(5)}", text="same", now=now, max_outbox=1000)
            elif op == "sending" and pick:
                db.call(outbox.mark_sending, pick, now, False)
            elif op == "requeue" and pick:
                db.call(outbox.requeue, pick, next_attempt_at=now, wait_reason="retry_backoff", last_error=None,
                        refund_attempt=True)
            elif op == "sent" and pick:
                db.call(outbox.advance_run, A, [pick], "sent", now)
            elif op == "receipt" and pick:  # a receipt may come for a queued message (a resend pending)
                db.call(outbox.set_status, A, None, rng.choice(["delivered", "read"]), now,
                        wa_id=outbox.wa_id_for(pick))
            elif op == "fail" and pick:
                db.call(outbox.fail, pick, "rejected", now)
            elif op == "cancel" and pick:
                db.call(outbox.cancel, A, pick, now)
            elif op == "expire":
                db.call(outbox.expire, A, now)
            elif op == "recover":
                db.call(outbox.recover_sending, now)
            elif op == "refail_receipt" and pick:  # a receipt wins over failed: not pending either way
                db.call(outbox.set_status, A, pick, "delivered", now)
        except outbox.NotCancellable:
            pass
        assert db.call(outbox.depth, A) == db.call(outbox.pending_count, A), (step, op)
    assert db.call(outbox.pending_count, A) > 0  # the walk left some waiting (it exercised both sides)


# --- listing -----------------------------------------------------------------------------------

def test_cursor_pages_are_newest_first_without_gaps_or_repeats(db):
    ids = [accept(db, phone=P1 if i % 2 else P2, text=str(i))[0]["id"] for i in range(7)]
    seen, before = [], None
    for _ in range(10):
        page = db.call(outbox.list_messages, A, limit=3, before_seq=before)
        if not page:
            break
        seen += [r["id"] for r in page]
        before = page[-1]["seq"]
    assert seen == ids[::-1]
    only_p1 = db.call(outbox.list_messages, A, phone_number=P1, limit=10)
    assert [r["id"] for r in only_p1] == [i for n, i in enumerate(ids) if n % 2][::-1]
    assert db.call(outbox.list_messages, A, status="sent", limit=10) == []


# --- status rules ------------------------------------------------------------------------------

def test_status_only_moves_forward_and_fills_the_skipped_steps(db):
    row, _ = accept(db)
    db.call(outbox.mark_sending, row["id"], 1001.0, False)
    delivered = db.call(outbox.set_status, A, None, "delivered", 1002.0, wa_id=row["wa_id"])
    assert delivered["status"] == "delivered" and delivered["sent_at"] == 1002.0
    assert db.call(outbox.set_status, A, row["id"], "sent", 1003.0) is None  # the /send answer came late
    assert db.call(outbox.get, A, row["id"])["status"] == "delivered"
    read = db.call(outbox.set_status, A, None, "read", 1004.0, wa_id=row["wa_id"])
    assert (read["sent_at"], read["delivered_at"], read["read_at"]) == (1002.0, 1002.0, 1004.0)


def test_cancel_only_while_queued(db):
    row, _ = accept(db)
    cancelled = db.call(outbox.cancel, A, row["id"], 1001.0)
    assert (cancelled["status"], cancelled["reason"]) == ("failed", "cancelled")
    assert db.call(outbox.mark_sending, row["id"], 1002.0, False) is None  # the dispatcher skips it
    other, _ = accept(db, text="2")
    db.call(outbox.mark_sending, other["id"], 1002.0, False)
    with pytest.raises(outbox.NotCancellable):
        db.call(outbox.cancel, A, other["id"], 1003.0)
    assert db.call(outbox.cancel, A, "nope", 1003.0) is None


# --- the dispatcher ----------------------------------------------------------------------------

class FakeWorker:
    """The worker's HTTP API as the dispatcher sees it: a state and a scripted answer per send."""

    def __init__(self, state="connected"):
        self.state = state
        self.sent: list[tuple[str, str, str]] = []  # (phone, text, whatsapp id) per call
        self.script: list[Exception | None] = []  # next answers; None = accepted
        self.times: list[float] = []
        self.requests: list[int] = []  # messages per request (1: POST /send, more: POST /send/batch)

    async def _request_once(self, method, path, **kw):
        if self.state is None:
            raise WorkerUnavailable("down")
        return {"state": self.state}

    async def send_text(self, phone, text, message_id=None, *, batched=False):
        if not batched:
            self.requests.append(1)
        self.sent.append((phone, text, message_id))
        self.times.append(time.monotonic())
        if self.script:
            failure = self.script.pop(0)
            if failure is not None:
                raise failure
        if self.state != "connected":
            raise ApiError("not connected", code="not_connected", status=409)
        await asyncio.sleep(0)
        return {"id": message_id, "status": "pending"}

    async def send_batch(self, messages):
        """The worker's POST /send/batch: in order; after a failure other than not_on_whatsapp the rest are
        not attempted. A worker that is down fails the whole request (WorkerUnavailable)."""
        self.requests.append(len(messages))
        results, stopped = [], False
        for m in messages:
            if stopped:
                results.append({"id": m["id"], "error": {"status": 409, "code": "not_attempted", "message": "-"}})
                continue
            try:
                await self.send_text(m["phone_number"], m["text"], m["id"], batched=True)
            except WorkerUnavailable:
                raise
            except ApiError as exc:
                results.append({"id": m["id"], "error": {"status": exc.status, "code": exc.code, "message": "-"}})
                stopped = exc.code != "not_on_whatsapp"
            else:
                results.append({"id": m["id"], "status": "pending"})
        return results


def make_dispatcher(db, worker, **kw):
    policy = GovernorPolicy(burst=1000, rate_per_minute=60000, jitter=0)
    kw.setdefault("retry_base", 0.01)
    kw.setdefault("retry_max", 0.05)
    return Dispatcher(db, worker, Governor(policy), poll_interval=0.02, **kw)


async def until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def status_of(db, message_id):
    return db.call(outbox.get, A, message_id)


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
        gaps = [b - a for a, b in zip(worker.times, worker.times[1:])]
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


def hand_over(db, dispatcher, event):
    """What EventConsumer does with a worker event: store it, then tell the dispatcher."""
    dispatcher.on_event(event, db.call(inbound.store_worker_event, A, event, time.time()))


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
        scans += fn is outbox.heads
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


# --- the HTTP API in-process, against a stand-in worker on the worker's unix socket --------------

from aiohttp import web  # noqa: E402

from service.http.app import create_app  # noqa: E402
from service.http.appkeys import DATABASE  # noqa: E402
from service.settings import Settings  # noqa: E402

KEY = "outbox-test-key"
AUTH = {"X-API-Key": KEY}


class StandInWorker:
    """Answers GET /status and POST /send on the worker's socket like the worker does."""

    def __init__(self):
        self.state = "connected"
        self.sends: list[dict] = []

    async def start(self, socket_path):
        app = web.Application()
        for prefix in ("", "/accounts/{account}"):  # the gateway addresses /accounts/<name>/...
            app.router.add_get(prefix + "/status", self._status)
            app.router.add_post(prefix + "/send", self._send)
            app.router.add_post(prefix + "/send/batch", self._send_batch)
            app.router.add_get(prefix + "/events", self._events)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        await web.UnixSite(self.runner, str(socket_path)).start()

    async def _status(self, request):
        return web.json_response({"state": self.state, "connected": self.state == "connected"})

    async def _send(self, request):
        body = await request.json()
        if self.state != "connected":
            return web.json_response({"error": {"code": "not_connected", "message": "no"}}, status=409)
        self.sends.append(body)
        return web.json_response({"id": body["id"], "status": "pending"})

    async def _send_batch(self, request):
        messages = (await request.json())["messages"]
        if self.state != "connected":
            return web.json_response({"results": [
                {"id": m["id"], "error": {"status": 409, "code": "not_connected" if i == 0 else "not_attempted",
                                          "message": "no"}} for i, m in enumerate(messages)]})
        self.sends.extend(messages)
        return web.json_response({"results": [{"id": m["id"], "status": "pending"} for m in messages]})

    async def _events(self, request):
        await asyncio.sleep(0.05)
        return web.json_response({"boot_id": "b", "last_seq": 0, "events": []})


@pytest.fixture
async def api(aiohttp_client, tmp_path):
    runners = []

    async def build(**env):
        settings = Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_RUN_DIR": str(tmp_path / "run"),
                                      "WA_API_KEY": KEY, "WA_SEND_JITTER": "0", "WA_SEND_RATE_PER_MINUTE": "6000",
                                      **postgres.database_env(), **env})
        worker = StandInWorker()
        await worker.start(settings.worker_socket)
        runners.append(worker.runner)
        client = await aiohttp_client(create_app(settings))
        client.worker = worker
        return client
    yield build
    for runner in runners:
        await runner.cleanup()


async def error_of(res, status, code):
    body = await res.json()
    assert res.status == status, body
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]


async def test_send_answers_200_sent_when_connected_and_202_queued_when_not(api):
    client = await api()
    res = await client.post("/send", json={"phone_number": P1, "message": "hello"}, headers=AUTH)
    body = await res.json()
    assert res.status == 200 and body["status"] == "sent" and body["phone_number"] == P1, body
    assert client.worker.sends == [{"phone_number": P1, "text": "hello", "id": outbox.wa_id_for(body["id"])}]
    assert "message" not in body  # the text is never echoed by POST /send
    client.worker.state = "connecting"
    res = await client.post("/send?wait=0.3", json={"phone_number": P1, "message": "later"}, headers=AUTH)
    queued = await res.json()
    assert res.status == 202 and queued["status"] == "queued", queued
    assert res.headers["Location"] == f"/messages/{queued['id']}"
    got = await (await client.get(f"/messages/{queued['id']}", headers=AUTH)).json()
    assert got["status"] == "queued" and got["message"] == "later" and got["attempts"] == 0
    client.worker.state = "logged_out"
    await error_of(await client.post("/send", json={"phone_number": P1, "message": "x"}, headers=AUTH), 409, "not_linked")


async def test_idempotency_key_replays_and_refuses_a_different_body(api):
    client = await api()
    client.worker.state = "connecting"
    headers = {**AUTH, "Idempotency-Key": "order-42"}
    first = await client.post("/send?wait=0", json={"phone_number": P1, "message": "a"}, headers=headers)
    again = await client.post("/send?wait=0", json={"phone_number": P1, "message": "a"}, headers=headers)
    assert first.status == again.status == 202
    assert (await first.json())["id"] == (await again.json())["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    await error_of(await client.post("/send", json={"phone_number": P1, "message": "b"}, headers=headers),
                   409, "idempotency_key_reused")
    client.worker.state = "logged_out"  # a replay still answers with the original, linked or not
    replay = await client.post("/send?wait=0", json={"phone_number": P1, "message": "a"}, headers=headers)
    assert (await replay.json())["id"] == (await first.json())["id"]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9", "tab\tkey"])
async def test_a_malformed_idempotency_key_is_400(api, key):
    client = await api()
    headers = {**AUTH, "Idempotency-Key": key.encode("utf-8").decode("latin-1")}
    res = await client.post("/send", json={"phone_number": P1, "message": "a"}, headers=headers)
    await error_of(res, 400, "invalid_idempotency_key")
    assert (await (await client.get("/messages", headers=AUTH)).json())["messages"] == []  # nothing stored


async def test_list_get_cancel_and_bad_input(api):
    client = await api()
    client.worker.state = "connecting"
    ids = []
    for i in range(5):
        res = await client.post("/send?wait=0", json={"phone_number": P1 if i % 2 else P2, "message": f"m{i}"}, headers=AUTH)
        ids.append((await res.json())["id"])
    page = await (await client.get("/messages?limit=2", headers=AUTH)).json()
    assert [m["id"] for m in page["messages"]] == ids[:-3:-1] and page["next_cursor"]
    rest = await (await client.get(f"/messages?limit=10&cursor={page['next_cursor']}", headers=AUTH)).json()
    assert [m["id"] for m in rest["messages"]] == ids[2::-1] and rest["next_cursor"] is None
    # The dispatcher still believed WhatsApp connected: it tries once, learns, and gives the attempt back.
    await until(lambda: client.app[DATABASE].call(
        lambda c: c.execute("SELECT COUNT(*) FROM messages WHERE status = 'sending'").fetchone()[0]) == 0)
    p1 = await (await client.get(f"/messages?phone_number={P1.replace('+', '%2B')}&status=queued", headers=AUTH)).json()
    assert [m["id"] for m in p1["messages"]] == [ids[3], ids[1]]
    cancelled = await client.delete(f"/messages/{ids[0]}", headers=AUTH)
    body = await cancelled.json()
    assert cancelled.status == 200 and (body["status"], body["reason"]) == ("failed", "cancelled")
    assert body["timestamps"]["failed"]
    await client.app[DATABASE].run(outbox.mark_sending, ids[1], time.time(), False)
    await error_of(await client.delete(f"/messages/{ids[1]}", headers=AUTH), 409, "not_cancellable")
    await error_of(await client.get("/messages/01NOPE", headers=AUTH), 404, "message_not_found")
    await error_of(await client.delete("/messages/01NOPE", headers=AUTH), 404, "message_not_found")
    for query, code in [("limit=0", "invalid_limit"), ("limit=x", "invalid_limit"), ("status=lost", "invalid_status"),
                        ("cursor=%21%21", "invalid_cursor"), ("direction=sideways", "invalid_direction"), ("direction=in&status=sent", "invalid_status"),
                        ("phone_number=12", "invalid_phone_number")]:
        await error_of(await client.get(f"/messages?{query}", headers=AUTH), 400, code)
    for wait in ("-1", "abc", "nan", "61"):
        await error_of(await client.post(f"/send?wait={wait}", json={"phone_number": P1, "message": "x"}, headers=AUTH),
                       400, "invalid_wait")
    for method, path in [("GET", "/messages"), ("GET", f"/messages/{ids[0]}"), ("DELETE", f"/messages/{ids[0]}")]:
        assert (await client.request(method, path)).status == 401


async def test_a_full_outbox_is_503_with_retry_after(api):
    client = await api(WA_OUTBOX_MAX="2")
    client.worker.state = "connecting"
    for i in range(2):
        assert (await client.post("/send?wait=0", json={"phone_number": P1, "message": str(i)}, headers=AUTH)).status == 202
    res = await client.post("/send?wait=0", json={"phone_number": P1, "message": "x"}, headers=AUTH)
    await error_of(res, 503, "outbox_full")
    assert res.headers["Retry-After"] == "5"


async def test_a_caller_that_gives_up_does_not_stop_the_writer(db):
    """A cancelled awaiter (a request task cancelled, the dispatcher stopping) must not kill the writer thread."""
    gate, running = threading.Event(), threading.Event()
    blocker = db.submit(lambda conn: (running.set(), gate.wait(5)))  # holds the writer while the next call waits
    assert running.wait(5)
    task = asyncio.ensure_future(db.run(outbox.record_inbound, A, P1, 1.0))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    gate.set()
    blocker.result(5)
    assert db.submit(outbox.is_known_contact, A, P1).result(5) is False  # the writer lives; the cancelled call never ran
