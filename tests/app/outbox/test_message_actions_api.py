"""The actions on a message and a chat (issue 25 item 1) in-process, against the stand-in worker: what each hands
the worker, WhatsApp's rules refused before anything is stored (404 unknown or another account's message, 409 for
each rule, 400 for bad bodies), Idempotency-Key replays, and a read taking every earlier unread message once."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.http.appkeys import DATABASE
from service.store import inbound, outbox
from tests.helpers.fake_worker import AUTH, P1, P2, error_of, until


async def _sent(client, body: dict) -> dict:
    res = await client.post("/send", json=body, headers=AUTH)
    assert res.status == 200, await res.text()
    return await res.json()


async def _inbound(client, phone: str, wa_id: str, text: str = "hi") -> dict:
    """A contact's message as the worker's event stores it; its public view."""
    db = client.server.app[DATABASE]
    event = {"id": wa_id, "from": phone, "from_jid": phone.lstrip("+") + "@s.whatsapp.net", "text": text,
             "timestamp": time.time()}
    await db.run(inbound.store_message, "default", event, time.time())
    listed = await (await client.get("/messages?direction=in&limit=200", headers=AUTH)).json()
    return next(m for m in listed["messages"] if m["whatsapp_id"] == wa_id)


async def test_each_action_hands_the_worker_what_baileys_needs(api):
    client = await api()
    ours = await _sent(client, {"phone_number": P1, "message": "hello"})
    theirs = await _inbound(client, P1, "WA-IN-1")
    reaction = await (await client.post(f"/messages/{theirs['id']}/reaction", json={"emoji": "👍"},
                                        headers=AUTH)).json()
    assert (reaction["type"], reaction["target_id"], reaction["status"]) == ("reaction", theirs["id"], "sent")
    await client.post(f"/messages/{ours['id']}/edit", json={"message": "hello again"}, headers=AUTH)
    await client.post(f"/messages/{ours['id']}/revoke", headers=AUTH)  # no body at all
    await client.post(f"/messages/{theirs['id']}/read", json={}, headers=AUTH)
    await client.post(f"/chats/{P1}/presence", json={"state": "composing"}, headers=AUTH)
    await client.post("/send", json={"phone_number": P1, "message": "re", "reply_to": theirs["id"]}, headers=AUTH)
    sends = client.worker.sends
    assert len(sends) == 7, sends
    assert sends[1]["reaction"] == {"key": {"id": "WA-IN-1", "from_me": False}, "emoji": "👍"}
    assert "text" not in sends[1]
    assert sends[2]["edit"] == {"key": {"id": ours["whatsapp_id"]}, "text": "hello again"}
    assert sends[3]["revoke"] == {"key": {"id": ours["whatsapp_id"], "from_me": True}}
    assert sends[4]["read"] == {"ids": ["WA-IN-1"]}
    assert sends[5]["presence"] == {"state": "composing"}
    assert sends[6]["text"] == "re" and sends[6]["quoted"] == {"id": "WA-IN-1", "from_me": False, "text": "hi",
                                                                "lid": None}
    shown = await (await client.get(f"/messages/{ours['id']}", headers=AUTH)).json()
    assert (shown["message"], shown["edits"], shown["revoked"]) == ("hello again", ["hello", "hello again"], True)


async def test_location_contacts_and_poll_are_built_for_the_worker(api):
    client = await api()
    await _sent(client, {"phone_number": P1, "location": {"latitude": -33.9, "longitude": 18.4, "name": "Cape"}})
    await _sent(client, {"phone_number": P1, "contacts": [{"name": "Ana", "phone_number": "+1 (555) 000-3333"}]})
    raw = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bo\r\nTEL;type=CELL:+15550004444\r\nEND:VCARD\r\n"
    await _sent(client, {"phone_number": P1, "vcards": [raw, raw]})
    poll = await _sent(client, {"phone_number": P1, "poll": {"question": "Q?", "options": ["a", "b", "c"],
                                                              "multiple": True}})
    location, card, cards, sent_poll = client.worker.sends
    assert location["location"] == {"latitude": -33.9, "longitude": 18.4, "name": "Cape"}
    assert card["contacts"]["display_name"] == "Ana" and "TEL;TYPE=CELL;WAID=15550003333:+15550003333" in \
        card["contacts"]["vcards"][0]
    assert cards["contacts"] == {"display_name": "2 contacts", "vcards": [raw, raw]}
    assert sent_poll["poll"]["values"] == ["a", "b", "c"] and sent_poll["poll"]["selectable_count"] == 0
    assert len(__import__("base64").b64decode(sent_poll["poll"]["secret"])) == 32
    assert poll["content"] == {"poll": {"question": "Q?", "options": ["a", "b", "c"], "multiple": True}}


@pytest.mark.parametrize(("body", "code"), [
    ({"poll": {"question": "Q", "options": ["only"]}}, "invalid_poll"),
    ({"poll": {"question": "Q", "options": [str(n) for n in range(13)]}}, "invalid_poll"),
    ({"poll": {"question": "Q", "options": ["a", "a"]}}, "invalid_poll"),
    ({"poll": {"question": " ", "options": ["a", "b"]}}, "invalid_poll"),
    ({"location": {"latitude": 91.0, "longitude": 0.0}}, "invalid_location"),
    ({"location": {"latitude": 0.0, "longitude": -180.5}}, "invalid_location"),
    ({"location": {"latitude": "1", "longitude": 0.0}}, "invalid_location"),
    ({"contacts": []}, "invalid_contacts"),
    ({"contacts": [{"name": "A", "phone_number": "12"}]}, "invalid_contacts"),
    ({"vcards": ["BEGIN:VCARD\nVERSION:3.0\nEND:VCARD\n"]}, "invalid_contacts"),
    ({"vcards": ["hello"]}, "invalid_contacts"),
    ({"message": "x", "location": {"latitude": 0.0, "longitude": 0.0}}, "invalid_message"),
    ({"message": "x", "reply_to": ""}, "invalid_reply_to"),
])
async def test_bad_contents_are_400_and_nothing_is_queued(api, body, code):
    client = await api()
    await error_of(await client.post("/send", json={"phone_number": P1, **body}, headers=AUTH), 400, code)
    assert client.worker.sends == [] and await client.server.app[DATABASE].run(outbox.pending_count, "default") == 0


async def test_whatsapps_rules_refuse_before_anything_is_stored(api):
    client = await api(WA_EDIT_WINDOW_SECONDS="60", WA_REVOKE_WINDOW_SECONDS="120")
    db = client.server.app[DATABASE]
    ours = await _sent(client, {"phone_number": P1, "message": "hello"})
    theirs = await _inbound(client, P2, "WA-IN-2")
    cases = [
        ("/messages/nope/reaction", {"emoji": "👍"}, 404, "message_not_found"),
        (f"/messages/{ours['id']}/reaction", {"emoji": "thumbs"}, 400, "invalid_emoji"),
        (f"/messages/{ours['id']}/reaction", {"emoji": "👍👍"}, 400, "invalid_emoji"),
        (f"/messages/{theirs['id']}/edit", {"message": "x"}, 409, "not_own_message"),
        (f"/messages/{theirs['id']}/revoke", {}, 409, "not_own_message"),
        (f"/messages/{ours['id']}/read", {}, 409, "not_inbound"),
        (f"/messages/{ours['id']}/revoke", {"emoji": "x"}, 400, "unknown_field"),
        (f"/chats/{P1}/presence", {"state": "typing"}, 400, "invalid_state"),
        ("/chats/12/presence", {"state": "composing"}, 400, "invalid_phone_number"),
        ("/send", {"phone_number": P1, "message": "x", "reply_to": theirs["id"]}, 400, "invalid_reply_to"),
        ("/send", {"phone_number": P1, "message": "x", "reply_to": "nope"}, 404, "message_not_found"),
    ]
    for path, body, status, code in cases:
        await error_of(await client.post(path, json=body, headers=AUTH), status, code)
    # past the windows (the message was sent long ago)
    await db.run(lambda conn: conn.execute("UPDATE messages SET sent_at = sent_at - 90 WHERE id = ?", (ours["id"],)))
    await error_of(await client.post(f"/messages/{ours['id']}/edit", json={"message": "x"}, headers=AUTH),
                   409, "edit_window_expired")
    assert (await client.post(f"/messages/{ours['id']}/revoke", headers=AUTH)).status == 200  # 90 s < 120 s
    await error_of(await client.post(f"/messages/{ours['id']}/reaction", json={"emoji": "👍"}, headers=AUTH),
                   409, "message_revoked")
    assert len(client.worker.sends) == 2  # the message and its revoke: nothing else reached the worker


async def test_a_queued_or_failed_message_cannot_be_edited_or_revoked(api):
    client = await api()
    client.worker.state = "connecting"
    queued = await (await client.post("/send?wait=0", json={"phone_number": P1, "message": "x"}, headers=AUTH)).json()
    for action in ("edit", "revoke"):
        body = {"message": "y"} if action == "edit" else {}
        await error_of(await client.post(f"/messages/{queued['id']}/{action}", json=body, headers=AUTH),
                       409, "not_sent")
    # cancelled once it is back in the queue (the dispatcher's try on the unconnected worker may hold it a moment)
    async def cancelled() -> bool:
        return (await client.delete(f"/messages/{queued['id']}", headers=AUTH)).status == 200
    for _ in range(100):
        if await cancelled():
            break
        await asyncio.sleep(0.05)
    await error_of(await client.post(f"/messages/{queued['id']}/reaction", json={"emoji": "👍"}, headers=AUTH),
                   409, "message_failed")


async def test_another_accounts_message_is_not_found(api):
    client = await api()
    ours = await _sent(client, {"phone_number": P1, "message": "hello"})
    assert (await client.post("/accounts", json={"name": "shop"}, headers=AUTH)).status == 201
    await error_of(await client.post(f"/accounts/shop/messages/{ours['id']}/reaction", json={"emoji": "👍"},
                                     headers=AUTH), 404, "message_not_found")


async def test_an_idempotency_key_replays_an_action_and_a_read_takes_each_message_once(api):
    client = await api()
    first, second, third = [await _inbound(client, P1, f"WA-R-{n}") for n in range(3)]
    other_chat = await _inbound(client, P2, "WA-R-other")
    key = {**AUTH, "Idempotency-Key": "read-1"}
    read = await (await client.post(f"/messages/{second['id']}/read", headers=key)).json()
    again = await client.post(f"/messages/{second['id']}/read", headers=key)
    assert again.headers["Idempotent-Replayed"] == "true" and (await again.json())["id"] == read["id"]
    await error_of(await client.post(f"/messages/{third['id']}/read", headers=key), 409, "idempotency_key_reused")
    await client.post(f"/messages/{third['id']}/read", headers=AUTH)
    reads = [s["read"]["ids"] for s in client.worker.sends if "read" in s]
    assert reads == [["WA-R-0", "WA-R-1"], ["WA-R-2"]] and other_chat["whatsapp_id"] not in str(reads)
    react = {**AUTH, "Idempotency-Key": "r-1"}
    one = await (await client.post(f"/messages/{first['id']}/reaction", json={"emoji": "🎉"}, headers=react)).json()
    two = await (await client.post(f"/messages/{first['id']}/reaction", json={"emoji": "🎉"}, headers=react)).json()
    assert one["id"] == two["id"]
    await error_of(await client.post(f"/messages/{first['id']}/reaction", json={"emoji": "😀"}, headers=react),
                   409, "idempotency_key_reused")
    await until(lambda: len(client.worker.sends) == 3)
    assert sum("reaction" in s for s in client.worker.sends) == 1
