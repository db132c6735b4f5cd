"""The gateway's side of the hand-over, against a real SQLite file: each worker event stored once,
inbound messages with their phone number and LID, statuses as events in the same transaction as the
outbox change, and a bounded log that never drops what a webhook endpoint still has to read."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from service.runtime.retention import prune_events, prune_once
from service.states import DEFAULT_ACCOUNT
from service.store import contacts, event_log, inbound, outbox, stats
from service.store.db import Database

A = DEFAULT_ACCOUNT
PN = "15550008801@s.whatsapp.net"
LID = "90000000008801@lid"


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "gateway.db").open()
    yield database
    database.close()


def message(**over):
    base = {"type": "message", "event_id": "in:x:WA1", "id": "WA1", "from": "+15550008801", "lid": None,
            "from_jid": PN, "push_name": "Ana", "timestamp": 1764000000, "kind": "text", "text": "olá 👋",
            "offline": False}
    return base | over


def test_a_repeated_worker_event_is_stored_once(db):
    now = time.time()
    first = db.call(inbound.store_worker_events, A, [message(), message()], now)
    assert first[0]["event"] is not None and first[1]["event"] is None
    again = db.call(inbound.store_worker_event, A, message(), now + 5)  # the worker handed it over again
    assert again["event"] is None
    rows = db.call(inbound.list_messages, A)
    assert len(rows) == 1 and rows[0]["body"] == "olá 👋"
    log = db.call(event_log.after, 0)
    assert [e["type"] for e in log] == ["message.received"]
    body = json.loads(log[0]["payload"])
    assert body["id"] == log[0]["id"] and body["id"].startswith("evt_")
    data = body["data"]
    assert data["phone_number"] == "+15550008801" and data["whatsapp_id"] == "WA1" and data["text"] == "olá 👋"
    assert data["timestamp"] == "2025-11-24T16:00:00.000Z"
    assert db.call(contacts.is_known_contact, A, "+15550008801")  # the governor's known contacts


def test_a_message_written_by_lid_keeps_phone_number_and_lid_and_orders_by_contact(db):
    stored = db.call(inbound.store_worker_event, A,
                     message(event_id="in:lid:WA2", id="WA2", from_jid=LID, lid=LID, offline=True), time.time())
    data = json.loads(stored["event"]["payload"])["data"]
    assert (data["phone_number"], data["lid"], data["chat_jid"], data["offline"]) == ("+15550008801", LID, LID, True)
    assert stored["event"]["subject"] == "+15550008801"
    only_lid = db.call(inbound.store_worker_event, A, message(event_id="in:lid:WA3", id="WA3", from_jid=LID,
                                                              lid=LID, **{"from": None}), time.time())
    assert only_lid["event"]["subject"] == LID  # no number known yet: ordered by the LID


def test_unusable_or_unknown_events_change_nothing(db):
    for bad in ({"type": "message", "id": None, "from_jid": PN}, {"type": "message", "id": "X"},
                {"type": "message.status", "id": "NOT-OURS", "status": "delivered"},
                {"type": "message.status", "id": None, "status": "read"}, {"type": "mystery"}):
        assert db.call(inbound.store_worker_event, A, bad, time.time()) == {"event": None, "message": None}
    assert db.call(event_log.after, 0) == [] and db.call(inbound.list_messages, A) == []


def test_a_receipt_moves_the_outbox_and_logs_one_status_event(db):
    now = time.time()
    row, _ = db.call(lambda c: outbox.accept(c, account=A, phone_number="+15550008802", body="x",
                                             idempotency_key=None, now=now, ttl=60, max_outbox=10))
    receipt = {"type": "message.status", "id": row["wa_id"], "status": "delivered", "event_id": "status:d"}
    moved = db.call(inbound.store_worker_event, A, receipt, now)
    assert moved["message"]["status"] == "delivered" and moved["message"]["sent_at"] is not None
    assert db.call(inbound.store_worker_event, A, receipt, now)["message"] is None  # a repeat: no step back
    log = [json.loads(e["payload"]) for e in db.call(event_log.after, 0)]
    assert [(e["type"], e["data"]["status"]) for e in log] == [("message.status", "delivered")]
    assert log[0]["data"]["id"] == row["id"]


def test_session_changes_are_events_once_each(db):
    change = {"type": "session.status", "state": "connected", "phone_number": "+15550000001", "event_id": "s1"}
    db.call(inbound.store_worker_events, A, [change, change], time.time())
    log = db.call(event_log.after, 0, types=("session.status",))
    assert len(log) == 1 and json.loads(log[0]["payload"])["data"]["state"] == "connected"


def test_pruning_keeps_what_a_webhook_endpoint_has_not_read_and_never_reuses_a_cursor(db):
    old = time.time() - 40 * 86400
    for n in range(5):
        db.call(event_log.append, A, "session.status", {"state": f"s{n}"}, old + n)
    db.call(lambda c: c.execute("INSERT INTO webhook_endpoints (id, url, cursor, active, created_at, updated_at)"
                                " VALUES ('http://r', 'http://r', 3, 1, 0, 0)"))
    assert db.call(prune_events, time.time() - 30 * 86400) == 3  # seq 1..3 only: the endpoint read those
    assert [e["seq"] for e in db.call(event_log.after, 0)] == [4, 5]
    db.call(lambda c: c.execute("UPDATE webhook_endpoints SET cursor = 5"))
    assert asyncio.run(prune_once(db, 30 * 86400)) == 2
    fresh = db.call(event_log.append, A, "session.status", {"state": "new"}, time.time())
    assert fresh["seq"] == 6  # AUTOINCREMENT: a reader's cursor never points at a different event


def test_undecryptable_is_one_event_unless_a_readable_copy_was_stored(db):
    now = time.time()
    report = {"type": "message.undecryptable", "event_id": "undecryptable:x:WA9", "id": "WA9", "from": "+15550008801",
              "lid": None, "from_jid": PN, "timestamp": 1764000000, "attempts": 5, "error": "Bad MAC"}
    stored = db.call(inbound.store_worker_events, A, [report, report], now)
    assert stored[0]["event"] is not None and stored[1]["event"] is None
    data = json.loads(db.call(event_log.after, 0)[0]["payload"])["data"]
    assert data == {"whatsapp_id": "WA9", "phone_number": "+15550008801", "lid": None, "chat_jid": PN,
                    "timestamp": event_log.iso(1764000000), "attempts": 5, "error": "Bad MAC"}
    # A readable copy stored first (the resend decrypted): a late report of the same message is no event.
    db.call(inbound.store_worker_event, A, message(id="WA10", event_id="in:x:WA10"), now)
    late = report | {"id": "WA10", "event_id": "undecryptable:x:WA10"}
    assert db.call(inbound.store_worker_event, A, late, now)["event"] is None
    assert db.call(stats.conversation_problems, now)[A]["undecryptable_last_hour"] == 1
    assert db.call(stats.conversation_problems, now + 2 * 3600) == {}  # an hour later it is history


def test_sent_without_a_delivery_receipt_past_the_bound_is_flagged_and_a_late_receipt_clears_it(db):
    now = time.time()
    rows = [db.call(lambda c, n=n: outbox.accept(c, account=A, phone_number="+15550008803", body=f"x{n}",
                                                 idempotency_key=None, now=now, ttl=60, max_outbox=10))[0]
            for n in range(2)]
    db.call(outbox.advance, A, rows[0]["id"], "sent", now)
    db.call(outbox.advance, A, rows[1]["id"], "sent", now + 500)
    flagged = db.call(outbox.flag_undelivered, A, now + 100, now + 700)  # only the first is past the bound
    assert [r["id"] for r in flagged] == [rows[0]["id"]]
    assert flagged[0]["status"] == "sent" and flagged[0]["reason"] == "no_delivery_receipt"
    assert db.call(outbox.flag_undelivered, A, now + 100, now + 701) == []  # flagged once
    log = [json.loads(e["payload"])["data"] for e in db.call(event_log.after, 0, types=("message.status",))]
    assert [(d["status"], d["reason"]) for d in log][-1] == ("sent", "no_delivery_receipt")
    assert db.call(stats.conversation_problems, now + 700)[A]["sent_without_receipt"] == 1
    receipt = {"type": "message.status", "id": rows[0]["wa_id"], "status": "delivered", "event_id": "status:late"}
    moved = db.call(inbound.store_worker_event, A, receipt, now + 800)["message"]
    assert moved["status"] == "delivered" and moved["reason"] is None
    assert db.call(stats.conversation_problems, now + 800) == {}
