"""Webhook delivery against a real SQLite file and real HTTP receivers on loopback ports (no stack): signing per
Standard Webhooks (every request verified with the reference package), retries, dead letters and pruning."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from service.store import webhooks as store
from service.webhooks import secret as webhook_secret
from service.webhooks.delivery import (
    Policy,
    backoff,
    retry_after,
)
from tests.helpers.webhook_harness import P1, P2, SECRET, assert_all_verified, until

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
    with pytest.raises(WebhookVerificationError):
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
