"""The statuses' hot path (service/store/inbound_status.py) against the outbox's own ``advance``: for any order of
sends, receipts, repeats and failures, the same rows, the same steps reached, the same ``message.status``
events and the same queue depth, on two real SQLite files."""

from __future__ import annotations

import json
import random

import pytest

from service.states import DEFAULT_ACCOUNT
from service.store import event_log, inbound_status, outbox
from service.store.db import Database

A = DEFAULT_ACCOUNT
STATUSES = ("sent", "delivered", "read")


@pytest.fixture
def pair(tmp_path):
    dbs = [Database(tmp_path / "old.db", synchronous="OFF").open(),
           Database(tmp_path / "new.db", synchronous="OFF").open()]
    yield dbs
    for db in dbs:
        db.close()


def _fill(db: Database, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        phone = "120363000000000001@g.us" if i == 3 else f"+1555000{8800 + i % 3}"
        rows.append(db.call(lambda c, p=phone, k=i: outbox.accept(
            c, account=A, phone_number=p, body=f"m{k}", idempotency_key=None, now=1000.0 + k, ttl=3600,
            max_outbox=100)[0]))
    return rows


def _state(db: Database) -> tuple:
    def read(conn):
        rows = [dict(r) for r in conn.execute("SELECT * FROM messages ORDER BY seq")]
        events = [json.loads(r["payload"])["data"] for r in event_log.after(conn, 0, limit=10_000)]
        return rows, events, outbox.depth(conn, A), outbox.pending_count(conn, A)
    return db.call(read)


@pytest.mark.parametrize("seed", range(8))
def test_the_hot_path_advances_exactly_as_the_outbox_does(pair, seed):
    rng = random.Random(seed)
    old, new = pair
    for db in pair:
        _fill(db, 8)
    ids = {db: _fill_ids(db) for db in pair}  # the ids differ between the files: compared by position
    now = 2000.0
    for _ in range(60):
        k = rng.randrange(8)
        action = rng.choice(("advance", "advance", "advance", "claim", "fail", "batch"))
        now += 1
        if action == "claim":  # queued -> sending, as the dispatcher's claim does
            for db in pair:
                db.call(outbox.mark_sending_run, [ids[db][k]["id"]], now, False)
        elif action == "fail":
            for db in pair:
                db.call(outbox.fail, ids[db][k]["id"], "not_on_whatsapp", now)
        elif action == "advance":
            status, by_wa = rng.choice(STATUSES), rng.random() < 0.5
            got = []
            for db, fn in ((old, _old_one), (new, _new_one)):
                row = ids[db][k]
                got.append(db.call(fn, row["id"] if not by_wa else None, row["wa_id"] if by_wa else None, status, now))
            _same_moves(got[0], got[1])
        else:  # a run: several at once, repeats included
            picks = [(rng.randrange(8), rng.choice(STATUSES)) for _ in range(rng.randrange(1, 6))]
            got = [old.call(lambda c, p=picks, t=now: [outbox.advance(c, A, ids[old][j]["id"], s, t) for j, s in p]),
                   new.call(inbound_status.advance_many, A, [(ids[new][j]["id"], None, s) for j, s in picks], now)]
            for a, b in zip(got[0], got[1], strict=True):
                _same_moves(a, b)
    (rows_a, events_a, depth_a, count_a), (rows_b, events_b, depth_b, count_b) = _state(old), _state(new)
    assert depth_a == count_a and depth_b == count_b and depth_a == depth_b
    assert [_comparable(r) for r in rows_a] == [_comparable(r) for r in rows_b]
    assert [_comparable(e) for e in events_a] == [_comparable(e) for e in events_b]
    assert len(events_a) > 8  # the sequence did move messages


def _fill_ids(db: Database) -> list[dict]:
    return db.call(lambda c: [dict(r) for r in c.execute("SELECT id, wa_id FROM messages ORDER BY seq")])


def _old_one(conn, message_id, wa_id, status, now):
    return outbox.advance(conn, A, message_id, status, now, wa_id=wa_id)


def _new_one(conn, message_id, wa_id, status, now):
    return inbound_status.advance_many(conn, A, [(message_id, wa_id, status)], now)[0]


def _comparable(row: dict | None) -> dict | None:
    """Without what differs by construction between the two files (ids, and what is derived from them)."""
    if row is None:
        return None
    return {k: v for k, v in row.items() if k not in ("id", "wa_id", "whatsapp_id", "request_hash")}


def _same_moves(a: tuple, b: tuple) -> None:
    assert _comparable(a[0]) == _comparable(b[0])
    assert a[1] == b[1]
