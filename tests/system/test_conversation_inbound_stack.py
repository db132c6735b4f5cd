"""A contact's conversation through one real sandbox stack (gateway, worker with the real Baileys, the emulator's
contact), issue 25 item 2: the contact replies (to its own message and to ours), reacts, edits, revokes, shares a
location, sends a message type the gateway does not know and votes on our poll, and the account's own phone reads the
chat; each reaches the signed webhook as its own event type with the right ids (WhatsApp's, and ours for the message
it concerns) and the contact's identity, and the stored message shows the edit's history and the revoke."""

from __future__ import annotations

import pytest

from service.webhooks import secret as webhook_secret
from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import Stack, wait_for
from tests.helpers.webhook_receiver import Receiver

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def receiver():
    """A webhook receiver that verifies every delivery as the standardwebhooks package does."""
    running = Receiver(webhook_secret.generate()).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stack(receiver):
    with Stack({"WA_WEBHOOK_URL": receiver.url, "WA_WEBHOOK_SECRET": receiver.secret}, sandbox=True) as running:
        pair(running)
        yield running


def contact(stack, **body) -> str:
    """The contact does ``body`` (the emulator's POST /contacts/{phone}/messages); returns its WhatsApp id."""
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, **body})
    assert res.status == 200, res.raw
    return str(res.json()["id"])


def webhook(receiver, type_: str, whatsapp_id: str) -> dict:
    """The signed delivery of the event of ``type_`` about the contact's WhatsApp message ``whatsapp_id``."""
    def found() -> dict | None:
        return next((r.event for r in receiver.delivered() if r.event is not None and r.event["type"] == type_
                     and r.event["data"]["whatsapp_id"] == whatsapp_id), None)
    event = wait_for(found, 60, f"the {type_} webhook of {whatsapp_id}")
    assert event["data"]["phone_number"] == CONTACT, event
    return event


def test_a_conversation_reaches_the_webhook_event_by_event(stack, receiver):
    first_wa = contact(stack, text="see you at 5")
    first = webhook(receiver, "message.received", first_wa)["data"]
    assert (first["type"], first["quoted_id"], first["quoted"]) == ("text", None, None)
    lid = first["lid"]
    sent = stack.post("/send", {"phone_number": CONTACT, "message": "which day?"})
    assert sent.status in (200, 202), sent.raw
    ours = wait_for(lambda: (m := stack.get(f"/messages/{sent.json()['id']}").json())["status"] in
                    ("sent", "delivered", "read") and m, 60, "our message sent")

    reply = webhook(receiver, "message.received", contact(stack, text="tuesday", reply_to=ours["whatsapp_id"]))["data"]
    assert (reply["quoted_id"], reply["quoted"]) == (ours["whatsapp_id"], {"id": ours["id"], "direction": "out"})
    again = webhook(receiver, "message.received", contact(stack, text="as I said", reply_to=first_wa))["data"]
    assert again["quoted"] == {"id": first["id"], "direction": "in"}

    reactions = ((ours["whatsapp_id"], ours["id"], "out", "👍"), (first_wa, first["id"], "in", "❤️"),
                 (first_wa, first["id"], "in", ""))
    for target_wa, target_id, direction, emoji in reactions:
        wa = contact(stack, reaction={"id": target_wa, "emoji": emoji})
        data = webhook(receiver, "message.reaction", wa)["data"]
        assert (data["message_whatsapp_id"], data["message_id"], data["direction"], data["emoji"], data["lid"]) == (
            target_wa, target_id, direction, emoji, lid)

    edit = webhook(receiver, "message.edited", contact(stack, edit={"id": first_wa, "text": "see you at 6"}))["data"]
    assert (edit["message_whatsapp_id"], edit["message_id"], edit["text"]) == (first_wa, first["id"], "see you at 6")
    shown = stack.get(f"/messages/{first['id']}").json()
    assert shown["text"] == "see you at 6"
    assert [v["text"] for v in shown["edits"]] == ["see you at 5", "see you at 6"]
    revoke = webhook(receiver, "message.revoked", contact(stack, revoke={"id": first_wa}))["data"]
    assert (revoke["message_whatsapp_id"], revoke["message_id"], revoke["lid"]) == (first_wa, first["id"], lid)
    assert stack.get(f"/messages/{first['id']}").json()["revoked_at"] is not None

    where = webhook(receiver, "message.received", contact(stack, location={
        "latitude": 38.7223, "longitude": -9.1393, "name": "Rossio", "address": "Lisboa"}))["data"]
    assert where["type"] == "location"
    assert where["location"] == {"latitude": 38.7223, "longitude": -9.1393, "name": "Rossio", "address": "Lisboa"}
    odd = webhook(receiver, "message.received",
                  contact(stack, raw={"interactiveMessage": {"body": {"text": "pick one"}}}))["data"]
    assert (odd["type"], odd["raw_type"]) == ("unsupported", "interactiveMessage")

    # each once in the log, none dropped, none a message of its own
    log = stack.events()
    assert sum(e["type"] == "message.reaction" for e in log) == 3
    assert sum(e["type"] == "message.edited" for e in log) == 1
    assert sum(e["type"] == "message.revoked" for e in log) == 1
    assert sum(e["type"] == "message.received" for e in log) == 5


def test_a_contact_typing_reaches_the_webhook_as_presence(stack, receiver):
    res = stack.emu("POST", f"/contacts/{CONTACT}/presence", {"to": PHONE, "state": "composing"})
    assert res.status == 200, res.raw

    def typing() -> dict | None:
        return next((r.event for r in receiver.delivered() if r.event is not None and r.event["type"] == "presence"
                     and r.event["data"]["state"] == "composing"), None)
    data = wait_for(typing, 60, "the presence webhook")["data"]
    assert (data["phone_number"], data["chat_jid"]) == (CONTACT, CONTACT.lstrip("+") + "@s.whatsapp.net")


def test_a_vote_on_our_poll_reaches_the_webhook_with_the_options_and_our_poll_id(stack, receiver):
    question = {"question": "Lunch?", "options": ["pizza", "sushi", "salad"], "multiple": True}
    sent = stack.post("/send", {"phone_number": CONTACT, "poll": question})
    assert sent.status in (200, 202), sent.raw
    poll = wait_for(lambda: (m := stack.get(f"/messages/{sent.json()['id']}").json())["status"] in
                    ("sent", "delivered", "read") and m, 60, "our poll sent")
    vote_wa = contact(stack, poll_vote={"id": poll["whatsapp_id"], "options": ["salad", "pizza"]})

    def voted() -> dict | None:
        return next((r.event for r in receiver.delivered() if r.event is not None and r.event["type"] == "poll.vote"
                     and r.event["data"]["vote_whatsapp_id"] == vote_wa), None)
    data = wait_for(voted, 60, "the poll.vote webhook")["data"]
    assert (data["poll_id"], data["whatsapp_id"], data["options"], data["phone_number"]) == (
        poll["id"], poll["whatsapp_id"], ["pizza", "salad"], CONTACT)
    assert data["lid"] and "error" not in data, data
    assert sum(e["type"] == "poll.vote" for e in stack.events()) == 1


def test_the_accounts_phone_reading_the_chat_reaches_the_webhook_as_chat_read(stack, receiver):
    wa = contact(stack, text="did you see this?")
    ours = webhook(receiver, "message.received", wa)["data"]
    res = stack.emu("POST", "/phone/read", {"chat": CONTACT, "ids": [wa]})
    assert res.status == 200, res.raw

    def read() -> dict | None:
        return next((r.event for r in receiver.delivered() if r.event is not None and r.event["type"] == "chat.read"
                     and wa in r.event["data"]["whatsapp_ids"]), None)
    data = wait_for(read, 60, "the chat.read webhook")["data"]
    assert (data["message_ids"], data["whatsapp_ids"], data["phone_number"], data["lid"]) == (
        [ours["id"]], [wa], CONTACT, ours["lid"])
