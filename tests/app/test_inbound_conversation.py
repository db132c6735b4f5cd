"""A contact's conversation in the store (issue 25, item 2), against a real SQLite file: a reply keeps the WhatsApp id
it quotes and, when the quoted message is one we know (the contact's, also from its LID chat, or one we sent), our
id and its direction; a location, contact cards and a poll keep their fields in one shape whatever the sender put
there; an unknown kind is stored and shown as ``unsupported`` with its raw type name."""

from __future__ import annotations

import json
import time

import pytest

from service.http.models import InboundMessageOut
from service.states import DEFAULT_ACCOUNT
from service.store import event_log, inbound, outbox
from service.store.db import Database

A = DEFAULT_ACCOUNT
PHONE = "+15550008811"
PN = "15550008811@s.whatsapp.net"
LID = "90000000008811@lid"


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "gateway.db").open()
    yield database
    database.close()


def message(wa_id: str, **over):
    base = {"type": "message", "event_id": f"in:{PN}:{wa_id}", "id": wa_id, "from": PHONE, "lid": None,
            "from_jid": PN, "push_name": "Ana", "timestamp": 1764000000, "kind": "text", "text": "hi",
            "quoted_id": None, "offline": False}
    return base | over


def received(db, event) -> dict:
    """The stored event's data (the webhook body's), checked against the documented model, and GET's the same."""
    stored = db.call(inbound.store_worker_event, A, event, time.time())["event"]
    assert stored is not None
    data = json.loads(stored["payload"])["data"]
    InboundMessageOut.model_validate(data)
    assert inbound.public_message(db.call(inbound.get, A, data["id"])) == data
    return data


def test_a_reply_maps_the_quoted_message_to_ours_when_we_know_it(db):
    first = received(db, message("WA-FIRST"))
    assert (first["quoted_id"], first["quoted"]) == (None, None)
    to_theirs = received(db, message("WA-R1", quoted_id="WA-FIRST"))
    assert to_theirs["quoted_id"] == "WA-FIRST"
    assert to_theirs["quoted"] == {"id": first["id"], "direction": "in"}
    # written from the contact's LID chat, quoting what it sent from its phone number's: the same contact
    by_lid = received(db, message("WA-R2", event_id="in:lid:WA-R2", from_jid=LID, lid=LID, quoted_id="WA-FIRST"))
    assert by_lid["quoted"] == {"id": first["id"], "direction": "in"}
    now = time.time()
    ours, _ = db.call(lambda c: outbox.accept(c, account=A, phone_number=PHONE, body="our question",
                                              idempotency_key=None, now=now, ttl=60, max_outbox=10))
    to_ours = received(db, message("WA-R3", quoted_id=ours["wa_id"]))
    assert to_ours["quoted"] == {"id": ours["id"], "direction": "out"}
    unknown = received(db, message("WA-R4", quoted_id="WA-NEVER-SEEN"))
    assert (unknown["quoted_id"], unknown["quoted"]) == ("WA-NEVER-SEEN", None)


def test_another_contacts_message_is_not_the_one_a_reply_quotes(db):
    received(db, message("WA-OTHER", event_id="in:o:WA-OTHER", **{"from": "+15550008899"},
                         from_jid="15550008899@s.whatsapp.net"))
    reply = received(db, message("WA-R5", quoted_id="WA-OTHER"))
    assert reply["quoted"] is None


def test_location_contacts_and_poll_keep_their_fields(db):
    where = received(db, message("WA-L", kind="location", text=None, location={
        "latitude": 38.7223, "longitude": -9.1393, "name": "Rossio", "address": "Lisboa"}))
    assert (where["type"], where["kind"]) == ("location", "location")
    assert where["location"] == {"latitude": 38.7223, "longitude": -9.1393, "name": "Rossio", "address": "Lisboa"}
    assert "contacts" not in where and "poll" not in where and "raw_type" not in where
    vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Bea\nTEL;type=CELL;waid=15550007599:+15550007599\nEND:VCARD"
    cards = received(db, message("WA-C", kind="contacts", text=None,
                                 contacts=[{"name": "Bea", "vcard": vcard}, {"name": "Caio", "vcard": None}]))
    assert cards["contacts"] == [{"name": "Bea", "vcard": vcard}, {"name": "Caio", "vcard": None}]
    poll = received(db, message("WA-P", kind="poll", text=None,
                                poll={"question": "Tea?", "options": ["yes", "no"], "multiple": False}))
    assert poll["poll"] == {"question": "Tea?", "options": ["yes", "no"], "multiple": False}


def test_what_a_sender_malformed_is_cut_to_one_shape(db):
    where = received(db, message("WA-L2", kind="location", location={"latitude": "north", "longitude": True,
                                                                      "name": "x" * 10000, "address": 5}))
    assert where["location"] == {"latitude": None, "longitude": None, "name": "x" * 4096, "address": None}
    poll = received(db, message("WA-P2", kind="poll", poll={"question": "?", "options": ["a", 7, "", "b"] * 40,
                                                           "multiple": "yes"}))
    assert poll["poll"]["options"][:3] == ["a", "b", "a"] and len(poll["poll"]["options"]) == 32
    assert poll["poll"]["multiple"] is False
    cards = received(db, message("WA-C2", kind="contacts", contacts=["not a card", {"name": 3}]))
    assert cards["contacts"] == [{"name": None, "vcard": None}]


def test_an_unknown_kind_is_stored_and_delivered_as_unsupported_with_its_raw_type(db):
    data = received(db, message("WA-U", kind="unsupported", text=None, raw_type="interactiveMessage"))
    assert (data["type"], data["raw_type"], data["text"]) == ("unsupported", "interactiveMessage", None)
    assert [e["type"] for e in db.call(event_log.after, 0)] == ["message.received"]
    assert db.call(inbound.list_messages, A)[0]["kind"] == "unsupported"
