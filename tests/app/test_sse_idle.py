"""The SSE hub while no stream is open (service/http/sse_hub.py): it reads no rows of the log for nobody, only
where the log ends, so that a stream opened later without a cursor starts there: it gets what happens from then
on and nothing from before."""

from __future__ import annotations

import asyncio
import time

from service.http.app import create_app
from service.http.appkeys import DATABASE, NOTIFIER, STREAMS
from service.store import event_log
from tests.helpers.inprocess import AUTH, settings


async def test_no_rows_are_read_for_nobody_and_a_later_stream_starts_at_the_end(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(settings(tmp_path)))
    db, hub = client.app[DATABASE], client.app[STREAMS]
    reads = []
    run = hub._run_db  # what the hub reads the store with (bound when the app started)

    async def counting(fn, *args, **kwargs):
        if fn is event_log.after:
            reads.append(args)
        return await run(fn, *args, **kwargs)

    hub._run_db = counting
    for n in range(5):  # no stream open: the hub hears of each, reads none
        await db.run(event_log.append, "default", "session.status", {"state": f"before{n}"}, time.time())
        client.app[NOTIFIER].notify()
        await asyncio.sleep(0.05)
    assert reads == []
    resp = await client.get("/events/stream", headers=AUTH)
    assert resp.status == 200
    await asyncio.sleep(0.05)
    await db.run(event_log.append, "default", "session.status", {"state": "after"}, time.time())
    client.app[NOTIFIER].notify()
    line = b""
    while not line.startswith(b"data:"):
        line = await asyncio.wait_for(resp.content.readline(), 5)
    assert b'"after"' in line, line  # the first event it gets is the one that happened after it opened
    resp.close()
