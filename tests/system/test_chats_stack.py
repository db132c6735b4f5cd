"""Chats and contacts through one real sandbox stack (gateway, worker with the real Baileys, the emulator's phone and
contacts), issue 27 item 1: the phone's history syncs at linking and is stored as history (never a message.received,
never unread, stored once however often it comes again); a contact the phone knows by LID is one chat with its phone
number, history and live messages together; the chats are the same after a gateway restart; the contact lookup asks
WhatsApp (on WhatsApp, LID, profile picture)."""

from __future__ import annotations

import pytest

from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import Stack, wait_for

pytestmark = pytest.mark.system

BY_LID = "+15550003333"  # a contact whose 1:1 chat the phone keeps by its LID
T0 = 1_765_000_000
SEED = {
    "conversations": [
        {"phone_number": CONTACT, "name": "Alice (address book)", "unread_count": 1, "messages": [
            {"id": "HIST-OUT-1", "from_me": True, "text": "hi from the past", "timestamp": T0, "status": "read"},
            {"id": "HIST-IN-1", "text": "hello back then", "timestamp": T0 + 60, "push_name": "Alice"}]},
        {"phone_number": BY_LID, "addressing": "lid", "messages": [
            {"id": "HIST-LID-1", "text": "written by LID", "timestamp": T0 + 120, "push_name": "Bob"}]},
    ],
    "push_names": [{"phone_number": BY_LID, "push_name": "Bob"}],
}
HIST_IDS = {"HIST-IN-1", "HIST-OUT-1", "HIST-LID-1"}


@pytest.fixture(scope="module")
def stack():
    with Stack(sandbox=True) as running:
        res = running.emu("POST", f"/accounts/{PHONE}/history", SEED)
        assert res.status == 200, res.raw
        pair(running)
        yield running


def _chats(stack) -> dict[str, dict]:
    res = stack.get("/chats?limit=200")
    assert res.status == 200, res.raw
    return {c["id"]: c for c in res.json()["chats"]}


def _messages(stack, chat: str) -> list[dict]:
    res = stack.get(f"/chats/{chat.replace('+', '%2B')}/messages?limit=200")
    assert res.status == 200, res.raw
    return res.json()["messages"]


def _history_synced(stack) -> dict[str, dict] | None:
    chats = _chats(stack)
    done = CONTACT in chats and BY_LID in chats and len(_messages(stack, CONTACT)) >= 2
    return chats if done else None


def _contact(stack, phone: str) -> dict:
    return {c["phone_number"]: c for c in stack.get("/contacts?limit=200").json()["contacts"]}.get(phone, {})


def _received_ids(stack) -> set[str]:
    return {e["data"]["whatsapp_id"] for e in stack.events() if e["type"] == "message.received"}


def _history_evidence(stack) -> str:
    """When a history message came as a live one: the stack's log lines naming a seeded id (the worker's
    message.received with its offline flag, the gateway's hand-over with the worker's event id and seq) and every
    history sync, in order, so that a rare failure says which path journaled it."""
    lines = [line for line in stack.logs().splitlines() if "history.sync" in line or any(i in line for i in HIST_IDS)]
    return "\n".join(lines[-80:])


def test_history_is_stored_as_history_and_one_chat_per_contact(stack):
    chats = wait_for(lambda: _history_synced(stack), 60, "the history sync's chats")
    alice = _messages(stack, CONTACT)
    assert [(m["wa_id"], m["direction"], m["text"], m["history"]) for m in alice] == [
        ("HIST-IN-1", "in", "hello back then", True), ("HIST-OUT-1", "out", "hi from the past", True)], \
        _history_evidence(stack)
    assert alice[0]["from"]["push_name"] == "Alice" and alice[0]["sent_at"].startswith("2025-12-06")
    assert chats[CONTACT]["unread_count"] == 0 and chats[CONTACT]["name"] == "Alice (address book)"
    bob = chats[BY_LID]  # the phone named the chat by LID and gave the pair: one chat, the phone number's
    assert bob["lid"] and bob["lid"].endswith("@lid") and bob["lid"] not in chats
    assert [m["wa_id"] for m in _messages(stack, bob["lid"])] == ["HIST-LID-1"]  # the LID's path: the same chat
    assert not _received_ids(stack) & HIST_IDS, _history_evidence(stack)  # never a new message
    wait_for(lambda: _contact(stack, BY_LID).get("push_name") == "Bob", 60, "the synced push name")

    again = stack.emu("POST", f"/accounts/{PHONE}/history/send", {"sync_type": "RECENT"})
    assert again.status == 200, again.raw
    res = stack.emu("POST", f"/contacts/{BY_LID}/messages", {"to": PHONE, "text": "live now"})
    assert res.status == 200, res.raw
    live_id = res.json()["id"]
    wait_for(lambda: live_id in _received_ids(stack), 60, "the live message after the second sync")
    chats = _chats(stack)
    assert set(chats) == {CONTACT, BY_LID}, chats.keys()  # no second chat for the LID
    bob = chats[BY_LID]
    assert (bob["unread_count"], bob["last_message"]["wa_id"], bob["last_message"]["history"]) == (1, live_id, False), \
        _history_evidence(stack)
    assert [m["wa_id"] for m in _messages(stack, BY_LID)] == [live_id, "HIST-LID-1"]
    assert len(_messages(stack, CONTACT)) == 2, _history_evidence(stack)  # the repeated sync stored nothing twice
    assert not _received_ids(stack) & HIST_IDS, _history_evidence(stack)


def test_chats_are_the_same_after_a_gateway_restart(stack):
    wait_for(lambda: _history_synced(stack), 60, "the history sync's chats")
    sent = stack.post("/send", {"phone_number": CONTACT, "message": "and today"})
    assert sent.status in (200, 202), sent.raw
    before = _chats(stack)
    messages = {chat: _messages(stack, chat) for chat in before}
    restarted = stack.ctl("restart", "gateway")
    assert restarted.returncode == 0, restarted.stderr
    wait_for(lambda: stack.get("/health", timeout=2).status == 200, 30, "the gateway back")
    after = _chats(stack)
    strip = ("last_message",)
    assert {k: {f: v for f, v in c.items() if f not in strip} for k, c in after.items()} == \
        {k: {f: v for f, v in c.items() if f not in strip} for k, c in before.items()}
    assert {chat: [m["id"] for m in _messages(stack, chat)] for chat in after} == \
        {chat: [m["id"] for m in ms] for chat, ms in messages.items()}
    assert after[CONTACT]["last_message"]["id"] == sent.json()["id"]


def test_reading_a_chat_zeroes_its_unread_count(stack):
    wait_for(lambda: _history_synced(stack), 60, "the history sync's chats")
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "are you there?"})
    assert res.status == 200, res.raw
    wait_for(lambda: _chats(stack)[CONTACT]["unread_count"] >= 1, 60, "an unread message")
    read = stack.post(f"/chats/{CONTACT.replace('+', '%2B')}/read")
    assert read.status in (200, 202) and read.json()["type"] == "read", read.raw
    assert _chats(stack)[CONTACT]["unread_count"] == 0
    wa_id = res.json()["id"]
    wait_for(lambda: any(r["type"] == "read" and r["id"] == wa_id for r in
                         stack.emu("GET", f"/contacts/{CONTACT}/receipts-received").json()), 60, "the read receipt")


def test_a_contact_is_looked_up_live_with_its_picture(stack):
    assert stack.emu("POST", f"/contacts/{CONTACT}/picture", {}).status == 200
    res = stack.get(f"/contacts/{CONTACT.replace('+', '%2B')}?picture=true")
    assert res.status == 200, res.raw
    shown = res.json()
    assert (shown["phone_number"], shown["on_whatsapp"]) == (CONTACT, True)
    assert shown["lid"] and shown["lid"].endswith("@lid") and shown["checked_at"]
    assert shown["picture_url"] and shown["picture_url"].startswith("https://")
    assert _contact(stack, CONTACT)["on_whatsapp"] is True  # kept
    assert _contact(stack, BY_LID)["push_name"] == "Emulated 3333"  # the live message's, newer than the synced one
