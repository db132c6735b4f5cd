"""The status page's conversation (service/http/static/status-conversation.js) in a real headless Chromium against
a sandbox stack whose emulator contact replies, reacts, edits and deletes through WhatsApp's own messages (the
real Baileys in the worker, the gateway's store), and whose account does the same through the API (issue 25).

In the received and the sent lists: a reply shows the text of the message it quotes (a contact's or ours, the
latest text once edited), a reaction shows on the message it reacts to with who reacted (the contact's number,
or "me"), an edited message shows its latest text marked edited, a deleted one is marked deleted; a location,
a poll and contact cards show as a line. Everything a contact or the API wrote stays text: a hostile text in a
message, a reply, an edit and a poll makes no element and runs no script. Screenshots:
test-artifacts/status-page-conversation/.
"""

from __future__ import annotations

import pytest

from tests.helpers.browser import status_page_fixtures
from tests.helpers.sandbox import CONTACT, PHONE
from tests.helpers.sandbox_messages import received, sent

pytestmark = pytest.mark.system

HOSTILE = '<img src=x onerror="window.__xss=1"><b>bold</b> & <script>window.__xss=2</script>'


stack, page = status_page_fixtures("status-page-conversation")


def contact(stack, **body) -> str:
    """The contact does ``body`` (the emulator's POST /contacts/{phone}/messages); its WhatsApp id."""
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, **body})
    assert res.status == 200, res.raw
    return str(res.json()["id"])


def row(direction: str, message_id: str) -> str:
    return f"#{direction} tr[data-id='{message_id}']"


def no_markup_ran(page) -> None:
    """Nothing written by a contact or the API became an element or ran."""
    assert page.count("#in b, #out b, #in script, #out script, #in img:not(.thumb), #out img:not(.thumb)") == 0
    assert page.js("return window.__xss") is None


def test_a_contacts_replies_reactions_edits_and_deletes_show_on_their_messages(page, stack):
    first_wa = contact(stack, text="see you at 5 " + HOSTILE)
    first = received(stack, first_wa)
    ours = sent(stack, {"phone_number": CONTACT, "message": "which day? " + HOSTILE})
    reply = received(stack, contact(stack, text="tuesday " + HOSTILE, reply_to=ours["whatsapp_id"]))
    again = received(stack, contact(stack, text="as I said", reply_to=first_wa))
    gone_wa = contact(stack, text="oops, wrong chat")
    gone = received(stack, gone_wa)
    for target, emoji in ((ours["whatsapp_id"], "👍"), (first_wa, "😮"), (first_wa, "❤️")):
        contact(stack, reaction={"id": target, "emoji": emoji})
    contact(stack, edit={"id": first_wa, "text": "see you at 6 " + HOSTILE})
    contact(stack, revoke={"id": gone_wa})

    page.wait(lambda: page.text(row("in", again) + " .quote-text") == "see you at 6 " + HOSTILE, 30,
              "the reply quoting the contact's message, with its latest text")
    assert page.text(row("in", reply) + " .quote-text") == "which day? " + HOSTILE  # quoting ours
    assert page.text(row("in", reply) + " .body") == "tuesday " + HOSTILE
    page.wait(lambda: page.text(row("in", first) + f" .reaction[data-by='{CONTACT}']") == "❤️", 30,
              "the contact's latest reaction on its message")
    assert page.count(row("in", first) + " .reaction") == 1  # the earlier 😮 was replaced, not added
    page.wait(lambda: page.text(row("out", ours["id"]) + f" .reaction[data-by='{CONTACT}']") == "👍", 30,
              "the contact's reaction on our message")
    assert page.text(row("in", first) + " .body") == "see you at 6 " + HOSTILE
    assert page.text(row("in", first) + " .badge.edited") == "edited"
    assert "see you at 5" in page.js("return document.querySelector(arguments[0]).title",
                                     row("in", first) + " .badge.edited")
    page.wait(lambda: page.text(row("in", gone) + " .badge.deleted") == "deleted", 30, "the revoked message deleted")
    assert page.count(row("in", reply) + " .badge") == 0  # neither edited nor deleted
    no_markup_ran(page)
    page.shot("inbound-conversation")


def test_a_contacts_location_poll_and_contact_card_show_as_a_line(page, stack):
    where = received(stack, contact(stack, location={"latitude": 38.7223, "longitude": -9.1393, "name": "Rossio",
                                                     "address": "Lisboa " + HOSTILE}))
    poll = received(stack, contact(stack, poll={"question": "Lunch? " + HOSTILE, "options": ["Pizza", "<i>Sushi</i>"]}))
    card = received(stack, contact(stack, contacts=[{"name": "Ana <b>B</b>", "phone_number": "+15550009876"}]))
    page.wait(lambda: page.text(row("in", card) + " .body") == "👤 Ana <b>B</b>", 30, "the contact card")
    assert page.text(row("in", where) + " .body") == f"📍 Rossio, Lisboa {HOSTILE} (38.7223, -9.1393)"
    assert page.text(row("in", poll) + " .body") == f"📊 Lunch? {HOSTILE}: Pizza / <i>Sushi</i>"
    assert page.count("#in i") == 0
    no_markup_ran(page)


def test_our_reply_reaction_edit_revoke_and_read_show_on_their_messages(page, stack):
    theirs_wa = contact(stack, text="can you confirm? " + HOSTILE)
    theirs = received(stack, theirs_wa)
    reply = sent(stack, {"phone_number": CONTACT, "message": "confirmed", "reply_to": theirs})
    mine = sent(stack, {"phone_number": CONTACT, "message": "at 5 " + HOSTILE})
    doomed = sent(stack, {"phone_number": CONTACT, "message": "never mind"})
    reaction = sent(stack, {"emoji": "🙏"}, f"/messages/{theirs}/reaction")
    edit = sent(stack, {"message": "at 6 " + HOSTILE}, f"/messages/{mine['id']}/edit")
    sent(stack, {}, f"/messages/{doomed['id']}/revoke")
    read = sent(stack, {}, f"/messages/{theirs}/read")

    page.wait(lambda: page.text(row("out", reply["id"]) + " .quote-text") == "can you confirm? " + HOSTILE, 30,
              "our reply quoting the contact's message")
    page.wait(lambda: page.text(row("in", theirs) + " .reaction[data-by='me']") == "🙏", 30,
              "our reaction on the contact's message")
    page.wait(lambda: page.text(row("out", mine["id"]) + " .body") == "at 6 " + HOSTILE, 30, "our edit's text")
    assert page.text(row("out", mine["id"]) + " .badge.edited") == "edited"
    page.wait(lambda: page.text(row("out", doomed["id"]) + " .badge.deleted") == "deleted", 30, "our revoke")
    # our actions are rows of their own naming what they act on
    assert page.text(row("out", reaction["id"]) + " .action") == "reacted 🙏"
    assert page.text(row("out", reaction["id"]) + " .target .quote-text") == "can you confirm? " + HOSTILE
    assert page.text(row("out", edit["id"]) + " .action") == "edited to: at 6 " + HOSTILE
    # the read was accepted last: its row may come with the list's next reload (its own status event), after the
    # reload that showed the revoke
    page.wait(lambda: page.text(row("out", read["id"]) + " .action").startswith("marked read"), 30, "our read's row")
    no_markup_ran(page)
    page.shot("outbound-conversation")


def test_a_group_shows_as_the_recipient_of_our_message_and_the_place_of_a_members(page, stack):
    group = stack.post("/groups", {"subject": "<b>crew</b>", "participants": [CONTACT]}).json()["id"]
    ours = sent(stack, {"group_id": group, "message": "to all " + HOSTILE})
    page.wait(lambda: page.text(row("out", ours["id"]) + " td:nth-child(2)") == group, 30, "our group message's row")
    wa = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": group, "text": "from a member"}).json()["id"]
    theirs = received(stack, wa)
    page.wait(lambda: page.text(row("in", theirs) + " td:nth-child(2)").endswith(" in " + group), 30,
              "the member's group message's row")
    assert page.text(row("in", theirs) + " td:nth-child(2)").startswith(CONTACT)
    no_markup_ran(page)
