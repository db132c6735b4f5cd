"""/health with many accounts (issue 28): the answer counts every account by WhatsApp state from what each shard's
change watch keeps (service/runtime/shard_watch.py), without a request per account to the worker: at 300 accounts
asking each one made /health's p99 2.4 s and its CPU grow with the accounts. Here for the ``api`` fixture (the
in-process app in front of the outbox tests' stand-in worker)."""

from __future__ import annotations

from service.http.appkeys import ACCOUNTS as ACCOUNTS_KEY
from tests.helpers.fake_worker import AUTH, get_json, until

ACCOUNTS = 40


async def test_health_counts_every_account_without_asking_each_ones_worker(api):
    client = await api(WA_MAX_ACCOUNTS=str(ACCOUNTS + 1))
    for n in range(ACCOUNTS):
        res = await client.post("/accounts", json={"name": f"acct-{n:02d}"}, headers=AUTH)
        assert res.status == 201, await res.text()
    # the stand-in worker says every account it was told of is connected; the watch brings that to each link
    runtime = client.server.app[ACCOUNTS_KEY]
    await until(lambda: all(runtime.get(n).link.state == "connected" for n in runtime.names()))
    client.worker.status_asks.clear()
    body = await get_json(client, "/health")
    assert body["accounts"] == {"connected": ACCOUNTS + 1}, body
    asked = [a for a in client.worker.status_asks if a not in ("", "default")]
    assert asked == [], f"/health asked the worker for {len(asked)} accounts' status"


async def test_health_shows_an_account_the_watch_saw_leave_connected(api):
    client = await api(WA_MAX_ACCOUNTS="5")
    res = await client.post("/accounts", json={"name": "other"}, headers=AUTH)
    assert res.status == 201
    runtime = client.server.app[ACCOUNTS_KEY]
    await until(lambda: runtime.get("other").link.state == "connected")
    client.worker.state = "reconnecting"  # a change: the shard's long-poll answers it at once
    await until(lambda: runtime.get("other").link.state == "reconnecting")
    body = await get_json(client, "/health")
    assert body["accounts"] == {"reconnecting": 2}, body
