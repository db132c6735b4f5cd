"""The chats API (issue 27 item 1) in-process, against the stand-in worker: GET /chats, GET /chats/{chat}/messages,
POST /chats/{chat}/read, GET /messages/search; a LID's path answering the phone's chat; bad input 400 for every
parameter; a scoped key kept to its own account's chats."""

from __future__ import annotations

import time

import pytest

from service.http.appkeys import DATABASE
from service.store import chat_reads, inbound
from tests.helpers.fake_worker import AUTH, P1, P2, error_of, get_json
from tests.helpers.openapi import conforms

LID = "99887766554433@lid"
GROUP = "120363000000000001@g.us"


async def _inbound(client, wa_id, *, phone=P1, lid=None, text="hi", account="default", group=None, at=None):
    jid = lid if phone is None else phone.lstrip("+") + "@s.whatsapp.net"
    event = {"type": "message", "id": wa_id, "from": phone, "lid": lid, "from_jid": jid, "text": text,
             "timestamp": at or time.time(), "push_name": "Ann", "event_id": f"ev-{wa_id}", "group_id": group}
    await client.server.app[DATABASE].run(inbound.store_worker_event, account, event, time.time())


async def test_chats_list_newest_first_with_last_message_and_unread_count(api):
    client = await api()
    res = await client.post("/send", json={"phone_number": P1, "message": "hello"}, headers=AUTH)
    sent = await res.json()
    await _inbound(client, "IN-1", phone=P2, text="yo")
    await _inbound(client, "IN-2", phone=P2, text="there?")
    page = await get_json(client, "/chats")
    assert [c["id"] for c in page["chats"]] == [P2, P1] and page["next_cursor"] is None
    first, second = page["chats"]
    assert (first["kind"], first["name"], first["phone_number"], first["unread_count"]) == ("contact", "Ann", P2, 2)
    last = first["last_message"]
    assert (last["direction"], last["text"], last["status"], last["from"]["phone_number"], last["history"]) == \
        ("in", "there?", "received", P2, False)
    assert second["last_message"]["id"] == sent["id"] and second["last_message"]["from"] is None
    assert second["last_message"]["status"] == "sent" and second["unread_count"] == 0
    one = await get_json(client, "/chats?limit=1")
    rest = await get_json(client, f"/chats?limit=1&cursor={one['next_cursor']}")
    assert [c["id"] for c in one["chats"] + rest["chats"]] == [P2, P1] and rest["next_cursor"] is None


async def test_a_chats_messages_both_directions_newest_first_and_paged(api):
    client = await api()
    start = time.time() - 100
    await _inbound(client, "A-1", text="one", at=start)
    await client.post("/send", json={"phone_number": P1, "message": "two"}, headers=AUTH)
    await _inbound(client, "A-3", text="three")
    page = await get_json(client, f"/chats/{P1}/messages?limit=2")
    assert [m["text"] for m in page["messages"]] == ["three", "two"]
    assert page["chat"]["id"] == P1 and page["chat"]["unread_count"] == 2
    more = await get_json(client, f"/chats/%2B{P1[1:]}/messages?limit=2&cursor={page['next_cursor']}")
    assert [m["text"] for m in more["messages"]] == ["one"] and more["next_cursor"] is None
    assert more["messages"][0]["chat"] == P1 and more["messages"][0]["wa_id"] == "A-1"
    await error_of(await client.get(f"/chats/{P2}/messages", headers=AUTH), 404, "chat_not_found")


async def test_a_lids_chat_is_the_phones_once_the_pair_is_known(api):
    client = await api()
    await _inbound(client, "L-1", phone=None, lid=LID, text="by lid")
    assert (await get_json(client, f"/chats/{LID}/messages"))["chat"]["id"] == LID
    await _inbound(client, "L-2", phone=P1, lid=LID, text="by phone")
    page = await get_json(client, "/chats")
    assert [(c["id"], c["lid"], c["unread_count"]) for c in page["chats"]] == [(P1, LID, 2)]
    by_lid = await get_json(client, f"/chats/{LID}/messages")
    assert by_lid["chat"]["id"] == P1 and [m["text"] for m in by_lid["messages"]] == ["by phone", "by lid"]


async def test_reading_a_chat_sends_one_read_for_every_unread_message(api):
    client = await api()
    for n in range(3):
        await _inbound(client, f"R-{n}")
    res = await client.post(f"/chats/{P1}/read", headers=AUTH)
    body = await res.json()
    assert res.status in (200, 202) and body["type"] == "read", body
    assert client.worker.sends[-1]["read"] == {"ids": ["R-0", "R-1", "R-2"]}
    page = await get_json(client, f"/chats/{P1}/messages")
    assert page["chat"]["unread_count"] == 0 and {m["status"] for m in page["messages"]} == {"read"}
    again = await client.post(f"/chats/{P1}/read", json={}, headers=AUTH)
    assert again.status == 200 and await again.json() == {"chat": P1, "unread_count": 0}
    assert len(client.worker.sends) == 1


async def test_reading_refuses_groups_lid_only_chats_and_unknown_chats(api):
    client = await api()
    await _inbound(client, "G-1", phone=P2, group=GROUP)
    await error_of(await client.post(f"/chats/{GROUP}/read", headers=AUTH), 409, "not_supported_in_groups")
    await _inbound(client, "L-1", phone=None, lid=LID)
    await error_of(await client.post(f"/chats/{LID}/read", headers=AUTH), 409, "chat_unresolved")
    await error_of(await client.post(f"/chats/{P1}/read", headers=AUTH), 404, "chat_not_found")
    await error_of(await client.post(f"/chats/{P2}/read", json={"x": 1}, headers=AUTH), 400, "unknown_field")
    assert client.worker.sends == []


async def test_search_finds_messages_both_ways_in_one_chat_or_all(api):
    client = await api()
    await client.post("/send", json={"phone_number": P1, "message": "Lunch at noon?"}, headers=AUTH)
    await _inbound(client, "S-1", text="NOON is fine")
    await _inbound(client, "S-2", phone=P2, text="noon for me too")
    assert len((await get_json(client, "/messages/search?q=noon"))["messages"]) == 3
    mine = await get_json(client, f"/messages/search?q=Noon&chat=%2B{P1[1:]}&limit=1")
    assert len(mine["messages"]) == 1 and mine["next_cursor"]
    rest = await get_json(client, f"/messages/search?q=Noon&chat=%2B{P1[1:]}&cursor={mine['next_cursor']}")
    assert {m["direction"] for m in mine["messages"] + rest["messages"]} == {"in", "out"}
    assert (await get_json(client, "/messages/search?q=%25"))["messages"] == []  # % is a character, not a wildcard


async def test_a_search_goes_on_page_by_page_past_its_window_until_every_match_is_found(api, monkeypatch):
    monkeypatch.setattr(chat_reads, "SEARCH_WINDOW", 2)  # each request reads 2 messages at the most
    client = await api()
    start = time.time() - 100
    for n, text in enumerate(["a needle", "hay", "hay", "hay", "needle again", "hay"]):
        await _inbound(client, f"N-{n}", text=text, at=start + n)
    found, cursor, requests = [], "", 0
    while cursor is not None and requests < 10:
        page = await get_json(client, "/messages/search?q=needle" + (f"&cursor={cursor}" if cursor else ""))
        found += [m["text"] for m in page["messages"]]
        cursor, requests = page["next_cursor"], requests + 1
    assert found == ["needle again", "a needle"] and requests == 3


@pytest.mark.parametrize(("path", "code"), [
    ("/chats/12345/messages", "invalid_chat"),
    ("/chats/+999/messages", "invalid_chat"),
    ("/chats/abc@lid/messages", "invalid_chat"),
    ("/chats/1@g.us/messages", "invalid_group_id"),
    ("/chats?limit=0", "invalid_limit"),
    ("/chats?limit=201", "invalid_limit"),
    ("/chats?cursor=nope", "invalid_cursor"),
    (f"/chats/{P1}/messages?cursor=bm9wZQ", "invalid_cursor"),
    (f"/chats/{P1}/messages?limit=x", "invalid_limit"),
    ("/messages/search", "invalid_query"),
    ("/messages/search?q=", "invalid_query"),
    ("/messages/search?q=" + "x" * 201, "invalid_query"),
    ("/messages/search?q=a&chat=nope", "invalid_chat"),
    ("/messages/search?q=a&cursor=Yzox", "invalid_cursor"),
    ("/messages/search?q=a&limit=-1", "invalid_limit"),
    ("/chats?zz=1", "unknown_field"),
])
async def test_bad_input_is_400_with_its_code(api, path, code):
    client = await api()
    await error_of(await client.get(path, headers=AUTH), 400, code)


async def test_a_cursor_of_one_listing_is_refused_by_another(api):
    client = await api()
    for n in range(2):
        await _inbound(client, f"C-{n}", phone=[P1, P2][n])
    chats_cursor = (await get_json(client, "/chats?limit=1"))["next_cursor"]
    await error_of(await client.get(f"/chats/{P1}/messages?cursor={chats_cursor}", headers=AUTH), 400,
                   "invalid_cursor")


async def test_a_scoped_key_sees_only_its_own_accounts_chats(api):
    client = await api()
    assert (await client.post("/accounts", json={"name": "sales"}, headers=AUTH)).status == 201
    key = (await (await client.post("/accounts/sales/keys", json={}, headers=AUTH)).json())["key"]
    await _inbound(client, "D-1", text="default's")
    await _inbound(client, "S-1", phone=P2, text="sales'", account="sales")
    scoped = {"X-API-Key": key}
    own = await get_json(client, "/accounts/sales/chats", headers=scoped)
    assert [c["id"] for c in own["chats"]] == [P2]
    for path in ("/chats", "/accounts/default/chats", f"/accounts/default/chats/{P1}/messages",
                 "/accounts/default/messages/search?q=default", "/accounts/default/contacts"):
        await error_of(await client.get(path, headers=scoped), 403, "forbidden")
    found = await get_json(client, "/accounts/sales/messages/search?q=default", headers=scoped)
    assert found["messages"] == []
    await error_of(await client.get(f"/accounts/sales/chats/{P1}/messages", headers=scoped), 404, "chat_not_found")


async def test_answers_with_every_kind_of_message_validate_against_the_document(api):
    client = await api()
    doc = await (await client.get("/openapi.json", headers=AUTH)).json()
    await client.post("/send", json={"phone_number": P1, "message": "hello"}, headers=AUTH)
    await client.post("/send", json={"phone_number": P1, "location": {"latitude": 1.5, "longitude": 2.5}},
                      headers=AUTH)
    await _inbound(client, "V-1", text="hi")
    await _inbound(client, "V-2", phone=P2, group=GROUP)
    theirs = (await get_json(client, f"/chats/{P1}/messages"))["messages"][0]
    await client.post(f"/messages/{theirs['id']}/reaction", json={"emoji": "👍"}, headers=AUTH)
    event = {"type": "history.sync", "sync_type": "RECENT", "event_id": "h-1", "chats": [], "contacts": [],
             "messages": [{"wa_id": "H-1", "chat_jid": "15550002222@s.whatsapp.net", "phone_number": P1, "lid": LID,
                           "from_me": True, "sent_at": 1_700_000_000, "kind": "text", "text": "old", "status": "read"}]}
    await client.server.app[DATABASE].run(inbound.store_worker_event, "default", event, time.time())
    for path, pattern in (("/chats", "/chats"), (f"/chats/{P1}/messages", "/chats/{chat}/messages"),
                          (f"/chats/{GROUP}/messages", "/chats/{chat}/messages"),
                          ("/messages/search?q=o", "/messages/search"), ("/contacts", "/contacts"),
                          (f"/contacts/{P1}?picture=true", "/contacts/{phone}")):
        res = await client.get(path, headers=AUTH)
        assert res.status == 200, await res.text()
        await conforms(doc, res, "GET", pattern)
    shown = (await get_json(client, f"/chats/{P1}/messages"))["messages"]
    assert [m["history"] for m in shown][-1] is True and shown[-1]["direction"] == "out"
    assert {"from": "me", "emoji": "👍"} in next(m for m in shown if m["wa_id"] == "V-1")["reactions"]
