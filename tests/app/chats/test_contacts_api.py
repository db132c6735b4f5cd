"""The contacts API (issue 27 item 1) in-process, against the stand-in worker: GET /contacts (what the gateway
learned: push names, the phone's names, LIDs; q; pages) and GET /contacts/{phone}, asked of the worker while connected
(kept: on_whatsapp, LID, checked_at; the picture only when asked and never stored), the stored answer otherwise."""

from __future__ import annotations

import time

import pytest

from service.http.appkeys import DATABASE
from service.store import inbound
from tests.helpers.fake_worker import AUTH, P1, P2, error_of, get_json

LID = "99887766554433@lid"


async def _event(client, event):
    await client.server.app[DATABASE].run(inbound.store_worker_event, "default", event, time.time())


async def test_contacts_list_what_the_gateway_learned(api):
    client = await api()
    await _event(client, {"type": "contact.updated", "source": "contacts", "event_id": "c-1", "contacts": [
        {"phone_number": P2, "lid": LID, "name": "Bob Builder", "push_name": "bob"},
        {"phone_number": P1, "push_name": "Ann"}, {"lid": "555@lid", "push_name": "Lid Only"},
        {"phone_number": "not a number", "push_name": "dropped"}]})
    await _event(client, {"type": "contact.updated", "source": "lid_mapping", "event_id": "c-2", "contacts": [
        {"phone_number": P2, "lid": LID}]})  # absent keys are unknown: Bob keeps his names
    page = await get_json(client, "/contacts")
    assert [(c["phone_number"], c["lid"], c["name"], c["push_name"]) for c in page["contacts"]] == [
        (P1, None, None, "Ann"), (P2, LID, "Bob Builder", "bob"), (None, "555@lid", None, "Lid Only")]
    assert (await get_json(client, "/contacts?q=BUILD"))["contacts"][0]["phone_number"] == P2
    assert (await get_json(client, "/contacts?q=%25"))["contacts"] == []
    first = await get_json(client, "/contacts?limit=2")
    rest = await get_json(client, f"/contacts?limit=2&cursor={first['next_cursor']}")
    assert len(first["contacts"]) == 2 and [c["lid"] for c in rest["contacts"]] == ["555@lid"]
    assert rest["next_cursor"] is None


async def test_one_contact_is_asked_of_whatsapp_while_connected_and_kept(api):
    client = await api()
    client.worker.contacts[P1] = {"on_whatsapp": True, "lid": LID, "picture_url": "https://pps.example/a.jpg"}
    shown = await get_json(client, f"/contacts/%2B{P1[1:]}?picture=true")
    assert (shown["phone_number"], shown["on_whatsapp"], shown["lid"], shown["picture_url"]) == \
        (P1, True, LID, "https://pps.example/a.jpg")
    assert shown["checked_at"] is not None and client.worker.contact_asks == [(P1, "1")]
    plain = await get_json(client, f"/contacts/{P1}")
    assert "picture_url" not in plain and client.worker.contact_asks[-1] == (P1, None)
    client.worker.state = "disconnected"
    stored = await get_json(client, f"/contacts/{P1}?picture=true")  # what was learned, no picture (never stored)
    assert (stored["on_whatsapp"], stored["lid"], stored["picture_url"]) == (True, LID, None)


async def test_an_unknown_contact_while_disconnected_is_404(api):
    client = await api()
    client.worker.state = "disconnected"
    await error_of(await client.get(f"/contacts/{P2}", headers=AUTH), 404, "contact_not_found")


async def test_a_number_not_on_whatsapp_is_said_so(api):
    client = await api()
    shown = await get_json(client, f"/contacts/{P2}")
    assert (shown["on_whatsapp"], shown["lid"]) == (False, None)


@pytest.mark.parametrize(("path", "code"), [
    ("/contacts/12345", "invalid_phone_number"),
    ("/contacts/+999", "invalid_phone_number"),
    (f"/contacts/{P1}?picture=1", "invalid_picture"),
    ("/contacts?limit=0", "invalid_limit"),
    ("/contacts?cursor=nope", "invalid_cursor"),
    ("/contacts?q=", "invalid_query"),
    ("/contacts?q=" + "y" * 201, "invalid_query"),
    ("/contacts?zz=1", "unknown_field"),
])
async def test_bad_input_is_400_with_its_code(api, path, code):
    client = await api()
    await error_of(await client.get(path, headers=AUTH), 400, code)
