"""Webhooks of one account (issue 10), the API: managed through the app's own middlewares and routes, scoped keys
limited to their own account's webhooks, and the whole app signing with the endpoint's own secret."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from service.http.appkeys import DATABASE, WEBHOOKS
from service.settings import Settings
from service.store import event_log
from service.store import webhooks as store
from tests.helpers.account_webhooks import (
    AUTH,
    KEY,
    P1,
    SALES,
    SUPPORT,
    deliveries,
    event,
    scoped_key,
)
from tests.helpers.webhook_harness import SECRET, assert_all_verified, until


async def test_manage_an_accounts_webhooks_by_api(h, api):
    rec = h.receiver()
    client = await api(WA_WEBHOOK_MAX_PER_ACCOUNT="2")
    secret_url = rec.url + "?token=abc"
    res = await client.post("/accounts/sales/webhooks", json={"url": secret_url, "events": ["message.received"]},
                            headers=AUTH)
    made = await res.json()
    assert res.status == 201, made
    assert made["id"].startswith("whe_") and made["url"] == rec.url + "?***" and made["active"] is True
    assert made["events"] == ["message.received"] and made["created_at"].endswith("Z")
    assert res.headers["Location"] == f"/accounts/sales/webhooks/{made['id']}"
    assert SECRET not in await res.text()  # the global secret is not an account's
    own = made.pop("secret")  # its own, shown this once
    assert own.startswith("whsec_") and res.headers["Cache-Control"] == "no-store"
    rec.trust(own)
    res = await client.get("/accounts/sales/webhooks", headers=AUTH)
    assert await res.json() == {"webhooks": [made]} and own not in await res.text()
    assert (await (await client.get("/accounts/support/webhooks", headers=AUTH)).json()) == {"webhooks": []}

    ev = event(h, SALES)
    await h.status(ev["id"], "delivered", url=made["id"])
    res = await client.get("/accounts/sales/webhooks/deliveries", headers=AUTH)
    [d] = (await res.json())["deliveries"]
    assert d["event_id"] == ev["id"] and d["endpoint"] == rec.url + "?***" and d["active"] is True
    res = await client.get(f"/accounts/sales/webhooks/deliveries?endpoint={made['id']}", headers=AUTH)
    assert [x["id"] for x in (await res.json())["deliveries"]] == [d["id"]]
    res = await client.get(f"/accounts/sales/webhooks/deliveries/{d['id']}", headers=AUTH)
    assert (await res.json())["event"]["id"] == ev["id"]
    assert (await client.get(f"/accounts/support/webhooks/deliveries/{d['id']}", headers=AUTH)).status == 404
    # The global listing keeps its meaning: every delivery.
    res = await client.get("/webhooks/deliveries", headers=AUTH)
    assert [x["id"] for x in (await res.json())["deliveries"]] == [d["id"]]

    res = await client.post("/accounts/sales/webhooks", json={"url": secret_url}, headers=AUTH)
    assert res.status == 409 and (await res.json())["error"]["code"] == "webhook_exists"
    res = await client.post("/accounts/support/webhooks", json={"url": secret_url}, headers=AUTH)
    assert res.status == 201 and (await res.json())["events"] == list(event_log.TYPES)
    res = await client.post("/accounts/sales/webhooks", json={"url": rec.url + "/2"}, headers=AUTH)
    assert res.status == 201
    res = await client.post("/accounts/sales/webhooks", json={"url": rec.url + "/3"}, headers=AUTH)
    assert res.status == 409 and (await res.json())["error"]["code"] == "too_many_webhooks"

    res = await client.delete(f"/accounts/sales/webhooks/{made['id']}", headers=AUTH)
    body = await res.json()
    assert res.status == 200 and body["deleted"] is True and body["active"] is False
    assert made["id"] not in h.services[-1].workers
    res = await client.delete(f"/accounts/sales/webhooks/{made['id']}", headers=AUTH)
    assert res.status == 404 and (await res.json())["error"]["code"] == "webhook_not_found"
    res = await client.get("/accounts/sales/webhooks", headers=AUTH)
    assert [w["url"] for w in (await res.json())["webhooks"]] == [rec.url + "/2"]
    # The same URL again after its removal: a new endpoint (from now on).
    res = await client.post("/accounts/sales/webhooks", json={"url": secret_url}, headers=AUTH)
    assert res.status == 201 and (await res.json())["id"] != made["id"]


@pytest.mark.parametrize("body, code", [
    ({}, "invalid_url"), ({"url": 5}, "invalid_url"), ({"url": "ftp://x.example/"}, "invalid_url"),
    ({"url": "http://x.example/a b"}, "invalid_url"), ({"url": "http:///nohost"}, "invalid_url"),
    ({"url": "http://x.example/#frag"}, "invalid_url"), ({"url": "http://x.example/" + "a" * 3000}, "invalid_url"),
    ({"url": "http://x.example/", "events": []}, "invalid_events"),
    ({"url": "http://x.example/", "events": ["message.sent"]}, "invalid_events"),
    ({"url": "http://x.example/", "events": "message.received"}, "invalid_events"),
])
async def test_bad_webhooks_are_400_and_change_nothing(h, api, body, code):
    client = await api()
    res = await client.post("/accounts/sales/webhooks", json=body, headers=AUTH)
    err = await res.json()
    assert res.status == 400 and err["error"]["code"] == code
    assert "x.example" not in err["error"]["message"]  # a URL may carry credentials: never echoed
    assert h.db.call(store.account_endpoints) == []


async def test_unknown_accounts_are_404(h, api):
    client = await api()
    for method, path in [("GET", "/accounts/nope/webhooks"), ("POST", "/accounts/nope/webhooks"),
                         ("DELETE", "/accounts/nope/webhooks/whe_x"), ("GET", "/accounts/nope/webhooks/deliveries")]:
        res = await client.request(method, path, json={"url": "http://x.example/"}, headers=AUTH)
        assert res.status == 404 and (await res.json())["error"]["code"] == "account_not_found", path


async def test_a_scoped_key_manages_its_own_accounts_webhooks_only(h, api):
    rec = h.receiver(lambda r: 400)  # everything dead-letters at once
    client = await api([rec.url])
    sales, support = scoped_key(h, SALES), scoped_key(h, SUPPORT)
    res = await client.post("/accounts/sales/webhooks", json={"url": rec.url}, headers=sales)
    assert res.status == 201
    mine = (await res.json())["id"]
    rec.trust((await res.json())["secret"])
    res = await client.post("/accounts/support/webhooks", json={"url": rec.url}, headers=support)
    theirs = (await res.json())["id"]
    e_sales, e_support = event(h, SALES), event(h, SUPPORT)
    for ev, ep in [(e_sales, mine), (e_support, theirs), (e_sales, rec.url), (e_support, rec.url)]:
        await h.status(ev["id"], "failed", url=ep)
    their_delivery = deliveries(h, endpoint=theirs)[0]

    for method, path in [("GET", "/accounts/support/webhooks"), ("POST", "/accounts/support/webhooks"),
                         ("DELETE", f"/accounts/support/webhooks/{theirs}"),
                         ("GET", "/accounts/support/webhooks/deliveries"),
                         ("POST", "/accounts/support/webhooks/deliveries/retry"),
                         ("POST", f"/accounts/support/webhooks/deliveries/{their_delivery['id']}/retry"),
                         ("GET", "/webhooks/deliveries"), ("POST", "/webhooks/deliveries/retry")]:
        res = await client.request(method, path, json={"url": rec.url + "/x"}, headers=sales)
        assert res.status == 403 and (await res.json())["error"]["code"] == "forbidden", (method, path)

    # Its own listing: only the deliveries to its own endpoints (not those to the global one).
    res = await client.get("/accounts/sales/webhooks/deliveries", headers=sales)
    assert [(d["event_id"], d["status"]) for d in (await res.json())["deliveries"]] == [(e_sales["id"], "failed")]
    # Another account's delivery is unknown under its own routes.
    res = await client.post(f"/accounts/sales/webhooks/deliveries/{their_delivery['id']}/retry", headers=sales)
    assert res.status == 404
    res = await client.get(f"/accounts/sales/webhooks/deliveries?endpoint={theirs}", headers=sales)
    assert res.status == 404 and (await res.json())["error"]["code"] == "endpoint_not_found"
    # Its bulk redrive touches its own failed deliveries only.
    res = await client.post("/accounts/sales/webhooks/deliveries/retry", headers=sales)
    assert await res.json() == {"retried": 1}
    statuses = {d["endpoint"]: d["status"] for d in deliveries(h)}
    assert statuses[theirs] == "failed" and statuses[rec.url] == "failed"
    res = await client.delete(f"/accounts/sales/webhooks/{mine}", headers=sales)
    assert res.status == 200
    assert set(h.services[-1].workers) == {rec.url, theirs}


async def test_account_deletion_through_the_api_stops_its_webhook_workers(h, api):
    rec = h.receiver()
    client = await api()
    res = await client.post("/accounts/sales/webhooks", json={"url": rec.url}, headers=AUTH)
    ep = (await res.json())["id"]
    assert ep in h.services[-1].workers
    res = await client.delete("/accounts/sales", headers=AUTH)
    assert res.status == 200
    assert h.services[-1].workers == {}
    assert h.db.call(store.get_endpoint, ep) is None


async def test_through_the_app_an_account_webhook_is_signed_with_its_own_secret_not_the_global_one(
        aiohttp_client, tmp_path):
    """The whole app (no worker runs), the receiver allowed by WA_WEBHOOK_ALLOW_PRIVATE: an account webhook
    signs with the secret its creation showed; the data dir's global secret (made for the admin's test ping)
    does not verify it."""
    from service.http.app import create_app
    from service.webhooks import secret as webhook_secret
    from tests.helpers.webhook_receiver import Receiver

    data = tmp_path / "data"
    settings = Settings.from_env({"WA_DATA_DIR": str(data), "WA_RUN_DIR": str(tmp_path / "run"), "WA_API_KEY": KEY,
                                  "WA_WEBHOOK_ALLOW_PRIVATE": "127.0.0.1"})
    app = create_app(settings)
    client = await aiohttp_client(app)
    rec = Receiver(webhook_secret.generate(), None).start()
    try:
        res = await client.post("/accounts/default/webhooks", json={"url": rec.url}, headers=AUTH)
        assert res.status == 201
        own = (await res.json())["secret"]
        assert not (data / webhook_secret.FILE_NAME).exists()  # no global secret was needed for it
        rec.trust(own)
        ev = app[DATABASE].call(event_log.append, "default", "message.received", {"text": "hi"}, time.time(),
                                subject=P1)
        app[WEBHOOKS].notify()
        await until(lambda: rec.delivered(), what="the delivery")
        assert [r.id for r in rec.delivered()] == [ev["id"]]
        assert_all_verified(rec)
        [req] = rec.snapshot()
        glob = webhook_secret.load_or_create(data).first
        with pytest.raises(WebhookVerificationError):
            Webhook(glob).verify(req.body, req.headers)
    finally:
        rec.stop()
