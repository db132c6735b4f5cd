"""The status page as an inbox (service/http/static/status-chats.js and status-thread.js, issue 27 item 3) in a real
headless Chromium against a sandbox stack: the emulator's contacts write through WhatsApp's own messages (the real
Baileys in the worker, the gateway's store and its chats API), the account answers through the API and the page.

The chats list is the account's chats newest activity first: a contact that writes rises to the top with its
unread count, live (the page reloads it on the event stream's events, without a reload of the page). A chat's
thread shows both directions oldest at the top with their statuses (ours: sent/delivered/read; theirs: received,
then read once the page marks the chat read), the newest page first and older pages on demand; a reply shows the
message it quotes, reactions show on their message with who reacted, an edited message its latest text marked
edited, a deleted one is marked deleted, a media as its media box. A message typed in the thread reaches the
contact's phone. Everything a contact wrote stays text: a hostile text in a message, a name, a reply, an edit and a
caption makes no element and runs no script. Screenshots: test-artifacts/status-page-chats/.
"""

from __future__ import annotations

import base64
import time
from urllib.parse import quote

import pytest

from tests.helpers import media_samples as samples
from tests.helpers.browser import status_page_fixtures
from tests.helpers.sandbox import CONTACT, PHONE
from tests.helpers.sandbox_messages import SENT_STATES, received, sent
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

HOSTILE = '<img src=x onerror="window.__xss=1"><b>bold</b> & <script>window.__xss=2</script>'
OTHER = "+15550003333"  # a second contact, whose chat the first one's message overtakes
PAGER = "+15550004444"  # a contact with more messages than one page of the thread
HISTORIC = "+15550005555"  # a contact known only from the phone's history
PAGE_SIZE = 50  # the thread's page (status-thread.js LIMIT)


stack, page = status_page_fixtures("status-page-chats")


def writes(stack, phone: str, **body) -> str:
    """The contact ``phone`` writes to the account (the emulator's POST /contacts/{phone}/messages); our id of
    that message once the gateway stored it."""
    res = stack.emu("POST", f"/contacts/{phone}/messages", {"to": PHONE, **body})
    assert res.status == 200, res.raw
    wa_id = res.json()["id"]
    return received(stack, wa_id)


def chat_row(chat: str) -> str:
    return f"#chats li[data-chat='{chat}']"


def msg(message_id: str) -> str:
    return f"#thread-messages li[data-id='{message_id}']"


def top_chat(page) -> str | None:
    top: str | None = page.js("const n = document.querySelector('#chats li[data-chat]'); return n && n.dataset.chat")
    return top


def open_chat(page, chat: str) -> None:
    page.wait(lambda: page.count(chat_row(chat)) == 1, 30, f"the chat {chat} listed")
    page.click(chat_row(chat) + " .chat-open")
    page.wait(lambda: page.visible("#thread") and page.text("#thread-title") != "", 10, f"the thread of {chat}")


def no_markup_ran(page) -> None:
    """Nothing written by a contact or the API became an element or ran."""
    assert page.count("#chats-card b, #chats-card script, #chats-card img:not(.thumb)") == 0
    assert page.js("return window.__xss") is None


def test_a_contact_writing_raises_its_chat_with_its_unread_count_and_the_thread_shows_both_directions(page, stack):
    ours = sent(stack, {"phone_number": CONTACT, "message": "hello " + HOSTILE})
    res = stack.emu("POST", "/contacts", {"phone_number": OTHER, "name": "Other " + HOSTILE})  # its push name
    assert res.status == 200, res.raw
    time.sleep(1.5)  # a contact's message is timed by WhatsApp in whole seconds: the next one is a second later
    writes(stack, OTHER, text="first from the other")
    page.wait(lambda: top_chat(page) == OTHER, 30, "the other contact's chat on top")
    assert page.text(chat_row(OTHER) + " .unread") == "1"
    page.wait(lambda: page.text(chat_row(OTHER) + " .chat-name") == "Other " + HOSTILE, 10, "its push name, as text")
    assert page.text(chat_row(CONTACT) + " .chat-last") == "You: hello " + HOSTILE
    time.sleep(1.5)
    theirs = writes(stack, CONTACT, text="reply " + HOSTILE)
    page.wait(lambda: top_chat(page) == CONTACT, 30, "the contact's chat back on top, live")
    page.wait(lambda: page.text(chat_row(CONTACT) + " .unread") == "1", 10, "its unread count")
    assert page.text(chat_row(CONTACT) + " .chat-last") == "reply " + HOSTILE
    page.shot("chats")

    open_chat(page, CONTACT)
    page.wait(lambda: page.count(msg(theirs)) == 1, 10, "the contact's message in the thread")
    assert page.js("return document.querySelector(arguments[0]).dataset.direction", msg(ours["id"])) == "out"
    assert page.js("return document.querySelector(arguments[0]).dataset.direction", msg(theirs)) == "in"
    assert page.text(msg(ours["id"]) + " .body") == "hello " + HOSTILE
    assert page.text(msg(ours["id"]) + " .status") in SENT_STATES
    assert page.text(msg(theirs) + " .body") == "reply " + HOSTILE
    assert page.text(msg(theirs) + " .status") == "received"
    order = page.js("return [...document.querySelectorAll('#thread-messages li[data-id]')].map((n) => n.dataset.id)")
    assert order.index(ours["id"]) < order.index(theirs)  # oldest at the top

    page.click("#thread-read")
    page.wait(lambda: page.text(chat_row(CONTACT) + " .unread") == "" and not page.visible("#thread-read"), 20,
              "the chat read: no unread count left")
    page.wait(lambda: page.text(msg(theirs) + " .status") == "read", 30, "the contact's message shown read")

    page.fill("#thread-text", "from the page " + HOSTILE)
    page.click("#thread-send")
    def at_the_phone():
        inbox = stack.emu("GET", f"/contacts/{CONTACT}/messages").json()
        return any(m.get("text") == "from the page " + HOSTILE for m in inbox)
    wait_for(at_the_phone, 30, "the page's message at the contact's phone")
    page.wait(lambda: any(t == "from the page " + HOSTILE for t in page.js(
        "return [...document.querySelectorAll('#thread-messages li.out .body')].map((n) => n.textContent)")), 30,
        "the page's message in the thread")
    no_markup_ran(page)
    page.shot("thread")


def test_a_long_thread_shows_its_newest_page_and_older_ones_on_demand(page, stack):
    for n in range(1, PAGE_SIZE + 6):
        res = stack.emu("POST", f"/contacts/{PAGER}/messages", {"to": PHONE, "text": f"n{n}"})
        assert res.status == 200, res.raw
    def everything():
        listed = stack.get(f"/chats/{quote(PAGER)}/messages?limit=200").json().get("messages", [])
        return len(listed) == PAGE_SIZE + 5 and [m["text"] for m in reversed(listed)]
    # oldest first as the API orders them: WhatsApp times these in whole seconds, and the first message of a
    # burst may reach the gateway after the second (it opens the contact's session)
    expected = wait_for(everything, 60, "every message at the gateway")
    assert sorted(expected) == sorted(f"n{n}" for n in range(1, PAGE_SIZE + 6))
    open_chat(page, PAGER)
    bodies = "return [...document.querySelectorAll('#thread-messages li[data-id] .body')].map((n) => n.textContent)"
    page.wait(lambda: len(page.js(bodies)) == PAGE_SIZE, 20, "the newest page")
    assert page.js(bodies) == expected[5:]
    assert page.visible("#thread-older")
    page.click("#thread-older")
    page.wait(lambda: len(page.js(bodies)) == PAGE_SIZE + 5, 20, "the older page above it")
    assert page.js(bodies) == expected
    assert not page.visible("#thread-older")  # nothing older
    writes(stack, PAGER, text="the newest")
    page.wait(lambda: page.js(bodies)[-1:] == ["the newest"], 30, "a new message at the bottom, live")
    assert len(page.js(bodies)) == PAGE_SIZE + 6  # the older page stays


def test_replies_reactions_edits_deletes_and_media_show_in_the_thread(page, stack):
    ours = sent(stack, {"phone_number": CONTACT, "message": "which day? " + HOSTILE})
    reply = writes(stack, CONTACT, text="tuesday " + HOSTILE, reply_to=ours["whatsapp_id"])
    stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "reaction": {"id": ours["whatsapp_id"],
                                                                                    "emoji": "👍"}})
    first = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "at 5"}).json()["id"]
    edited = received(stack, first)
    stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "edit": {"id": first, "text": "at 6 " + HOSTILE}})
    doomed = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "oops"}).json()["id"]
    gone = received(stack, doomed)
    stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "revoke": {"id": doomed}})
    image = writes(stack, CONTACT, media={"kind": "image", "mimetype": "image/png", "caption": "look " + HOSTILE,
                                          "base64": base64.b64encode(samples.png(8, 8)).decode()})
    sent(stack, {"emoji": "🙏"}, f"/messages/{reply}/reaction")

    open_chat(page, CONTACT)
    page.wait(lambda: page.text(msg(reply) + " .quote-text") == "which day? " + HOSTILE, 30, "the reply's quote")
    assert page.text(msg(reply) + " .body") == "tuesday " + HOSTILE
    page.wait(lambda: page.text(msg(ours["id"]) + f" .reaction[data-by='{CONTACT}']") == "👍", 30,
              "the contact's reaction on our message")
    page.wait(lambda: page.text(msg(reply) + " .reaction[data-by='me']") == "🙏", 30, "our reaction on theirs")
    page.wait(lambda: page.text(msg(edited) + " .body") == "at 6 " + HOSTILE, 30, "the edit's latest text")
    assert page.text(msg(edited) + " .badge.edited") == "edited"
    page.wait(lambda: page.text(msg(gone) + " .badge.deleted") == "deleted", 30, "the revoked message deleted")
    assert page.count(msg(reply) + " .badge.edited, " + msg(reply) + " .badge.deleted") == 0
    page.wait(lambda: page.count(msg(image) + " .media[data-kind='image']") == 1, 30, "the image's media box")
    assert page.text(msg(image) + " .caption") == "look " + HOSTILE
    no_markup_ran(page)
    page.shot("conversation")


def test_the_phones_history_shows_as_history(page, stack):
    seed = {"conversations": [{"phone_number": HISTORIC, "messages": [
        {"id": "P27HISTORY1", "from_me": False, "text": "old question " + HOSTILE, "timestamp": "2026-01-02T10:00:00Z"},
        {"id": "P27HISTORY2", "from_me": True, "text": "old answer", "timestamp": "2026-01-02T10:05:00Z",
         "status": "read"}]}]}
    res = stack.emu("POST", f"/accounts/{PHONE}/history", seed)
    assert res.status == 200, res.raw
    res = stack.emu("POST", f"/accounts/{PHONE}/history/send", {"sync_type": "RECENT"})
    assert res.status == 200, res.raw
    page.wait(lambda: page.count(chat_row(HISTORIC)) == 1, 60, "the history's chat listed")
    assert page.text(chat_row(HISTORIC) + " .unread") == ""  # history is never unread
    open_chat(page, HISTORIC)
    items = "#thread-messages li[data-id]"
    page.wait(lambda: page.count(items) == 2, 20, "the history's two messages")
    assert page.count(items + ".history") == 2 and page.count(items + " .badge.history") == 2
    assert page.js("return [...document.querySelectorAll(arguments[0])].map((n) => n.dataset.direction + ' ' + "
                   "n.querySelector('.body').textContent)", items) == ["in old question " + HOSTILE, "out old answer"]
    no_markup_ran(page)
    page.shot("history")


def test_a_groups_thread_names_the_member_who_wrote(page, stack):
    group = stack.post("/groups", {"subject": "<b>crew</b>", "participants": [CONTACT]}).json()["id"]
    ours = sent(stack, {"group_id": group, "message": "to all " + HOSTILE})
    wa_id = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": group, "text": "from a member"}).json()["id"]
    theirs = received(stack, wa_id)
    open_chat(page, group)
    named = next(c for c in stack.get("/chats").json()["chats"] if c["id"] == group)["name"]
    assert page.text("#thread-title") == (named or group)  # its subject once the gateway knows it, as text
    page.wait(lambda: page.count(msg(theirs)) == 1, 30, "the member's message")
    assert page.text(msg(theirs) + " .msg-from") in (CONTACT, "Emulated 2222")  # its push name, else its number
    assert page.text(msg(theirs) + " .body") == "from a member"
    assert page.text(msg(ours["id"]) + " .body") == "to all " + HOSTILE
    assert page.count(msg(ours["id"]) + " .msg-from") == 0  # ours names no sender
    no_markup_ran(page)
