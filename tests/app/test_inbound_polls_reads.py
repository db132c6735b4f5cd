"""A contact's poll vote and the account's phone reading a chat, in the store (issue 25, item 2), against a real SQLite
file: each one event naming the poll or the messages by WhatsApp's ids and by ours when we know them, stored once
however often the worker hands it over (its ``event_id`` is stable: a worker killed before the gateway's ack hands
the same event over again)."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import TypeAdapter

from service.http.models import EventPage
from service.states import DEFAULT_ACCOUNT
from service.store import event_log, inbound, outbox
from service.store.db import Database

A = DEFAULT_ACCOUNT
PHONE = "+15550008831"
PN = "15550008831@s.whatsapp.net"
LID = "90000000008831@lid"


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "gateway.db").open()
    yield database
    database.close()


def store(db, event) -> dict | None:
    stored = db.call(inbound.store_worker_event, A, event, time.time())["event"]
    return json.loads(stored["payload"]) if stored is not None else None


def vote(wa_id: str, poll: str, options, **over):
    base = {"type": "poll.vote", "event_id": f"poll.vote:{PN}:{wa_id}", "id": wa_id, "from": PHONE, "lid": LID,
            "from_jid": PN, "timestamp": 1764000100, "poll_id": poll, "options": options}
    return base | over


def test_a_vote_names_our_poll_by_our_id_and_whatsapps_and_a_repeat_is_stored_once(db):
    now = time.time()
    poll, _ = db.call(lambda c: outbox.accept(c, account=A, phone_number=PHONE, body="Tea or coffee?",
                                              idempotency_key=None, now=now, ttl=60, max_outbox=10))
    first = vote("WA-V1", poll["wa_id"], ["tea"])
    body = store(db, first)
    assert body["type"] == "poll.vote"
    assert body["data"] == {"poll_id": poll["id"], "whatsapp_id": poll["wa_id"], "vote_whatsapp_id": "WA-V1",
                            "phone_number": PHONE, "lid": LID, "chat_jid": PN, "options": ["tea"],
                            "timestamp": "2025-11-24T16:01:40.000Z"}
    assert store(db, first) is None  # the worker handed it over again (after a crash before the ack)
    withdrawn = store(db, vote("WA-V2", poll["wa_id"], []))["data"]
    assert (withdrawn["options"], "error" in withdrawn) == ([], False)
    log = db.call(event_log.after, 0)
    assert [e["type"] for e in log] == ["poll.vote", "poll.vote"]
    TypeAdapter(EventPage).validate_python({"events": [event_log.public(e) for e in log], "next_after": 0})


def test_a_vote_that_could_not_be_read_is_still_an_event_with_why(db):
    unknown = store(db, vote("WA-V3", "WA-NOPOLL", None, error="poll_unknown"))["data"]
    assert (unknown["poll_id"], unknown["whatsapp_id"], unknown["options"], unknown["error"]) == (
        None, "WA-NOPOLL", None, "poll_unknown")
    odd = store(db, vote("WA-V4", "WA-NOPOLL", "tea", error="weird"))["data"]  # malformed: not a list, no known error
    assert (odd["options"], odd["error"]) == (None, "undecryptable")
    assert store(db, vote("WA-V5", "WA-P", ["x"], from_jid=None)) is None  # no chat: unusable
    TypeAdapter(EventPage).validate_python(
        {"events": [event_log.public(e) for e in db.call(event_log.after, 0)], "next_after": 0})


def test_a_chat_read_on_the_phone_names_the_messages_by_ours_and_whatsapps_once(db):
    ids = []
    for n in (1, 2):
        message = {"type": "message", "event_id": f"in:{PN}:WA-M{n}", "id": f"WA-M{n}", "from": PHONE, "lid": LID,
                   "from_jid": PN, "push_name": "Ana", "timestamp": 1764000000, "kind": "text", "text": f"m{n}",
                   "quoted_id": None, "offline": False}
        ids.append(store(db, message)["data"]["id"])
    read = {"type": "chat.read", "event_id": f"chat.read:{PN}:WA-M1", "from": PHONE, "lid": LID, "from_jid": PN,
            "ids": ["WA-M1", "WA-M2", "WA-GONE"], "timestamp": 1764000300}
    body = store(db, read)
    assert (body["type"], body["data"]) == ("chat.read", {
        "phone_number": PHONE, "lid": LID, "chat_jid": PN, "message_ids": ids,
        "whatsapp_ids": ["WA-M1", "WA-M2", "WA-GONE"], "timestamp": "2025-11-24T16:05:00.000Z"})
    assert store(db, read) is None  # handed over again
    assert store(db, read | {"event_id": "chat.read:x", "ids": []}) is None  # nothing read: no event
    log = db.call(event_log.after, 0)
    assert [e["type"] for e in log] == ["message.received", "message.received", "chat.read"]
    TypeAdapter(EventPage).validate_python({"events": [event_log.public(e) for e in log], "next_after": 0})
