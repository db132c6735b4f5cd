"""The Python client's and the CLI's conversation (issue 25) against one real sandbox stack (gateway, worker with the
real Baileys, the emulator's contact): what they do arrives at the contact as WhatsApp shows it (the quote, the
reaction on the right message, the text replaced, the message revoked, the read receipt, the typing, the location,
the cards, the poll), their answers are typed (``Message.type``, ``target_id``, ``content``), refusals are the typed
errors, and what the contact does comes back as typed events (``Event.action``, ``.presence``, ``.poll_vote``)."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

import wa_gateway_client as wgc
from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import BIN, REPO, Stack, wait_for
from wa_gateway_client import errors

pytestmark = pytest.mark.system

VCARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Rui Costa\r\nTEL;type=CELL;waid=15550009877:+15550009877\r\nEND:VCARD"
NO_SUCH = "01NOSUCHMESSAGE0000000000"


@pytest.fixture(scope="module")
def stack():
    with Stack({}, sandbox=True) as running:
        pair(running)
        yield running


def client(stack: Stack) -> wgc.AsyncClient:
    return wgc.AsyncClient(stack.base, api_key=stack.api_key)


def contact(stack, **body) -> str:
    """The contact does ``body`` (the emulator's POST /contacts/{phone}/messages); its WhatsApp id."""
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, **body})
    assert res.status == 200, res.raw
    return str(res.json()["id"])


def received(stack, whatsapp_id: str) -> str:
    """Our id of the contact's message ``whatsapp_id``, once the gateway stored it."""
    def found():
        return next((m["id"] for m in stack.get("/messages?direction=in&limit=100").json()["messages"]
                     if m["whatsapp_id"] == whatsapp_id), None)
    return wait_for(found, 30, f"the contact's message {whatsapp_id} at the gateway")


def at_contact(stack, whatsapp_id: str, check=lambda entry: True, box: str = "messages") -> dict:
    """The contact's entry of a message (``messages``: one it received, ``sent``: its own) once ``check`` holds."""
    def found():
        entry = next((m for m in stack.emu("GET", f"/contacts/{CONTACT}/{box}").json() if m["id"] == whatsapp_id),
                     None)
        return entry if entry is not None and check(entry) else None
    return wait_for(found, 30, f"{whatsapp_id} at the contact ({box})")


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "wa-gateway"), *args], env=stack.env, cwd=REPO, capture_output=True,
                          text=True, timeout=90)


async def test_the_client_replies_reacts_edits_revokes_reads_and_types(stack):
    theirs_wa = contact(stack, text="lunch at 1?")
    theirs = received(stack, theirs_wa)
    async with client(stack) as wa:
        reply = await wa.send(CONTACT, "yes", reply_to=theirs, wait=30)
        assert (reply.type, reply.reply_to, reply.status) == ("text", theirs, "sent")
        assert at_contact(stack, reply.whatsapp_id)["quoted_id"] == theirs_wa
        reaction = await wa.react(theirs, "👍", wait=30, idempotency_key="react-1")
        assert (reaction.type, reaction.target_id, reaction.content) == ("reaction", theirs, {"emoji": "👍"})
        assert at_contact(stack, theirs_wa, lambda e: e["reactions"] == {PHONE: "👍"}, box="sent")
        again = await wa.react(theirs, "👍", idempotency_key="react-1")
        assert again.replayed and again.id == reaction.id  # a retry is the same reaction, not a second one
        await wa.react(theirs, "", wait=30)
        assert at_contact(stack, theirs_wa, lambda e: not e["reactions"], box="sent")

        edit = await wa.account("default").edit(reply.id, "yes, at 1", wait=30)
        assert (edit.type, edit.target_id, edit.content) == ("edit", reply.id, {"message": "yes, at 1"})
        shown = at_contact(stack, reply.whatsapp_id, lambda e: len(e["edits"]) == 2)
        assert (shown["edits"], shown["text"]) == (["yes", "yes, at 1"], "yes, at 1")
        mine = await wa.message(reply.id)
        assert isinstance(mine, wgc.models.Message) and mine.edits == ["yes", "yes, at 1"]
        revoke = await wa.revoke(reply.id, wait=30)
        assert (revoke.type, revoke.target_id) == ("revoke", reply.id)
        assert at_contact(stack, reply.whatsapp_id, lambda e: e["revoked"])
        assert (await wa.message(reply.id)).revoked is True

        read = await wa.read(theirs, wait=30)
        assert (read.type, read.target_id) == ("read", theirs) and read.content and read.content["ids"]
        wait_for(lambda: any(r["id"] == theirs_wa and r["type"] == "read" for r in
                             stack.emu("GET", f"/contacts/{CONTACT}/receipts-received").json()), 30, "the read receipt")
        typing = await wa.presence(CONTACT, "composing", wait=30)
        assert (typing.type, typing.content) == ("presence", {"state": "composing"})
        wait_for(lambda: any(p["state"] == "composing" for p in
                             stack.emu("GET", f"/contacts/{CONTACT}/presence").json()), 30, "the typing at the contact")

        for call, error in ((wa.react(NO_SUCH, "👍"), errors.MessageNotFound),
                            (wa.react(theirs, "yes"), errors.InvalidEmoji),
                            (wa.edit(theirs, "not mine"), errors.NotOwnMessage),
                            (wa.edit(reply.id, "again"), errors.MessageRevoked),
                            (wa.read(reply.id), errors.NotInbound),
                            (wa.presence(CONTACT, "dancing"), errors.InvalidState)):
            with pytest.raises(error):
                await call
    with wgc.Client(stack.base, api_key=stack.api_key) as blocking:  # the blocking twin has them too
        assert blocking.react(theirs, "🎉", wait=30).type == "reaction"
    assert at_contact(stack, theirs_wa, lambda e: e["reactions"] == {PHONE: "🎉"}, box="sent")


async def test_the_client_sends_a_location_cards_and_a_poll_and_reads_the_vote(stack):
    async with client(stack) as wa:
        place = await wa.send_location(CONTACT, 38.7223, -9.1393, name="Rossio", address="Lisboa", wait=30)
        assert place.type == "location"
        assert at_contact(stack, place.whatsapp_id)["location"] == {
            "latitude": 38.7223, "longitude": -9.1393, "name": "Rossio", "address": "Lisboa"}
        cards = await wa.send_contacts(CONTACT, [("Ana", "+15550009876"),
                                                 {"name": "Bo", "phone_number": "+15550009875"}])
        entry = at_contact(stack, cards.whatsapp_id)
        assert [c["name"] for c in entry["contacts"]] == ["Ana", "Bo"]
        assert "waid=15550009876" in entry["vcards"][0].lower()
        given = await wa.send_contacts(CONTACT, vcards=[VCARD])
        assert at_contact(stack, given.whatsapp_id)["contacts"][0]["name"] == "Rui Costa"
        poll = await wa.send_poll(CONTACT, "Lunch?", ["Pizza", "Sushi", "Ramen"], multiple=True, wait=30)
        assert poll.type == "poll"
        assert at_contact(stack, poll.whatsapp_id)["poll"]["options"] == ["Pizza", "Sushi", "Ramen"]
        contact(stack, poll_vote={"id": poll.whatsapp_id, "options": ["Sushi", "Ramen"]})

        async def vote():
            page = await wa.events(types=["poll.vote"])
            return next((e.poll_vote for e in page.events if e.poll_vote and e.poll_vote.poll_id == poll.id), None)
        found = None
        for _ in range(300):
            if (found := await vote()) is not None:
                break
            await asyncio.sleep(0.1)
        assert found is not None and sorted(found.options or []) == ["Ramen", "Sushi"] and found.phone_number == CONTACT

        with pytest.raises(errors.InvalidPoll):
            await wa.send_poll(CONTACT, "Only one?", ["yes"])
        with pytest.raises(errors.InvalidLocation):
            await wa.send_location(CONTACT, 91, 0)
        with pytest.raises(ValueError):
            await wa.send_contacts(CONTACT)


def test_a_contacts_conversation_comes_back_as_typed_events_and_messages(stack):
    theirs_wa = contact(stack, text="see you at 5")
    theirs = received(stack, theirs_wa)
    reply = received(stack, contact(stack, text="or 6", reply_to=theirs_wa))
    read = stack.emu("POST", "/phone/read", {"chat": CONTACT, "ids": [theirs_wa]})  # the account's own phone reads it
    assert read.status == 200, read.raw
    contact(stack, reaction={"id": theirs_wa, "emoji": "❤️"})
    contact(stack, edit={"id": theirs_wa, "text": "see you at 6"})
    contact(stack, revoke={"id": theirs_wa})
    stack.emu("POST", f"/contacts/{CONTACT}/presence", {"to": PHONE, "state": "recording"})
    with wgc.Client(stack.base, api_key=stack.api_key) as wa:
        def typed():
            kinds = ["message.reaction", "message.edited", "message.revoked", "presence", "chat.read"]
            events = wa.events(types=kinds).events
            return events if {e.type for e in events} >= set(kinds) else None
        events = wait_for(typed, 30, "the contact's reaction, edit, revoke and presence, our phone's read, as events")
        by_type = {e.type: e for e in events}
        reaction = by_type["message.reaction"].action
        assert reaction and (reaction.message_id, reaction.emoji, reaction.phone_number) == (theirs, "❤️", CONTACT)
        edited = by_type["message.edited"].action
        assert edited and (edited.message_id, edited.text) == (theirs, "see you at 6")
        assert by_type["message.revoked"].action.message_whatsapp_id == theirs_wa
        presence = by_type["presence"].presence
        assert presence and (presence.state, presence.phone_number) == ("recording", CONTACT)
        assert by_type["presence"].action is None and by_type["message.reaction"].presence is None
        chat_read = by_type["chat.read"].chat_read
        assert chat_read and chat_read.message_ids == [theirs] and chat_read.whatsapp_ids == [theirs_wa]
        message = wa.message(theirs)
        assert isinstance(message, wgc.models.InboundMessage)
        assert [e.text for e in message.edits or []] == ["see you at 5", "see you at 6"] and message.revoked_at
        quoting = wa.message(reply)
        assert quoting.quoted_id == theirs_wa and quoting.quoted and quoting.quoted.id == theirs


def test_the_cli_replies_reacts_edits_revokes_reads_and_sends_a_location_and_a_poll(stack):
    theirs_wa = contact(stack, text="are you there?")
    theirs = received(stack, theirs_wa)
    sent = cli(stack, "send", CONTACT, "here", "--reply-to", theirs, "--wait", "30", "--json")
    assert sent.returncode == 0, sent.stderr
    reply = json.loads(sent.stdout)
    assert reply["reply_to"] == theirs and at_contact(stack, reply["whatsapp_id"])["quoted_id"] == theirs_wa
    reacted = cli(stack, "react", theirs, "👍", "--wait", "30")
    assert reacted.returncode == 0 and f"reaction on {theirs}" in reacted.stdout, reacted.stderr
    assert at_contact(stack, theirs_wa, lambda e: e["reactions"] == {PHONE: "👍"}, box="sent")
    listed = cli(stack, "messages", "--limit", "5")
    assert listed.returncode == 0 and f"reaction {theirs}" in listed.stdout  # an action names its message
    edited = cli(stack, "edit", reply["id"], "here, now", "--wait", "30")
    assert edited.returncode == 0, edited.stderr
    assert at_contact(stack, reply["whatsapp_id"], lambda e: e["text"] == "here, now")
    assert cli(stack, "revoke", reply["id"], "--wait", "30").returncode == 0
    assert at_contact(stack, reply["whatsapp_id"], lambda e: e["revoked"])
    read = cli(stack, "--sandbox", "read", theirs, "--json")
    assert read.returncode == 0 and json.loads(read.stdout)["type"] == "read", read.stderr
    assert cli(stack, "presence", CONTACT, "paused").returncode == 0

    place = cli(stack, "send", CONTACT, "--location", "38.7223,-9.1393", "--location-name", "Rossio", "--json")
    assert place.returncode == 0, place.stderr
    assert at_contact(stack, json.loads(place.stdout)["whatsapp_id"])["location"]["name"] == "Rossio"
    poll = cli(stack, "send", CONTACT, "--poll", "Lunch?", "--option", "Pizza", "--option", "Sushi", "--json")
    assert poll.returncode == 0, poll.stderr
    assert at_contact(stack, json.loads(poll.stdout)["whatsapp_id"])["poll"]["multiple"] is False
    card = cli(stack, "send", CONTACT, "--contact", "Ana=+15550009876", "--json")
    assert card.returncode == 0 and json.loads(card.stdout)["type"] == "contacts", card.stderr

    assert cli(stack, "send", CONTACT, "--location", "north").returncode == 2  # usage: not LAT,LON
    both = cli(stack, "send", CONTACT, "--location", "1,2", "--poll", "Q", "--option", "a", "--option", "b")
    assert both.returncode == 2 and "one content per message" in both.stderr
    missing = cli(stack, "react", NO_SUCH, "👍")
    assert missing.returncode == 5 and "message_not_found" in missing.stderr
    late = cli(stack, "edit", theirs, "not mine")
    assert late.returncode == 5 and "not_own_message" in late.stderr
