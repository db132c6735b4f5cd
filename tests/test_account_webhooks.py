"""Webhooks of one account (issue 10): endpoints stored in the database and managed by API, each getting
only its account's events, independent of any other endpoint with the same URL, stopped when removed
or when their account is deleted, and resumed from the database after a restart. In-process against a
real SQLite file and real HTTP receivers on loopback ports (every request verified with the
``standardwebhooks`` reference package); the API through the app's own middlewares and routes."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from service.auth.scoped_keys import new_key
from service.http.appkeys import ACCOUNTS, DATABASE, SETTINGS, WEBHOOKS
from service.http.middlewares import MIDDLEWARES, setup_security
from service.http.routes import setup_routes
from service.settings import Settings
from service.store import accounts as registry
from service.store import event_log as events
from service.store import webhooks as store
from service.store.db import Database
from tests.test_webhooks import SECRET, Harness, assert_all_verified, until

SALES, SUPPORT = "sales", "support"
P1, P2 = "+15550002222", "+15550003333"
KEY = "test-key-account-webhooks"
AUTH = {"X-API-Key": KEY}


@pytest.fixture
async def h(tmp_path):
    harness = Harness(tmp_path)
    now = time.time()
    harness.db.call(registry.ensure_default, now)
    for name in (SALES, SUPPORT):
        harness.db.call(registry.create, name, 0, now, 100)
    yield harness
    await harness.stop_services()
    harness.db.close()
    for rec in harness.receivers:
        rec.stop()


def event(h: Harness, account: str, subject: str = P1) -> dict:
    return h.db.call(events.append, account, "message.received", {"text": "hi"}, time.time(), subject=subject)


def deliveries(h: Harness, **where) -> list[dict]:
    sql = "SELECT * FROM webhook_deliveries" + (" WHERE " + " AND ".join(f"{k} = ?" for k in where) if where else "")
    return h.db.call(lambda c: [dict(r) for r in c.execute(sql + " ORDER BY seq", tuple(where.values()))])


async def add(svc, account: str, rec, types=events.TYPES, limit: int = 10) -> dict:
    """An account endpoint to ``rec``, which then verifies with the endpoint's own secret (shown at creation)."""
    ep = await svc.add_account_endpoint(account, rec.url, types, limit)
    rec.trust(ep["secret"])
    return ep


def delivered_ids(rec) -> set[str]:
    return {r.id for r in rec.delivered()}


# --- delivery -------------------------------------------------------------------------------------

async def test_an_account_endpoint_gets_only_its_accounts_events_from_now_on(h):
    rec_global, rec_sales = h.receiver(), h.receiver()
    svc = await h.service([rec_global.url])
    before = event(h, SALES)  # history: not sent to an endpoint added later
    ep = await add(svc, SALES, rec_sales, events.TYPES, 10)
    evs = {a: event(h, a) for a in ("default", SALES, SUPPORT)}
    await until(lambda: delivered_ids(rec_global) >= {before["id"], *(e["id"] for e in evs.values())},
                what="the global endpoint gets every account's events")
    await h.status(evs[SALES]["id"], "delivered", url=ep["id"])
    assert delivered_ids(rec_sales) == {evs[SALES]["id"]}
    assert {d["account"] for d in deliveries(h, endpoint=ep["id"])} == {SALES}
    for r in rec_sales.delivered():
        assert r.event["account"] == SALES
    assert_all_verified(rec_sales)  # signed with the same secret as the global endpoints
    assert_all_verified(rec_global)


async def test_the_same_url_for_two_accounts_and_globally_is_three_independent_endpoints(h):
    rec = h.receiver()
    svc = await h.service([rec.url])
    ep_sales = await add(svc, SALES, rec, events.TYPES, 10)
    ep_support = await add(svc, SUPPORT, rec, events.TYPES, 10)
    assert len({ep_sales["id"], ep_support["id"], rec.url}) == 3 and len(svc.workers) == 3
    e_sales, e_support = event(h, SALES), event(h, SUPPORT)
    await until(lambda: len(rec.delivered()) == 4, what="four deliveries")
    assert sorted(r.id for r in rec.delivered()) == sorted([e_sales["id"]] * 2 + [e_support["id"]] * 2)
    assert {d["event_id"] for d in deliveries(h, endpoint=ep_sales["id"])} == {e_sales["id"]}
    assert {d["event_id"] for d in deliveries(h, endpoint=ep_support["id"])} == {e_support["id"]}
    assert {d["event_id"] for d in deliveries(h, endpoint=rec.url)} == {e_sales["id"], e_support["id"]}
    # Each has its own cursor: removing one leaves the others delivering.
    await svc.remove_account_endpoint(SUPPORT, ep_support["id"])
    e2 = event(h, SUPPORT)
    await h.status(e2["id"], "delivered", url=rec.url)
    assert deliveries(h, endpoint=ep_support["id"], event_id=e2["id"]) == []
    cursors = {r["id"]: r["cursor"] for r in h.db.call(store.endpoints)}
    assert cursors[ep_sales["id"]] >= e2["seq"] and cursors[ep_support["id"]] < e2["seq"]


async def test_a_removed_endpoint_gets_nothing_more_and_its_pending_delivery_stays_listed(h):
    answer = {"code": 500}
    rec_sales, rec_control = h.receiver(lambda r: answer["code"]), h.receiver()
    svc = await h.service([rec_control.url])
    ep = await add(svc, SALES, rec_sales, events.TYPES, 10)
    first = event(h, SALES)
    await until(lambda: rec_sales.snapshot(), what="a first (failing) attempt")
    removed = await svc.remove_account_endpoint(SALES, ep["id"])
    assert removed["deleted_at"] is not None and ep["id"] not in svc.workers
    seen = len(rec_sales.snapshot())
    answer["code"] = 200
    later = [event(h, SALES, subject=P2) for _ in range(3)]
    for ev in later:
        await h.status(ev["id"], "delivered", url=rec_control.url)
    await h.status(first["id"], "delivered", url=rec_control.url)
    # A live worker would have retried `first` (retry_base 0.05 s) and fanned out `later` by now.
    assert len(rec_sales.snapshot()) == seen
    [pending] = deliveries(h, endpoint=ep["id"])
    assert pending["event_id"] == first["id"] and pending["status"] == "pending"
    assert h.db.call(store.account_endpoints, SALES) == []
    assert await svc.remove_account_endpoint(SALES, ep["id"]) is None  # once only


async def test_deleting_the_account_removes_its_endpoints_and_stops_their_workers(h):
    rec_sales, rec_support = h.receiver(), h.receiver()
    svc = await h.service([])
    ep_sales = await add(svc, SALES, rec_sales, events.TYPES, 10)
    ep_support = await add(svc, SUPPORT, rec_support, events.TYPES, 10)
    h.db.call(registry.delete, SALES)
    assert await svc.forget_account(SALES) == 1
    assert set(svc.workers) == {ep_support["id"]}
    assert [r["id"] for r in h.db.call(store.endpoints)] == [ep_support["id"]]
    assert h.db.call(store.min_cursor) == h.db.call(store.get_endpoint, ep_support["id"])["cursor"]
    event(h, SALES)  # a late event of the deleted account goes nowhere
    ev = event(h, SUPPORT)
    await h.status(ev["id"], "delivered", url=ep_support["id"])
    assert rec_sales.snapshot() == [] and deliveries(h, endpoint=ep_sales["id"]) == []
    # Adding one to a deleted account is refused in the same transaction as the insert.
    with pytest.raises(store.NoAccount):
        await add(svc, SALES, rec_sales, events.TYPES, 10)


async def test_account_endpoints_resume_from_the_database_after_a_restart(h):
    rec, rec_gone = h.receiver(), h.receiver()
    svc = await h.service([])
    ep = await add(svc, SALES, rec, ("message.received",), 10)
    gone = await add(svc, SALES, rec_gone, events.TYPES, 10)
    await svc.remove_account_endpoint(SALES, gone["id"])
    first = event(h, SALES)
    await h.status(first["id"], "delivered", url=ep["id"])
    await h.stop_services()
    while_down = event(h, SALES)  # committed while the gateway is down: sent after the restart
    skipped = h.db.call(events.append, SALES, "session.status", {"state": "open"}, time.time())
    h.reopen()
    svc = await h.service([])  # no WA_WEBHOOK_URL: the account endpoint comes from the database alone
    assert set(svc.workers) == {ep["id"]}
    await h.status(while_down["id"], "delivered", url=ep["id"])
    assert [r.id for r in rec.delivered()] == [first["id"], while_down["id"]]
    assert deliveries(h, event_id=skipped["id"]) == []  # its own event filter survived too
    assert rec_gone.snapshot() == []


async def test_a_global_url_restart_does_not_touch_account_endpoints(h):
    rec = h.receiver()
    svc = await h.service([rec.url])
    ep = await add(svc, SALES, rec, events.TYPES, 10)
    await h.stop_services()
    await h.service([])  # the URL left WA_WEBHOOK_URL: only the global endpoint goes
    rows = {r["id"]: r for r in h.db.call(store.endpoints)}
    assert rows[rec.url]["active"] == 0 and rows[ep["id"]]["active"] == 1


def test_the_migration_keeps_existing_global_endpoints_and_their_deliveries(tmp_path):
    from service.store.db import connect, migrate, migrations

    path = tmp_path / "old.db"
    conn = connect(path)
    old = tmp_path / "mig"
    old.mkdir()
    for version, name, sql in migrations():
        if version < 5:
            (old / f"{version:03d}_{name}.sql").write_text(sql)
    migrate(conn, old)
    conn.execute("INSERT INTO webhook_endpoints (url, cursor, active, created_at, updated_at) "
                 "VALUES ('https://a.example/h', 7, 1, 1.0, 2.0)")
    conn.close()
    db = Database(path).open()
    try:
        assert db.applied == [v for v, _, _ in migrations() if v >= 5]
        [row] = db.call(store.endpoints)
        assert (row["id"], row["url"], row["account"], row["cursor"], row["active"]) == \
            ("https://a.example/h", "https://a.example/h", None, 7, 1)
    finally:
        db.close()


# --- the API --------------------------------------------------------------------------------------

@dataclass
class FakeAccount:
    name: str


class Runtime:
    """Stands in for service.runtime.accounts.AccountRuntime (which needs a worker) in the views' lookups."""

    def __init__(self, db: Database):
        self.db = db
        self.names_ = {"default", SALES, SUPPORT}

    def get(self, name):
        return FakeAccount(name) if name in self.names_ else None

    lookup = get  # one instance: every account is served here

    def names(self):
        return sorted(self.names_)

    async def delete(self, name):
        await self.db.run(registry.delete, name)
        self.names_.discard(name)
        return {"unlinked": False}


@pytest.fixture
async def api(h, aiohttp_client, tmp_path):
    async def build(urls=(), **env):
        settings = Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_API_KEY": KEY, **env})
        app = web.Application(middlewares=MIDDLEWARES)
        app[SETTINGS] = settings
        setup_security(app)
        app[DATABASE] = h.db
        app[ACCOUNTS] = Runtime(h.db)
        app[WEBHOOKS] = await h.service(urls)
        setup_routes(app)
        return await aiohttp_client(app)
    return build


def scoped_key(h: Harness, account: str) -> dict:
    key, digest, prefix = new_key()
    h.db.call(registry.create_key, account, digest, prefix, None, time.time())
    return {"X-API-Key": key}


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
    assert res.status == 201 and (await res.json())["events"] == list(events.TYPES)
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
    from tests.webhook_receiver import Receiver

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
        ev = app[DATABASE].call(events.append, "default", "message.received", {"text": "hi"}, time.time(),
                                subject=P1)
        app[WEBHOOKS].notify()
        await until(lambda: rec.delivered(), what="the delivery")
        assert [r.id for r in rec.delivered()] == [ev["id"]]
        assert_all_verified(rec)
        [req] = rec.snapshot()
        glob = webhook_secret.load_or_create(data).first
        with pytest.raises(Exception):
            Webhook(glob).verify(req.body, req.headers)
    finally:
        rec.stop()
