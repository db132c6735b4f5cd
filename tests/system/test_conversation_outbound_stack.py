"""Our side of a conversation through one real sandbox stack (gateway, worker with the real Baileys, the emulator's
contact), issue 25 item 1: each action, sent through the outbox, arrives at the contact's phone as WhatsApp would
show it: a reply with its quote, a reaction on the right message (and removed), a text replaced by its edit, a
message revoked, a location, contact cards, a poll, blue ticks on the contact's messages, "typing..." in the chat."""

from __future__ import annotations

import pytest

from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import Stack, wait_for

pytestmark = pytest.mark.system

SENT = ("sent", "delivered", "read")


@pytest.fixture(scope="module")
def stack():
    with Stack({}, sandbox=True) as running:
        pair(running)
        yield running


def send(stack, path: str, body: dict | None = None) -> dict:
    """POST ``path`` and wait until the gateway has sent it: the message (or action) as GET /messages/{id} shows it."""
    res = stack.post(path, body if body is not None else {})
    assert res.status in (200, 202), (path, res.status, res.raw)
    message_id = res.json()["id"]
    return wait_for(lambda: (m := stack.get(f"/messages/{message_id}").json())["status"] in SENT and m, 60,
                    f"{path} sent")


def at_contact(stack, whatsapp_id: str, check=lambda entry: True) -> dict:
    """The contact's inbox entry of our message ``whatsapp_id`` once ``check`` holds for it."""
    seen: list[dict] = []

    def found() -> dict | None:
        inbox = stack.emu("GET", f"/contacts/{CONTACT}/messages").json()
        seen[:] = [e for e in inbox
                   if e["id"] == whatsapp_id or (e.get("action") or {}).get("target_id") == whatsapp_id]
        return next((e for e in inbox if e["id"] == whatsapp_id and check(e)), None)
    try:
        return wait_for(found, 60, f"{whatsapp_id} at the contact")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the contact has {seen}") from None


def test_each_action_arrives_at_the_contact_as_whatsapp_shows_it(stack):
    first = send(stack, "/send", {"phone_number": CONTACT, "message": "the parcel left today"})
    at_contact(stack, first["whatsapp_id"])

    reply = send(stack, "/send", {"phone_number": CONTACT, "message": "tracking: 42", "reply_to": first["id"]})
    assert reply["reply_to"] == first["id"] and reply["type"] == "text"
    assert at_contact(stack, reply["whatsapp_id"])["quoted_id"] == first["whatsapp_id"]

    reaction = send(stack, f"/messages/{first['id']}/reaction", {"emoji": "📦"})
    assert (reaction["type"], reaction["target_id"], reaction["content"]) == ("reaction", first["id"], {"emoji": "📦"})
    at_contact(stack, first["whatsapp_id"], lambda e: list(e["reactions"].values()) == ["📦"])
    send(stack, f"/messages/{first['id']}/reaction", {"emoji": ""})
    at_contact(stack, first["whatsapp_id"], lambda e: not any(e["reactions"].values()))

    edit = send(stack, f"/messages/{first['id']}/edit", {"message": "the parcel left yesterday"})
    assert edit["type"] == "edit" and edit["message"] == "the parcel left yesterday"
    edited = at_contact(stack, first["whatsapp_id"], lambda e: e["text"] == "the parcel left yesterday")
    assert edited["edits"][-1] == "the parcel left yesterday"
    shown = stack.get(f"/messages/{first['id']}").json()
    assert shown["edits"] == ["the parcel left today", "the parcel left yesterday"]
    assert shown["message"] == "the parcel left yesterday" and shown["reactions"] == {}

    send(stack, f"/messages/{reply['id']}/revoke")
    at_contact(stack, reply["whatsapp_id"], lambda e: e["revoked"])
    assert stack.get(f"/messages/{reply['id']}").json()["revoked"] is True


def test_locations_contact_cards_and_polls_arrive_whole(stack):
    place = send(stack, "/send", {"phone_number": CONTACT, "location": {
        "latitude": 52.52, "longitude": 13.405, "name": "Depot", "address": "Alexanderplatz 1"}})
    assert place["type"] == "location" and place["content"]["location"]["name"] == "Depot"
    entry = at_contact(stack, place["whatsapp_id"])
    assert (entry["location"]["latitude"], entry["location"]["longitude"]) == (52.52, 13.405)
    assert (entry["location"]["name"], entry["location"]["address"]) == ("Depot", "Alexanderplatz 1")

    cards = send(stack, "/send", {"phone_number": CONTACT, "contacts": [
        {"name": "Ana Support", "phone_number": "+15550003333"}, {"name": "Bo Sales", "phone_number": "+15550004444"}]})
    entry = at_contact(stack, cards["whatsapp_id"])
    assert [c["name"] for c in entry["contacts"]] == ["Ana Support", "Bo Sales"]
    assert "waid=15550003333" in entry["vcards"][0].replace("WAID", "waid")

    poll = send(stack, "/send", {"phone_number": CONTACT, "poll": {
        "question": "Which slot?", "options": ["morning", "evening"], "multiple": False}})
    entry = at_contact(stack, poll["whatsapp_id"])
    assert entry["poll"]["question"] == "Which slot?" and entry["poll"]["options"] == ["morning", "evening"]
    assert "secret" not in str(poll["content"])  # the poll's key never leaves the gateway


def test_reading_a_contacts_messages_turns_their_ticks_blue_and_presence_shows(stack):
    ids = [stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": f"hello {n}"}).json()["id"]
           for n in range(3)]
    inbound = wait_for(lambda: (page := [m for m in stack.get("/messages?direction=in&limit=50").json()["messages"]
                                         if m["whatsapp_id"] in ids]) and len(page) == 3 and page, 60, "three inbound")
    newest = next(m for m in inbound if m["whatsapp_id"] == ids[-1])
    read = send(stack, f"/messages/{newest['id']}/read")
    assert read["type"] == "read" and set(ids) <= set(read["content"]["ids"])

    def receipts() -> set[str]:
        got = stack.emu("GET", f"/contacts/{CONTACT}/receipts-received").json()
        return {r["id"] for r in got if r["type"] == "read"}
    wait_for(lambda: set(ids) <= receipts(), 60, "read receipts for all three")

    typing = send(stack, f"/chats/{CONTACT}/presence", {"state": "composing"})
    assert typing["type"] == "presence" and typing["content"] == {"state": "composing"}
    wait_for(lambda: any(p["state"] == "composing" for p in stack.emu("GET", f"/contacts/{CONTACT}/presence").json()),
             60, "composing at the contact")
