"""Webhook delivery against a real SQLite file and real HTTP receivers on loopback ports (no stack):
every request is verified with the ``standardwebhooks`` reference package as a receiver would. Then
the API, the settings, the generated secret, and one whole-stack run through supervisord."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from service.http.appkeys import DATABASE, SETTINGS, WEBHOOKS
from service.http.middlewares import MIDDLEWARES, setup_security
from service.http.views import webhooks as views
from service.programs import launcher
from service.settings import Settings, SettingsError
from service.store import event_log as events
from service.store import webhooks as store
from service.store.db import Database
from service.webhooks import secret as webhook_secret
from service.webhooks.address import AddressPolicy, system_lookup
from service.webhooks.delivery import (
    Policy,
    WebhookService,
    backoff,
    public_url,
    retry_after,
)
from tests.stack import API_KEY, wait_for
from tests.test_sandbox import CONTACT, PHONE, pair
from tests.webhook_receiver import HANG, Receiver

SECRET = webhook_secret.generate()
A = "default"
P1, P2 = "+15550002222", "+15550003333"
# The receivers listen on loopback: account endpoints (address-checked) may reach them only when the allowlist
# says so, as WA_WEBHOOK_ALLOW_PRIVATE would. Tests of the address policy pass allow_private=() instead.
LOOPBACK = ("127.0.0.0/8",)
FAST = Policy(timeout=2.0, max_attempts=12, max_age=3600.0, retry_base=0.05, retry_max=0.2, concurrency=4)


async def until(predicate, timeout=10.0, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Harness:
    """A database file, receivers and webhook services, all stopped at the end."""

    def __init__(self, tmp_path):
        self.path = tmp_path / "data" / "gateway.db"
        self.db = Database(self.path).open()
        self.receivers: list[Receiver] = []
        self.services: list[WebhookService] = []

    def receiver(self, script=None, secret=SECRET) -> Receiver:
        rec = Receiver(secret, script).start()
        self.receivers.append(rec)
        return rec

    async def service(self, urls, *, policy=FAST, types=events.TYPES, secrets=(SECRET,), poll=0.05,
                      reset_leases=True, allow_private=LOOPBACK, lookup=system_lookup):
        svc = WebhookService(self.db, tuple(urls), types, secrets, policy, poll_interval=poll,
                             reset_leases=reset_leases, egress=AddressPolicy(allow_private, lookup))
        await svc.start()
        self.services.append(svc)
        return svc

    async def stop_services(self):
        for svc in self.services:
            await svc.stop()
        self.services.clear()

    def reopen(self):
        self.db.close()
        self.db = Database(self.path).open()

    def event(self, type_="message.received", subject=P1, data=None) -> dict:
        return self.db.call(events.append, A, type_, data or {"text": "hi"}, time.time(), subject=subject)

    def delivery(self, event_id, url=None, *, must=True) -> dict | None:
        rows = self.db.call(lambda c: [dict(r) for r in c.execute(
            "SELECT * FROM webhook_deliveries WHERE event_id = ?" + (" AND endpoint = ?" if url else ""),
            (event_id, url) if url else (event_id,))])
        assert len(rows) == 1 or (not rows and not must), rows
        return rows[0] if rows else None

    async def status(self, event_id, status, url=None, timeout=10.0):
        return await until(lambda: (d := self.delivery(event_id, url, must=False)) and d["status"] == status and d,
                           timeout, f"delivery of {event_id} {status}")


@pytest.fixture
async def h(tmp_path):
    harness = Harness(tmp_path)
    yield harness
    await harness.stop_services()
    harness.db.close()
    for rec in harness.receivers:
        rec.stop()


def assert_all_verified(rec: Receiver):
    for r in rec.snapshot():
        assert r.event is not None, r.error


# --- signing and the request --------------------------------------------------------------------

async def test_each_delivery_is_signed_per_standard_webhooks_with_the_stored_body_byte_for_byte(h):
    rec = h.receiver()
    await h.service([rec.url])
    ev = h.event(data={"text": "héllo ✓", "n": 1})
    await h.status(ev["id"], "delivered")
    [req] = rec.snapshot()
    assert req.event is not None, req.error  # standardwebhooks.Webhook(secret).verify passed
    assert req.body == ev["payload"].encode("utf-8")
    assert req.headers["webhook-id"] == ev["id"]
    assert abs(int(req.headers["webhook-timestamp"]) - time.time()) < 30
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"].startswith("wa-gateway/")
    # Nothing but what a receiver needs: no API key, no authorization, no cookie.
    assert set(req.headers) <= {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type",
                                "user-agent", "host", "content-length", "accept", "accept-encoding"}
    # A receiver with another secret rejects it.
    with pytest.raises(Exception):
        Webhook(webhook_secret.generate()).verify(req.body, req.headers)


async def test_with_two_secrets_each_verifies_so_receivers_can_rotate(h):
    old, new = SECRET, webhook_secret.generate()
    rec_old, rec_new = h.receiver(secret=old), h.receiver(secret=new)
    await h.service([rec_old.url, rec_new.url], secrets=(old, new))
    ev = h.event()
    await h.status(ev["id"], "delivered", rec_old.url)
    await h.status(ev["id"], "delivered", rec_new.url)
    assert_all_verified(rec_old)
    assert_all_verified(rec_new)
    assert len(rec_old.snapshot()[0].headers["webhook-signature"].split(" ")) == 2


# --- retries and dead letters ---------------------------------------------------------------------

async def test_a_500_is_retried_with_the_same_webhook_id_until_delivered(h):
    rec = h.receiver(lambda r: 500 if r.n <= 2 else 200)
    await h.service([rec.url])
    ev = h.event()
    d = await h.status(ev["id"], "delivered")
    reqs = rec.snapshot()
    assert [r.status for r in reqs] == [500, 500, 200]
    assert {r.id for r in reqs} == {ev["id"]}
    assert_all_verified(rec)
    assert d["attempts"] == 3 and d["last_status_code"] == 200 and d["last_error"] is None


@pytest.mark.parametrize("code", [408, 409, 425, 429, 502, 503])
async def test_these_codes_are_retried(h, code):
    rec = h.receiver(lambda r: code if r.n == 1 else 204)
    await h.service([rec.url])
    ev = h.event()
    await h.status(ev["id"], "delivered")
    assert [r.status for r in rec.snapshot()] == [code, 204]


@pytest.mark.parametrize("code", [400, 401, 404, 410, 422])
async def test_any_other_4xx_dead_letters_at_once(h, code):
    rec = h.receiver(lambda r: code)
    await h.service([rec.url])
    ev = h.event()
    d = await h.status(ev["id"], "failed")
    assert d["attempts"] == 1 and d["last_status_code"] == code
    assert d["last_error"] == f"rejected: HTTP {code}"
    await asyncio.sleep(0.3)  # several poll rounds: still one request
    assert len(rec.snapshot()) == 1


async def test_a_network_error_is_retried(h):
    rec = h.receiver()
    port = rec.port
    rec.stop()  # nobody listens: connection refused
    await h.service([f"http://127.0.0.1:{port}/hook"])
    ev = h.event()
    d = await until(lambda: (x := h.delivery(ev["id"], must=False)) and x["attempts"] >= 2 and x, what="two attempts")
    assert d["status"] == "pending" and d["last_error"].startswith("connect:") and d["last_status_code"] is None


async def test_retry_after_on_429_is_honoured(h):
    rec = h.receiver(lambda r: (429, {"Retry-After": "1"}) if r.n == 1 else 200)
    await h.service([rec.url], policy=Policy(timeout=2, retry_base=0.01, retry_max=5))
    ev = h.event()
    await h.status(ev["id"], "delivered")
    first, second = rec.snapshot()
    assert second.at - first.at >= 0.95  # not the 10 ms backoff


async def test_retry_after_is_capped_by_the_retry_max(h):
    rec = h.receiver(lambda r: (503, {"Retry-After": "3600"}) if r.n == 1 else 200)
    await h.service([rec.url], policy=Policy(timeout=2, retry_base=0.01, retry_max=0.3))
    ev = h.event()
    await h.status(ev["id"], "delivered", timeout=5)


def test_retry_after_parses_seconds_and_dates():
    now = time.time()
    assert retry_after("7", now) == 7
    assert 29 <= retry_after(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30)), now) <= 31
    assert retry_after("soon", now) is None and retry_after(None, now) is None


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = Policy(retry_base=1, retry_max=10)
    for attempts, full in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (60, 10), (500, 10)]:
        values = [backoff(attempts, policy) for _ in range(200)]
        assert all(full / 2 <= v <= full for v in values), (attempts, min(values), max(values))
        assert max(values) - min(values) > full / 10  # jittered, not one value


async def test_after_max_attempts_the_delivery_is_dead_lettered(h):
    rec = h.receiver(lambda r: 500)
    await h.service([rec.url], policy=Policy(timeout=2, max_attempts=3, retry_base=0.01, retry_max=0.02))
    ev = h.event()
    d = await h.status(ev["id"], "failed")
    assert d["attempts"] == 3 and d["last_error"] == "max_attempts: HTTP 500" and d["failed_at"]
    await asyncio.sleep(0.3)
    assert len(rec.snapshot()) == 3


async def test_after_max_age_the_delivery_is_dead_lettered(h):
    rec = h.receiver(lambda r: 500)
    await h.service([rec.url], policy=Policy(timeout=2, max_attempts=1000, max_age=0.6, retry_base=0.05,
                                             retry_max=0.1))
    ev = h.event()
    d = await h.status(ev["id"], "failed")
    assert d["last_error"] == "max_age: HTTP 500" and d["attempts"] >= 2
    assert d["failed_at"] - d["created_at"] >= 0.6


async def test_the_last_attempt_falls_at_the_max_age_not_after_it(h):
    rec = h.receiver(lambda r: 500)
    await h.service([rec.url], policy=Policy(timeout=2, max_attempts=1000, max_age=0.5, retry_base=30,
                                             retry_max=30))
    ev = h.event()
    d = await h.status(ev["id"], "failed", timeout=4)  # not 15-30 s later
    assert d["attempts"] == 2 and d["last_error"] == "max_age: HTTP 500"
    first, last = rec.snapshot()
    assert 0.4 <= last.at - first.at <= 2


async def test_an_event_that_waited_its_whole_max_age_behind_another_fails_unattempted(h):
    rec = h.receiver(lambda r: 500)
    await h.service([rec.url], policy=Policy(timeout=2, max_attempts=1000, max_age=0.4, retry_base=0.05,
                                             retry_max=0.1))
    a1, a2 = h.event(subject=P1), h.event(subject=P1)
    await h.status(a1["id"], "failed")
    d2 = await h.status(a2["id"], "failed")
    assert d2["attempts"] == 0 and d2["last_error"] == "max_age" and not rec.by_id(a2["id"])


async def test_prune_summary_and_min_cursor(h):
    rec = h.receiver(lambda r: 200 if r.n > 0 and r.body and json.loads(r.body)["data"].get("ok") else 400)
    svc = await h.service([rec.url])
    good, bad = h.event(data={"ok": True}), h.event(subject=P2, data={"ok": False})
    await h.status(good["id"], "delivered")
    await h.status(bad["id"], "failed")
    assert await svc.summary() == {rec.url: {"active": True, "pending": 0, "failed": 1}}
    assert h.db.call(store.min_cursor) == bad["seq"]
    assert h.db.call(store.prune, time.time() - 3600) == 0  # delivered just now: kept
    assert h.db.call(store.prune, time.time() + 1) == 1  # only the delivered one goes
    assert h.delivery(bad["id"])["status"] == "failed" and h.delivery(good["id"], must=False) is None


# --- ordering and isolation -------------------------------------------------------------------------

async def test_a_contacts_events_arrive_in_order_while_another_contact_proceeds(h):
    first = {}

    def script(r):
        first.setdefault("a1", r.id)
        return 500 if r.id == first["a1"] and r.n <= 3 else 200

    rec = h.receiver(script)
    await h.service([rec.url], policy=Policy(timeout=2, retry_base=0.1, retry_max=0.15))
    a1, a2, b1 = h.event(subject=P1), h.event(subject=P1), h.event(subject=P2)
    s1 = h.event(type_="session.status", subject=None)
    await h.status(a2["id"], "delivered")
    ok = rec.delivered()
    order = [r.id for r in ok]
    assert order.index(a1["id"]) < order.index(a2["id"])
    assert order.index(b1["id"]) < order.index(a1["id"])  # P2 did not wait for P1's retries
    assert order.index(s1["id"]) < order.index(a1["id"])  # nor did the session event
    # P1's second event was not even tried before its first was delivered.
    a1_done = rec.by_id(a1["id"])[-1].answered_at
    assert rec.by_id(a2["id"])[0].at >= a1_done
    assert_all_verified(rec)


async def test_a_dead_lettered_event_no_longer_blocks_its_contact(h):
    seen = {}

    def script(r):
        seen.setdefault("first", r.id)
        return 400 if r.id == seen["first"] else 200

    rec = h.receiver(script)
    await h.service([rec.url])
    a1, a2 = h.event(subject=P1), h.event(subject=P1)
    await h.status(a1["id"], "failed")
    await h.status(a2["id"], "delivered")


async def test_a_hanging_endpoint_does_not_delay_another(h):
    slow = h.receiver(lambda r: HANG)
    fast = h.receiver()
    await h.service([slow.url, fast.url], policy=Policy(timeout=30, retry_base=0.05, retry_max=0.1, concurrency=2))
    evs = [h.event(subject=p) for p in (P1, P2, "+15550004444", "+15550005555")]
    for ev in evs:
        await h.status(ev["id"], "delivered", fast.url, timeout=3)
    await until(lambda: len(slow.snapshot()) == 2, what="the slow endpoint's two requests in flight")
    await asyncio.sleep(0.3)  # several rounds later:
    assert all(r.status is None for r in slow.snapshot())  # still hanging
    assert len(slow.snapshot()) == 2  # its concurrency bound held
    attempts = h.db.call(lambda c: c.execute("SELECT SUM(attempts) FROM webhook_deliveries WHERE endpoint = ?",
                                             (slow.url,)).fetchone()[0])
    assert attempts == 2  # two claimed, two waiting their turn


async def test_an_attempt_in_flight_is_not_started_again(h):
    rec = h.receiver(lambda r: HANG)
    await h.service([rec.url], policy=Policy(timeout=30, concurrency=4))
    ev = h.event()
    await until(lambda: rec.snapshot(), what="the first attempt")
    await asyncio.sleep(0.4)  # eight poll rounds
    assert [r.id for r in rec.snapshot()] == [ev["id"]]
    assert h.delivery(ev["id"])["attempts"] == 1


# --- crash safety and endpoints ---------------------------------------------------------------------

async def test_after_a_restart_pending_and_interrupted_deliveries_continue(h):
    mode = {"answer": HANG}
    rec = h.receiver(lambda r: mode["answer"])
    policy = Policy(timeout=60, retry_base=0.05, retry_max=0.1)
    await h.service([rec.url], policy=policy)
    e1 = h.event(subject=P1)
    await until(lambda: len(rec.snapshot()) == 1, what="the first attempt in flight")
    await h.stop_services()  # the gateway stops mid-attempt: the delivery keeps its lease
    h.reopen()
    e2 = h.event(subject=P2)  # committed while no webhook worker runs
    assert h.delivery(e1["id"])["lease_until"] is not None
    mode["answer"] = 200
    await h.service([rec.url], policy=policy)
    await h.status(e1["id"], "delivered", timeout=5)  # at once, not after the 65 s lease
    await h.status(e2["id"], "delivered")
    ids = [r.id for r in rec.snapshot()]
    assert ids.count(e1["id"]) == 2  # at least once: the duplicate carries the same webhook-id
    assert_all_verified(rec)


async def test_in_a_cluster_a_starting_instance_leaves_another_ones_attempt_in_flight_alone(h):
    """Several instances share the deliveries: one that starts must not reset the lease of an attempt
    another instance has in flight (that would deliver it twice at once); an expired lease is due anyway."""
    rec = h.receiver(lambda r: HANG)
    await h.service([rec.url], policy=Policy(timeout=60))  # instance A, its attempt hanging
    ev = h.event()
    await until(lambda: rec.snapshot(), what="A's attempt in flight")
    await h.service([rec.url], policy=Policy(timeout=60), reset_leases=False)  # instance B starts
    await asyncio.sleep(0.4)  # eight poll rounds of both
    assert [r.id for r in rec.snapshot()] == [ev["id"]]  # still one attempt: B did not start it again
    assert h.delivery(ev["id"])["lease_until"] is not None and h.delivery(ev["id"])["attempts"] == 1


async def test_a_new_endpoint_starts_at_the_end_of_the_log_and_a_removed_one_is_not_attempted(h):
    gone = h.receiver(lambda r: 500)
    await h.service([gone.url], policy=Policy(timeout=2, retry_base=5, retry_max=5))
    old = h.event()
    await until(lambda: len(gone.snapshot()) == 1, what="one attempt")
    await h.stop_services()
    new_rec = h.receiver()
    await h.service([new_rec.url])
    fresh = h.event()
    await h.status(fresh["id"], "delivered", new_rec.url)
    assert [r.id for r in new_rec.snapshot()] == [fresh["id"]]  # no history replayed
    h.db.call(lambda c: c.execute("UPDATE webhook_deliveries SET next_attempt_at = 0"))  # due now
    await asyncio.sleep(0.3)
    d = h.delivery(old["id"], gone.url)
    assert d["status"] == "pending" and d["attempts"] == 1  # kept, visible, not attempted
    assert [r.id for r in new_rec.snapshot()] == [fresh["id"]]
    assert h.db.call(store.list_deliveries, endpoint=gone.url) and len(gone.snapshot()) == 1
    assert h.db.call(lambda c: c.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint = ? "
                                         "AND event_id = ?", (gone.url, fresh["id"])).fetchone()[0]) == 0


async def test_the_event_filter_sends_only_the_chosen_types(h):
    rec = h.receiver()
    await h.service([rec.url], types=("message.status",))
    sent = h.event("message.status")
    skipped = h.event("message.received")
    await h.status(sent["id"], "delivered")
    await until(lambda: h.db.call(store.endpoints)[0]["cursor"] == skipped["seq"], what="the cursor past it")
    assert [r.id for r in rec.snapshot()] == [sent["id"]]
    # Widening the filter applies from then on: what was skipped stays skipped.
    await h.stop_services()
    await h.service([rec.url])
    later = h.event("message.received")
    await h.status(later["id"], "delivered")
    assert [r.id for r in rec.snapshot()] == [sent["id"], later["id"]]
    assert h.db.call(lambda c: c.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ?",
                                         (skipped["id"],)).fetchone()[0]) == 0


async def test_notify_wakes_the_workers_without_waiting_for_the_poll(h):
    rec = h.receiver()
    svc = await h.service([rec.url], poll=30)
    await asyncio.sleep(0.1)  # the first round is done; the next poll is 30 s away
    ev = h.event()
    started = time.monotonic()
    svc.notify()
    await h.status(ev["id"], "delivered", timeout=5)
    assert time.monotonic() - started < 2


async def test_without_notify_the_poll_finds_new_events(h):
    rec = h.receiver()
    await h.service([rec.url], poll=0.2)
    await asyncio.sleep(0.3)  # past the first round: only the poll can find what comes now
    ev = h.event()
    await h.status(ev["id"], "delivered", timeout=5)


def test_public_url_hides_credentials_and_query_values():
    assert public_url("https://user:pw@example.com:8443/hook?token=abc") == "https://***@example.com:8443/hook?***"
    assert public_url("http://[::1]:9000/x") == "http://[::1]:9000/x"


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


# --- settings and the secret ------------------------------------------------------------------------

def _settings(**env):
    return Settings.from_env({"WA_DATA_DIR": "/tmp/wa-unused", **env})


def test_webhook_settings_defaults():
    s = _settings()
    assert s.webhook_urls == () and s.webhook_events == events.TYPES and s.webhook_secrets == ()
    assert (s.webhook_timeout, s.webhook_max_attempts, s.webhook_max_age) == (10.0, 12, 86400.0)
    s = _settings(WA_WEBHOOK_URL=" https://a.example/hook , http://127.0.0.1:9/x,https://a.example/hook",
                  WA_WEBHOOK_EVENTS="message.received", WA_WEBHOOK_SECRET=SECRET)
    assert s.webhook_urls == ("https://a.example/hook", "http://127.0.0.1:9/x")
    assert s.webhook_events == ("message.received",) and s.webhook_secrets == (SECRET,)


@pytest.mark.parametrize("env, needle", [
    ({"WA_WEBHOOK_URL": "ftp://example.com/x"}, "WA_WEBHOOK_URL"),
    ({"WA_WEBHOOK_URL": "https://"}, "WA_WEBHOOK_URL"),
    ({"WA_WEBHOOK_URL": "example.com/hook"}, "WA_WEBHOOK_URL"),
    ({"WA_WEBHOOK_URL": "https://ex ample.com/"}, "WA_WEBHOOK_URL"),
    ({"WA_WEBHOOK_URL": "https://example.com:99999/"}, "WA_WEBHOOK_URL"),
    ({"WA_WEBHOOK_EVENTS": "message.received,message.deleted"}, "WA_WEBHOOK_EVENTS"),
    ({"WA_WEBHOOK_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}, "whsec_"),
    ({"WA_WEBHOOK_SECRET": "whsec_not*base64!"}, "base64"),
    ({"WA_WEBHOOK_SECRET": SECRET[:20] + "*" + SECRET[20:]}, "base64"),
    ({"WA_WEBHOOK_SECRET": "whsec_c2hvcnQ="}, "24 to 64 bytes"),
    ({"WA_WEBHOOK_TIMEOUT": "0"}, "WA_WEBHOOK_TIMEOUT"),
    ({"WA_WEBHOOK_MAX_ATTEMPTS": "0"}, "WA_WEBHOOK_MAX_ATTEMPTS"),
    ({"WA_WEBHOOK_MAX_AGE": "soon"}, "WA_WEBHOOK_MAX_AGE"),
    ({"WA_WEBHOOK_RETRY_BASE": "-1"}, "WA_WEBHOOK_RETRY_BASE"),
])
def test_bad_webhook_settings_are_refused_without_echoing_secrets(env, needle):
    with pytest.raises(SettingsError) as info:
        _settings(**env)
    assert needle in str(info.value)
    if "WA_WEBHOOK_SECRET" in env:
        assert env["WA_WEBHOOK_SECRET"].removeprefix("whsec_") not in str(info.value)


def test_the_generated_secret_is_private_stable_and_printed_by_the_launcher(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    first = webhook_secret.load_or_create(data)
    assert first.created and first.first.startswith("whsec_")
    assert len(webhook_secret.key_bytes(first.first)) == 32
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600 and stat.S_IMODE(os.stat(data).st_mode) == 0o700
    again = webhook_secret.load_or_create(data)
    assert not again.created and again.first == first.first
    assert webhook_secret.generate() != first.first  # random, never a default
    monkeypatch.setenv("WA_DATA_DIR", str(data))
    monkeypatch.delenv("WA_WEBHOOK_SECRET", raising=False)
    assert launcher.main(["webhook-secret"]) == 0
    assert capsys.readouterr().out.strip() == first.first
    monkeypatch.setenv("WA_WEBHOOK_SECRET", SECRET)
    assert launcher.main(["webhook-secret"]) == 0
    assert capsys.readouterr().out.strip() == SECRET


# --- the whole stack ---------------------------------------------------------------------------------

@pytest.mark.system
def test_through_the_stack_a_contacts_message_and_a_send_status_arrive_signed(make_stack):
    receiver = Receiver("", lambda r: 500 if r.n == 1 else 200)  # every event's first attempt fails
    receiver.start()
    try:
        stack = make_stack({"WA_WEBHOOK_RETRY_BASE": "0.2", "WA_WEBHOOK_RETRY_MAX": "0.5"}, sandbox=True,
                           start=False)
        stack.env["WA_WEBHOOK_URL"] = receiver.url
        # The operator's path: no WA_WEBHOOK_SECRET, so the gateway signs with the generated secret that
        # `wa-gateway webhook-secret` prints (created here first, read by the gateway at start).
        printed = subprocess.run([str(Path(sys.executable).parent / "wa-gateway"), "webhook-secret"],
                                 env=stack.env, capture_output=True, text=True, timeout=30, check=True)
        receiver.secret = printed.stdout.strip()
        assert receiver.secret.startswith("whsec_")
        stack.start()
        pair(stack)

        incoming = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "Webhook me ✓"})
        assert incoming.status == 200, incoming.raw
        wa_in = incoming.json()["id"]

        def received():
            return [r for r in receiver.delivered() if r.event and r.event["type"] == "message.received"
                    and r.event["data"]["whatsapp_id"] == wa_in]
        [got] = wait_for(received, 30, "the signed message.received at the receiver")
        assert got.event["data"]["phone_number"] == CONTACT and got.event["data"]["text"] == "Webhook me ✓"
        assert got.event["account"] and got.event["id"] == got.id
        assert [r.status for r in receiver.by_id(got.id)] == [500, 200]  # retried, same webhook-id

        sent = stack.post("/send", {"phone_number": CONTACT, "message": "status please"}).json()
        wait_for(lambda: [r for r in receiver.delivered() if r.event["type"] == "message.status"
                          and r.event["data"].get("id") == sent["id"]], 30, "a message.status event for the send")
        assert any(r.event["type"] == "session.status" for r in receiver.delivered())

        records = receiver.snapshot()
        assert records and all(r.event is not None for r in records), [r.error for r in records]
        for r in records:  # the API key never reaches the receiver
            assert API_KEY not in json.dumps(r.headers) and API_KEY.encode() not in r.body
        listed = stack.get("/webhooks/deliveries?status=delivered&limit=200").json()["deliveries"]
        assert got.id in {d["event_id"] for d in listed}
        assert stack.health()["webhooks"][receiver.url]["failed"] == 0
        assert receiver.secret not in stack.logs() and "Webhook me" not in stack.logs()
    finally:
        receiver.stop()
