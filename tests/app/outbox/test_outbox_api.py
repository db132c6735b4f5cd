"""The outbox's HTTP API in-process (POST /send, GET/DELETE /messages), against a stand-in worker on the
worker's unix socket (tests/helpers/fake_worker.py, the ``api`` fixture in conftest.py)."""

from __future__ import annotations

import time

import pytest

from service.http.appkeys import DATABASE
from service.store import outbox
from tests.helpers.fake_worker import (
    AUTH,
    P1,
    P2,
    error_of,
    until,
)


async def test_send_answers_200_sent_when_connected_and_202_queued_when_not(api):
    client = await api()
    res = await client.post("/send", json={"phone_number": P1, "message": "hello"}, headers=AUTH)
    body = await res.json()
    assert res.status == 200 and body["status"] == "sent" and body["phone_number"] == P1, body
    assert client.worker.sends == [{"phone_number": P1, "text": "hello", "id": outbox.wa_id_for(body["id"])}]
    assert "message" not in body  # the text is never echoed by POST /send
    client.worker.state = "connecting"
    res = await client.post("/send?wait=0.3", json={"phone_number": P1, "message": "later"}, headers=AUTH)
    queued = await res.json()
    assert res.status == 202 and queued["status"] == "queued", queued
    assert res.headers["Location"] == f"/messages/{queued['id']}"
    got = await (await client.get(f"/messages/{queued['id']}", headers=AUTH)).json()
    assert got["status"] == "queued" and got["message"] == "later" and got["attempts"] == 0
    client.worker.state = "logged_out"
    await error_of(await client.post("/send", json={"phone_number": P1, "message": "x"}, headers=AUTH),
                   409, "not_linked")


async def test_idempotency_key_replays_and_refuses_a_different_body(api):
    client = await api()
    client.worker.state = "connecting"
    headers = {**AUTH, "Idempotency-Key": "order-42"}
    first = await client.post("/send?wait=0", json={"phone_number": P1, "message": "a"}, headers=headers)
    again = await client.post("/send?wait=0", json={"phone_number": P1, "message": "a"}, headers=headers)
    assert first.status == again.status == 202
    assert (await first.json())["id"] == (await again.json())["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    await error_of(await client.post("/send", json={"phone_number": P1, "message": "b"}, headers=headers),
                   409, "idempotency_key_reused")
    client.worker.state = "logged_out"  # a replay still answers with the original, linked or not
    replay = await client.post("/send?wait=0", json={"phone_number": P1, "message": "a"}, headers=headers)
    assert (await replay.json())["id"] == (await first.json())["id"]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9", "tab\tkey"])
async def test_a_malformed_idempotency_key_is_400(api, key):
    client = await api()
    headers = {**AUTH, "Idempotency-Key": key.encode("utf-8").decode("latin-1")}
    res = await client.post("/send", json={"phone_number": P1, "message": "a"}, headers=headers)
    await error_of(res, 400, "invalid_idempotency_key")
    assert (await (await client.get("/messages", headers=AUTH)).json())["messages"] == []  # nothing stored


async def test_list_get_cancel_and_bad_input(api):
    client = await api()
    client.worker.state = "connecting"
    ids = []
    for i in range(5):
        res = await client.post("/send?wait=0", json={"phone_number": P1 if i % 2 else P2, "message": f"m{i}"},
                                headers=AUTH)
        ids.append((await res.json())["id"])
    page = await (await client.get("/messages?limit=2", headers=AUTH)).json()
    assert [m["id"] for m in page["messages"]] == ids[:-3:-1] and page["next_cursor"]
    rest = await (await client.get(f"/messages?limit=10&cursor={page['next_cursor']}", headers=AUTH)).json()
    assert [m["id"] for m in rest["messages"]] == ids[2::-1] and rest["next_cursor"] is None
    # The dispatcher still believed WhatsApp connected: it tries once, learns, and gives the attempt back.
    await until(lambda: client.app[DATABASE].call(
        lambda c: c.execute("SELECT COUNT(*) FROM messages WHERE status = 'sending'").fetchone()[0]) == 0)
    p1 = await (await client.get(f"/messages?phone_number={P1.replace('+', '%2B')}&status=queued", headers=AUTH)).json()
    assert [m["id"] for m in p1["messages"]] == [ids[3], ids[1]]
    cancelled = await client.delete(f"/messages/{ids[0]}", headers=AUTH)
    body = await cancelled.json()
    assert cancelled.status == 200 and (body["status"], body["reason"]) == ("failed", "cancelled")
    assert body["timestamps"]["failed"]
    await client.app[DATABASE].run(outbox.mark_sending, ids[1], time.time(), False)
    await error_of(await client.delete(f"/messages/{ids[1]}", headers=AUTH), 409, "not_cancellable")
    await error_of(await client.get("/messages/01NOPE", headers=AUTH), 404, "message_not_found")
    await error_of(await client.delete("/messages/01NOPE", headers=AUTH), 404, "message_not_found")
    for query, code in [("limit=0", "invalid_limit"), ("limit=x", "invalid_limit"), ("status=lost", "invalid_status"),
                        ("cursor=%21%21", "invalid_cursor"), ("direction=sideways", "invalid_direction"),
                        ("direction=in&status=sent", "invalid_status"),
                        ("phone_number=12", "invalid_phone_number")]:
        await error_of(await client.get(f"/messages?{query}", headers=AUTH), 400, code)
    for wait in ("-1", "abc", "nan", "61"):
        await error_of(await client.post(f"/send?wait={wait}", json={"phone_number": P1, "message": "x"}, headers=AUTH),
                       400, "invalid_wait")
    for method, path in [("GET", "/messages"), ("GET", f"/messages/{ids[0]}"), ("DELETE", f"/messages/{ids[0]}")]:
        assert (await client.request(method, path)).status == 401


async def test_a_full_outbox_is_503_with_retry_after(api):
    client = await api(WA_OUTBOX_MAX="2")
    client.worker.state = "connecting"
    for i in range(2):
        res = await client.post("/send?wait=0", json={"phone_number": P1, "message": str(i)}, headers=AUTH)
        assert res.status == 202
    res = await client.post("/send?wait=0", json={"phone_number": P1, "message": "x"}, headers=AUTH)
    await error_of(res, 503, "outbox_full")
    assert res.headers["Retry-After"] == "5"
