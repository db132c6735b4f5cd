"""The webhook deliveries API in-process (list, get, redrive one and in bulk), on the harness's database and
webhook service."""

from __future__ import annotations

import time

import pytest
from aiohttp import web

from service.http.appkeys import DATABASE, SETTINGS, WEBHOOKS
from service.http.middlewares import MIDDLEWARES, setup_security
from service.http.views import webhooks as views
from service.settings import Settings
from service.store import webhooks as store
from service.webhooks.delivery import (
    Policy,
)
from tests.helpers.webhook_harness import P1, P2, assert_all_verified, until

# --- the API ----------------------------------------------------------------------------------------

KEY = "test-key-webhooks"
AUTH = {"X-API-Key": KEY}


@pytest.fixture
async def api(h, aiohttp_client, tmp_path):
    async def build(urls, **policy):
        settings = Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_API_KEY": KEY})
        app = web.Application(middlewares=MIDDLEWARES)
        app[SETTINGS] = settings
        setup_security(app)
        app[DATABASE] = h.db
        app[WEBHOOKS] = await h.service(urls, policy=Policy(**{"timeout": 2, "retry_base": 0.01,
                                                               "retry_max": 0.02, **policy}))
        app.router.add_get("/webhooks/deliveries", views.list_deliveries)
        app.router.add_post("/webhooks/deliveries/retry", views.retry_failed)
        app.router.add_get("/webhooks/deliveries/{id}", views.get_delivery)
        app.router.add_post("/webhooks/deliveries/{id}/retry", views.retry_delivery)
        return await aiohttp_client(app)
    return build


async def test_failed_deliveries_are_listed_and_redriven_one_and_in_bulk(h, api):
    mode = {"answer": 400}
    rec = h.receiver(lambda r: mode["answer"])
    client = await api([rec.url])
    evs = [h.event(subject=p) for p in (P1, P2, "+15550004444")]
    for ev in evs:
        await h.status(ev["id"], "failed")
    res = await client.get("/webhooks/deliveries?status=failed", headers=AUTH)
    body = await res.json()
    assert res.status == 200 and [d["event_id"] for d in body["deliveries"]] == [e["id"] for e in reversed(evs)]
    one = body["deliveries"][-1]
    assert one["status"] == "failed" and one["last_error"] == "rejected: HTTP 400" and one["active"] is True
    assert one["endpoint"] == rec.url and "event" not in one

    mode["answer"] = 200
    res = await client.post(f"/webhooks/deliveries/{one['id']}/retry", headers=AUTH)
    again = await res.json()
    assert res.status == 200 and again["status"] == "pending" and again["attempts"] == 0
    await h.status(evs[0]["id"], "delivered")
    res = await client.get(f"/webhooks/deliveries/{one['id']}", headers=AUTH)
    got = await res.json()
    assert got["status"] == "delivered" and got["attempts"] == 1 and got["event"]["id"] == evs[0]["id"]
    assert h.delivery(evs[1]["id"])["status"] == "failed"  # the others were left alone

    res = await client.post(f"/webhooks/deliveries/{one['id']}/retry", headers=AUTH)
    assert res.status == 409 and (await res.json())["error"]["code"] == "not_failed"
    res = await client.post("/webhooks/deliveries/whd_nope/retry", headers=AUTH)
    assert res.status == 404 and (await res.json())["error"]["code"] == "delivery_not_found"

    listed = {s: [d["event_id"] for d in (await (await client.get(f"/webhooks/deliveries?status={s}",
                                                                   headers=AUTH)).json())["deliveries"]]
              for s in store.STATUSES}
    assert listed == {"pending": [], "delivered": [evs[0]["id"]], "failed": [evs[2]["id"], evs[1]["id"]]}
    res = await client.post("/webhooks/deliveries/retry", json={"endpoint": rec.url}, headers=AUTH)
    assert res.status == 200 and await res.json() == {"retried": 2}
    for ev in evs[1:]:
        await h.status(ev["id"], "delivered")
    res = await client.post("/webhooks/deliveries/retry", headers=AUTH)
    assert await res.json() == {"retried": 0}
    assert_all_verified(rec)
    assert len({r.id for r in rec.delivered()}) == 3


async def test_a_redriven_delivery_gets_a_fresh_max_age(h, api):
    mode = {"answer": 400}
    rec = h.receiver(lambda r: mode["answer"])
    client = await api([rec.url], max_age=0.3)
    ev = h.event()
    d = await h.status(ev["id"], "failed")
    await until(lambda: time.time() > d["expires_at"], what="past its first max age")
    mode["answer"] = 200
    res = await client.post(f"/webhooks/deliveries/{d['id']}/retry", headers=AUTH)
    assert res.status == 200
    await h.status(ev["id"], "delivered")


async def test_deliveries_page_newest_first_with_a_cursor(h, api):
    rec = h.receiver()
    client = await api([rec.url])
    evs = [h.event() for _ in range(5)]
    await h.status(evs[-1]["id"], "delivered")
    seen, cursor = [], None
    while True:
        res = await client.get("/webhooks/deliveries?limit=2" + (f"&cursor={cursor}" if cursor else ""), headers=AUTH)
        page = await res.json()
        seen += [d["event_id"] for d in page["deliveries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in reversed(evs)]


@pytest.mark.parametrize("query, code", [("status=lost", "invalid_status"), ("limit=0", "invalid_limit"),
                                         ("limit=201", "invalid_limit"), ("cursor=zzz", "invalid_cursor"),
                                         ("endpoint=http://nowhere/", "endpoint_not_found")])
async def test_bad_list_queries_are_400_or_404(h, api, query, code):
    client = await api([])
    res = await client.get(f"/webhooks/deliveries?{query}", headers=AUTH)
    assert (await res.json())["error"]["code"] == code and res.status in (400, 404)


async def test_the_webhook_api_needs_the_api_key(h, api):
    client = await api([])
    for method, path in [("GET", "/webhooks/deliveries"), ("GET", "/webhooks/deliveries/x"),
                         ("POST", "/webhooks/deliveries/x/retry"), ("POST", "/webhooks/deliveries/retry")]:
        res = await client.request(method, path)
        assert res.status == 401, path
