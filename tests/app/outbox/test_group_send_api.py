"""Sending to a group (issue 26 item 1) in-process, against the stand-in worker: a group's message goes to the
worker by ``group_id`` through the same outbox (idempotent, answered like a send), mentions with it; a contact's
group message is stored with its group and participant; bad group ids and misplaced fields are 400."""

from __future__ import annotations

import time

import aiohttp
import pytest

from service.http.appkeys import DATABASE
from service.store import contacts, inbound, outbox
from tests.helpers import media_samples as samples
from tests.helpers.fake_worker import AUTH, P1, P2, error_of

GROUP = "120363012345678901@g.us"


async def test_a_group_send_goes_to_the_worker_by_group_id_with_its_mentions(api):
    client = await api()
    key = {**AUTH, "Idempotency-Key": "g-1"}
    body = {"group_id": GROUP, "message": "hi @15550001111", "mentions": [P1, f"{P1[:2]} {P1[2:5]} {P1[5:8]} {P1[8:]}"]}
    res = await client.post("/send", json=body, headers=key)
    sent = await res.json()
    assert res.status == 200, sent
    assert (sent["group_id"], sent["phone_number"], sent["content"]) == (GROUP, None, {"mentions": [P1]})
    again = await client.post("/send", json=body, headers=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.worker.sends == [{"group_id": GROUP, "id": sent["whatsapp_id"], "text": "hi @15550001111",
                                    "mentions": [P1]}]
    shown = await (await client.get(f"/messages/{sent['id']}", headers=AUTH)).json()
    assert shown["group_id"] == GROUP and shown["message"] == "hi @15550001111"


@pytest.mark.parametrize(("body", "code"), [
    ({"group_id": "12345@s.whatsapp.net", "message": "x"}, "invalid_group_id"),
    ({"group_id": "abc@g.us", "message": "x"}, "invalid_group_id"),
    ({"group_id": "1" * 70 + "@g.us", "message": "x"}, "invalid_group_id"),
    ({"group_id": GROUP, "phone_number": P1, "message": "x"}, "invalid_phone_number"),
    ({"message": "x"}, "invalid_phone_number"),
    ({"phone_number": P1, "message": "x", "mentions": [P2]}, "invalid_mentions"),
    ({"group_id": GROUP, "message": "x", "mentions": []}, "invalid_mentions"),
    ({"group_id": GROUP, "message": "x", "mentions": ["12"]}, "invalid_mentions"),
])
async def test_bad_group_sends_are_400_and_nothing_is_queued(api, body, code):
    client = await api()
    await error_of(await client.post("/send", json=body, headers=AUTH), 400, code)
    assert client.worker.sends == [] and await client.server.app[DATABASE].run(outbox.pending_count, "default") == 0


async def test_a_contacts_group_message_is_stored_with_its_group_and_participant(api):
    client = await api()
    db = client.server.app[DATABASE]
    event = {"id": "WA-G-1", "from": P2, "lid": "1234567@lid", "from_jid": "15550002222@s.whatsapp.net",
             "group_id": GROUP, "text": "hello all", "timestamp": time.time()}
    await db.run(inbound.store_message, "default", event, time.time())
    listed = await (await client.get("/messages?direction=in", headers=AUTH)).json()
    (got,) = listed["messages"]
    assert (got["group_id"], got["participant"]) == (GROUP, {"phone_number": P2, "lid": "1234567@lid"})
    # a group message is no first contact's: the contact never wrote to the account itself
    assert not await db.run(contacts.is_known_contact, "default", P2)
    assert await db.run(contacts.is_first_contact, "default", P2)
    assert not await db.run(contacts.is_first_contact, "default", GROUP)
    reply = await client.post("/send", json={"group_id": GROUP, "message": "hi", "reply_to": got["id"]},
                              headers=AUTH)
    assert reply.status == 200, await reply.text()
    assert client.worker.sends[-1]["quoted"]["participant"] == "15550002222@s.whatsapp.net"
    await error_of(await client.post("/send", json={"phone_number": P2, "message": "x", "reply_to": got["id"]},
                                     headers=AUTH), 400, "invalid_reply_to")  # it is the group's, not P2's chat
    react = await client.post(f"/messages/{got['id']}/reaction", json={"emoji": "👍"}, headers=AUTH)
    assert react.status == 200 and client.worker.sends[-1]["group_id"] == GROUP
    assert client.worker.sends[-1]["reaction"]["key"] == {"id": "WA-G-1", "from_me": False,
                                                          "participant": "15550002222@s.whatsapp.net"}


async def test_an_uploaded_image_goes_to_a_group_as_a_reply(api):
    client = await api()
    db = client.server.app[DATABASE]
    event = {"id": "WA-G-2", "from": P2, "from_jid": "15550002222@s.whatsapp.net", "group_id": GROUP,
             "text": "a photo please", "timestamp": time.time()}
    await db.run(inbound.store_message, "default", event, time.time())
    (asked,) = (await (await client.get("/messages?direction=in", headers=AUTH)).json())["messages"]
    form = aiohttp.FormData()
    for name, value in (("group_id", GROUP), ("kind", "image"), ("reply_to", asked["id"])):
        form.add_field(name, value)
    form.add_field("file", samples.png(), filename="a.png", content_type="image/png")
    res = await client.post("/send", data=form, headers=AUTH)
    assert res.status == 200, await res.text()
    sent = client.worker.sends[-1]
    assert sent["group_id"] == GROUP and sent["media"]["kind"] == "image"
    assert sent["quoted"] == {"id": "WA-G-2", "from_me": False, "text": "a photo please", "lid": None,
                              "participant": "15550002222@s.whatsapp.net"}
    both = aiohttp.FormData()
    for name, value in (("group_id", GROUP), ("phone_number", P1), ("kind", "image")):
        both.add_field(name, value)
    both.add_field("file", samples.png(), filename="a.png", content_type="image/png")
    await error_of(await client.post("/send", data=both, headers=AUTH), 400, "invalid_phone_number")
