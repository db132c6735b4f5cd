"""A contact's reactions, edits and revokes in the store (issue 25, item 2), against a real SQLite file: each one
event of its own type naming the message by its WhatsApp id and by ours when we know it, stored once however often
the worker hands it over; an edit keeps every version of the contact's message, a revoke marks it, and neither
touches a message that is not the contact's own."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import TypeAdapter

from service.http.models import EventPage, InboundMessageOut
from service.states import DEFAULT_ACCOUNT
from service.store import event_log, inbound, outbox
from service.store.db import Database

A = DEFAULT_ACCOUNT
PHONE = "+15550008821"
PN = "15550008821@s.whatsapp.net"
LID = "90000000008821@lid"


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "gateway.db").open()
    yield database
    database.close()


def text(wa_id: str, body: str = "hi", **over):
    base = {"type": "message", "event_id": f"in:{PN}:{wa_id}", "id": wa_id, "from": PHONE, "lid": LID,
            "from_jid": PN, "push_name": "Ana", "timestamp": 1764000000, "kind": "text", "text": body,
            "quoted_id": None, "offline": False}
    return base | over


def action(type_: str, wa_id: str, target: str, direction: str = "in", **over):
    base = {"type": type_, "event_id": f"{type_}:{PN}:{wa_id}", "id": wa_id, "from": PHONE, "lid": LID,
            "from_jid": PN, "timestamp": 1764000100, "target_id": target, "target_direction": direction}
    return base | over


def store(db, event) -> dict | None:
    stored = db.call(inbound.store_worker_event, A, event, time.time())["event"]
    return json.loads(stored["payload"]) if stored is not None else None


def message(db, message_id: str) -> dict:
    shown = inbound.public_message(db.call(inbound.get, A, message_id))
    InboundMessageOut.model_validate(shown)
    return shown


def test_a_reaction_names_the_message_by_ours_and_whatsapps_and_a_repeat_is_stored_once(db):
    theirs = store(db, text("WA-T1"))["data"]
    on = action("message.reaction", "WA-X1", "WA-T1", emoji="👍")
    body = store(db, on)
    assert body["type"] == "message.reaction"
    assert body["data"] == {"whatsapp_id": "WA-X1", "message_id": theirs["id"], "message_whatsapp_id": "WA-T1",
                            "direction": "in", "phone_number": PHONE, "lid": LID, "chat_jid": PN,
                            "timestamp": "2025-11-24T16:01:40.000Z", "emoji": "👍"}
    assert store(db, on) is None  # the worker handed it over again
    now = time.time()
    ours, _ = db.call(lambda c: outbox.accept(c, account=A, phone_number=PHONE, body="our question",
                                              idempotency_key=None, now=now, ttl=60, max_outbox=10))
    on_ours = store(db, action("message.reaction", "WA-X2", ours["wa_id"], "out", emoji="❤️"))["data"]
    assert (on_ours["message_id"], on_ours["direction"]) == (ours["id"], "out")
    off = store(db, action("message.reaction", "WA-X3", "WA-T1", emoji=""))["data"]
    assert off["emoji"] == ""
    unknown = store(db, action("message.reaction", "WA-X4", "WA-NEVER", emoji="😮"))["data"]
    assert (unknown["message_id"], unknown["message_whatsapp_id"]) == (None, "WA-NEVER")
    log = db.call(event_log.after, 0)
    assert [e["type"] for e in log] == ["message.received"] + ["message.reaction"] * 4
    TypeAdapter(EventPage).validate_python({"events": [event_log.public(e) for e in log], "next_after": 0})


def test_an_edit_keeps_every_version_once_and_a_revoke_marks_the_message(db):
    theirs = store(db, text("WA-T2", "see you at 5"))["data"]
    first = action("message.edited", "WA-E1", "WA-T2", text="see you at 6", timestamp=1764000200)
    body = store(db, first)
    assert (body["type"], body["data"]["message_id"], body["data"]["text"]) == ("message.edited", theirs["id"],
                                                                                "see you at 6")
    assert store(db, first) is None  # a repeat: not a second version
    store(db, action("message.edited", "WA-E2", "WA-T2", text="see you at 7", timestamp=1764000300))
    shown = message(db, theirs["id"])
    assert shown["text"] == "see you at 7"
    assert shown["edits"] == [{"text": "see you at 5", "timestamp": "2025-11-24T16:00:00.000Z"},
                              {"text": "see you at 6", "timestamp": "2025-11-24T16:03:20.000Z"},
                              {"text": "see you at 7", "timestamp": "2025-11-24T16:05:00.000Z"}]
    assert "revoked_at" not in shown
    revoked = store(db, action("message.revoked", "WA-R1", "WA-T2"))
    assert (revoked["type"], revoked["data"]["message_id"]) == ("message.revoked", theirs["id"])
    assert message(db, theirs["id"])["revoked_at"] is not None
    types = [e["type"] for e in db.call(event_log.after, 0)]
    assert types == ["message.received", "message.edited", "message.edited", "message.revoked"]


def test_another_contacts_message_is_neither_edited_nor_revoked(db):
    other = store(db, text("WA-O1", "mine", event_id="in:o:WA-O1", **{"from": "+15550008899"}, lid=None,
                           from_jid="15550008899@s.whatsapp.net"))["data"]
    edit = store(db, action("message.edited", "WA-E3", "WA-O1", text="hijacked"))["data"]
    assert edit["message_id"] is None
    store(db, action("message.revoked", "WA-R2", "WA-O1"))
    shown = message(db, other["id"])
    assert shown["text"] == "mine" and "edits" not in shown and "revoked_at" not in shown
    # one we sent: said (by our id), but a contact cannot change it
    now = time.time()
    ours, _ = db.call(lambda c: outbox.accept(c, account=A, phone_number=PHONE, body="ours", idempotency_key=None,
                                              now=now, ttl=60, max_outbox=10))
    on_ours = store(db, action("message.edited", "WA-E4", ours["wa_id"], "out", text="hijacked"))["data"]
    assert (on_ours["message_id"], on_ours["direction"]) == (ours["id"], "out")
    assert db.call(outbox.get, A, ours["id"])["body"] == "ours"


def test_unusable_actions_change_nothing(db):
    for bad in (action("message.edited", "", "WA-T"), action("message.revoked", "WA-R", "WA-T", from_jid=None)):
        assert store(db, bad) is None
    assert db.call(event_log.after, 0) == []
    odd = store(db, action("message.reaction", "WA-X9", "WA-T", emoji=None))  # no emoji: a removal, as WhatsApp's
    assert odd is not None and odd["data"]["emoji"] == ""


def test_presence_is_one_event_per_update_with_the_contacts_identity(db):
    typing = {"type": "presence", "event_id": "p-1", "from": PHONE, "lid": LID, "from_jid": PN, "state": "composing",
              "last_seen": None}
    body = store(db, typing)
    assert (body["type"], body["data"]) == ("presence", {"phone_number": PHONE, "lid": LID, "chat_jid": PN,
                                                          "state": "composing", "last_seen": None})
    assert store(db, typing) is None  # handed over again
    assert store(db, typing | {"event_id": "p-2", "state": "typing-ish"}) is None  # not a state WhatsApp has
    away = store(db, typing | {"event_id": "p-3", "state": "unavailable", "last_seen": 1764000000})["data"]
    assert (away["state"], away["last_seen"]) == ("unavailable", "2025-11-24T16:00:00.000Z")
    log = db.call(event_log.after, 0)
    assert [e["type"] for e in log] == ["presence", "presence"]
    TypeAdapter(EventPage).validate_python({"events": [event_log.public(e) for e in log], "next_after": 0})
