"""The outbox store against real SQLite files (or PostgreSQL with WA_TEST_DATABASE=postgresql; no stack):
migrations, idempotency, group commit, cursor paging, status rules, and the writer thread."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import threading

import pytest

from service.store import contacts, outbox
from service.store.db import Database, DatabaseError, migrate, migrations
from tests.helpers.fake_worker import (
    P1,
    P2,
    A,
    accept,
)
from tests.helpers.postgres import store_database

# --- the database ------------------------------------------------------------------------------

def test_migrations_apply_once_in_wal_mode_with_a_private_file(tmp_path):
    path = tmp_path / "data" / "gateway.db"
    first = Database(path).open()
    assert first.applied == [v for v, _, _ in migrations()]
    first.close()
    again = Database(path).open()
    assert again.applied == []
    assert again.call(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    assert again.call(lambda c: [r[0] for r in c.execute("SELECT version FROM schema_migrations")]) == \
        [v for v, _, _ in migrations()]
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

    futures = [db.submit(contacts.record_inbound, A, P1, 1.0), db.submit(boom),
               db.submit(contacts.record_inbound, A, P2, 1.0)]
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


async def test_a_caller_that_gives_up_does_not_stop_the_writer(db):
    """A cancelled awaiter (a request task cancelled, the dispatcher stopping) must not kill the writer thread."""
    gate, running = threading.Event(), threading.Event()
    blocker = db.submit(lambda conn: (running.set(), gate.wait(5)))  # holds the writer while the next call waits
    assert running.wait(5)
    task = asyncio.ensure_future(db.run(contacts.record_inbound, A, P1, 1.0))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    gate.set()
    blocker.result(5)
    # The writer lives; the cancelled call never ran.
    assert db.submit(contacts.is_known_contact, A, P1).result(5) is False
