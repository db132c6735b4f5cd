"""The SSE streams are bounded (service/http/sse_hub.py, service/http/views/stream.py): capped per API key and in total
(429 too_many_streams with Retry-After), fed from one reader of the event log instead of one query per
stream per event, and a stream ends (to be resumed from the log) rather than queue without bound."""

from __future__ import annotations

import asyncio
import time

from service.http.app import create_app
from service.http.appkeys import DATABASE, NOTIFIER, STREAMS
from service.store import event_log
from tests.helpers.inprocess import AUTH, settings


async def open_stream(client, headers=AUTH, after: str | None = None):
    path = "/events/stream" + (f"?after={after}" if after is not None else "")
    return await client.get(path, headers=headers)


async def test_streams_are_capped_per_key_and_in_total(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(settings(tmp_path, WA_SSE_MAX_PER_KEY="2", WA_SSE_MAX="3")))
    first = [await open_stream(client) for _ in range(2)]
    assert all(r.status == 200 for r in first)
    third = await open_stream(client)
    assert third.status == 429 and third.headers["Retry-After"].isdigit()
    assert (await third.json())["error"]["code"] == "too_many_streams"
    key = (await (await client.post("/accounts/default/keys", json={}, headers=AUTH)).json())["key"]
    scoped = {"X-API-Key": key}
    assert (await open_stream(client, scoped)).status == 200  # another key has its own share
    assert (await open_stream(client, scoped)).status == 429  # ... up to the total
    metrics = await (await client.get("/metrics", headers=AUTH)).text()
    assert "wa_gateway_sse_streams 3.0" in metrics and "wa_gateway_sse_streams_max 3.0" in metrics
    first[0].close()
    await asyncio.sleep(0.05)  # the server notices the closed stream at its next wake-up at the latest
    hub = client.app[STREAMS]
    deadline = time.monotonic() + 20
    while hub.streams > 2 and time.monotonic() < deadline:
        client.app[NOTIFIER].notify()
        await asyncio.sleep(0.1)
    assert (await open_stream(client, scoped)).status == 200  # a closed one frees its place


async def test_one_read_of_the_log_serves_every_stream(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(settings(tmp_path, WA_SSE_MAX_PER_KEY="20")))
    db, hub = client.app[DATABASE], client.app[STREAMS]
    reads = []
    run = hub._run_db  # the hub keeps the store's run it was built with: count there, not on db.run

    async def counting(fn, *args, **kwargs):
        if fn is event_log.after:
            reads.append(args)
        return await run(fn, *args, **kwargs)
    hub._run_db = counting
    streams = [await open_stream(client) for _ in range(10)]
    reads.clear()
    for n in range(5):
        await db.run(event_log.append, "default", "session.status", {"state": f"s{n}"}, time.time())
        client.app[NOTIFIER].notify()
        await asyncio.sleep(0.05)
    for s in streams:  # every stream got all five, in order
        got = []
        while len(got) < 5:
            line = await asyncio.wait_for(s.content.readline(), 5)
            if line.startswith(b"data:"):
                got.append(line)
        assert [b'"s%d"' % n in g for n, g in enumerate(got)] == [True] * 5
    assert 1 <= len(reads) <= 10, f"{len(reads)} reads of the log for 5 events and 10 streams"


async def test_a_resumed_stream_gets_its_backlog_then_live_events_once_each(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(settings(tmp_path)))
    db = client.app[DATABASE]
    for n in range(3):
        await db.run(event_log.append, "default", "session.status", {"state": f"old{n}"}, time.time())
    resp = await open_stream(client, after="0")
    await db.run(event_log.append, "default", "session.status", {"state": "new"}, time.time())
    client.app[NOTIFIER].notify()
    ids = []
    while len(ids) < 4:
        line = await asyncio.wait_for(resp.content.readline(), 5)
        if line.startswith(b"id:"):
            ids.append(int(line.split(b":")[1]))
    assert ids == [1, 2, 3, 4]
