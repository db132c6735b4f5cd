"""The Python client's chats and contacts (clients/python/.../chats.py) against the in-process gateway in front of the
stand-in worker: typed chats, a chat's pages walked to the end, reading a chat (and nothing to read), search,
contacts with the live lookup, another account, the typed refusals, the blocking twin, and the CLI's chats and
contacts commands."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from service.http.appkeys import DATABASE
from service.programs.client_commands import CLIENT_COMMANDS
from service.store import inbound
from tests.helpers.cli_inprocess import run_cli
from tests.helpers.fake_worker import KEY, P1, P2
from wa_gateway_client import AsyncClient, Client, cli, errors


async def _inbound(client, wa_id, *, phone=P1, text="hi", account="default", at=None):
    event = {"type": "message", "id": wa_id, "from": phone, "from_jid": phone.lstrip("+") + "@s.whatsapp.net",
             "text": text, "timestamp": at or time.time(), "push_name": "Ann", "event_id": f"ev-{wa_id}"}
    await client.server.app[DATABASE].run(inbound.store_worker_event, account, event, time.time())


@pytest.fixture
async def gateway(api):
    client = await api()
    async with AsyncClient(str(client.make_url("")).rstrip("/"), api_key=KEY) as wa:
        yield client, wa


async def test_the_client_lists_chats_walks_a_chat_and_reads_it(gateway):
    client, wa = gateway
    start = time.time() - 100
    for n in range(5):
        await _inbound(client, f"W-{n}", text=f"msg {n}", at=start + n)
    sent = await wa.send(P2, "hello")
    page = await wa.chats()
    assert [(c.id, c.unread_count) for c in page.chats] == [(P2, 0), (P1, 5)] and page.next_cursor is None
    assert page.chats[1].last_message is not None and page.chats[1].last_message.sender.push_name == "Ann"
    walked = [m.text async for m in wa.iter_chat_messages(P1, page_size=2)]
    assert walked == [f"msg {n}" for n in range(4, -1, -1)]  # newest first, across three pages
    first = await wa.chat_messages(P2)
    assert first.chat.id == P2 and [(m.id, m.direction, m.sender) for m in first.messages] == [(sent.id, "out", None)]
    read = await wa.read_chat(P1)
    assert read is not None and read.id
    assert (await wa.chats()).chats[1].unread_count == 0
    assert await wa.read_chat(P1) is None  # nothing unread any more: no second read
    found = await wa.search_messages("MSG 3")
    assert [m.text for m in found.messages] == ["msg 3"]
    assert (await wa.search_messages("msg", chat=P2)).messages == []


async def test_the_client_gets_contacts_and_the_typed_refusals(gateway):
    client, wa = gateway
    await _inbound(client, "C-1")
    contacts = (await wa.contacts()).contacts
    assert [(c.phone_number, c.push_name) for c in contacts] == [(P1, "Ann")]
    client.worker.contacts[P1] = {"on_whatsapp": True, "lid": "12345@lid", "picture_url": "https://pps/ann.jpg"}
    one = await wa.contact(P1, picture=True)
    assert (one.phone_number, one.on_whatsapp, one.lid, one.picture_url) == (P1, True, "12345@lid",
                                                                             "https://pps/ann.jpg")
    assert (await wa.contact(P1)).picture_url is None  # only when asked for
    with pytest.raises(errors.ChatNotFound):
        await wa.chat_messages("+15550001234")
    with pytest.raises(errors.InvalidChat):
        await wa.chat_messages("not-a-chat")
    with pytest.raises(errors.NotFoundError):  # no such account
        await wa.account("nobody").chats()


async def test_the_blocking_client_has_the_same_methods(gateway):
    client, _ = gateway
    await _inbound(client, "B-1", text="sync hello")
    url = str(client.make_url("")).rstrip("/")

    def blocking():
        with Client(url, api_key=KEY) as wa:
            return [c.id for c in wa.chats().chats], [m.text for m in wa.iter_chat_messages(P1)]
    assert await asyncio.to_thread(blocking) == ([P1], ["sync hello"])


async def test_the_cli_lists_shows_reads_and_searches_chats_and_contacts(gateway, capsys):
    client, wa = gateway
    assert await run_cli(wa, capsys, "chats") == (cli.OK, "no chats\n")
    await _inbound(client, "L-1", text="first line\nsecond <b>line</b>", at=time.time() - 5)
    await wa.send(P1, "answer")
    code, out = await run_cli(wa, capsys, "chats")
    assert code == cli.OK and out.splitlines()[1].split()[:3] == [P1, "contact", "1"]
    code, out = await run_cli(wa, capsys, "chats", "show", P1)
    rows = out.splitlines()[1:]
    assert "Ann" in rows[0] and rows[0].endswith("first line second <b>line</b>") and " me " in rows[1]
    code, out = await run_cli(wa, capsys, "chats", "read", P1)
    assert out.startswith(f"read {P1} (")
    assert (await run_cli(wa, capsys, "chats", "read", P1))[1] == f"nothing unread in {P1}\n"
    code, out = await run_cli(wa, capsys, "chats", "search", "ANSWER", "--json")
    assert [m["text"] for m in json.loads(out)] == ["answer"]
    with pytest.raises(cli.Done) as usage:
        await run_cli(wa, capsys, "chats", "show")
    assert usage.value.code == cli.USAGE
    code, out = await run_cli(wa, capsys, "contacts")
    assert P1 in out and "Ann" in out
    client.worker.contacts[P1] = {"on_whatsapp": True, "lid": "12345@lid", "picture_url": "https://pps/ann.jpg"}
    code, out = await run_cli(wa, capsys, "contacts", P1, "--picture")
    assert "on whatsapp  yes" in out and "picture      https://pps/ann.jpg" in out


def test_wa_gateway_on_the_host_hands_chats_and_contacts_to_the_client_cli():
    subcommands = next(a for a in cli.parser()._actions if a.dest == "command").choices
    assert {"chats", "contacts"} <= set(subcommands) and {"chats", "contacts"} <= CLIENT_COMMANDS
