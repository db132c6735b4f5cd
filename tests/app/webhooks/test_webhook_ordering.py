"""Webhook delivery against a real SQLite file and real HTTP receivers (no stack): order per contact, isolation
between endpoints, attempts in flight, restarts, endpoints added and removed, the event filter and notify."""

from __future__ import annotations

import asyncio
import time

from service.store import webhooks as store
from service.webhooks.delivery import (
    Policy,
    public_url,
)
from tests.helpers.webhook_harness import P1, P2, assert_all_verified, until
from tests.helpers.webhook_receiver import HANG

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
    # Without the notify the delivery would wait for the next poll, 30 s away: half of that shows the wake-up
    # and leaves room for a loaded machine.
    await h.status(ev["id"], "delivered", timeout=15)
    assert time.monotonic() - started < 15


async def test_without_notify_the_poll_finds_new_events(h):
    rec = h.receiver()
    await h.service([rec.url], poll=0.2)
    await asyncio.sleep(0.3)  # past the first round: only the poll can find what comes now
    ev = h.event()
    await h.status(ev["id"], "delivered", timeout=5)


def test_public_url_hides_credentials_and_query_values():
    assert public_url("https://user:pw@example.com:8443/hook?token=abc") == "https://***@example.com:8443/hook?***"
    assert public_url("http://[::1]:9000/x") == "http://[::1]:9000/x"
