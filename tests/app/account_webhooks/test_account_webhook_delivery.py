"""Webhooks of one account (issue 10), delivery: endpoints stored in the database, each getting only its account's
events, independent of any other endpoint with the same URL, stopped when removed or when their account is
deleted, and resumed from the database after a restart. In-process against a real SQLite file and real HTTP
receivers on loopback ports (every request verified with the ``standardwebhooks`` reference package)."""

from __future__ import annotations

import time

import pytest

from service.store import accounts as registry
from service.store import event_log
from service.store import webhooks as store
from service.store.db import Database
from tests.helpers.account_webhooks import (
    P2,
    SALES,
    SUPPORT,
    add,
    delivered_ids,
    deliveries,
    event,
)
from tests.helpers.webhook_harness import assert_all_verified, until

# --- delivery -------------------------------------------------------------------------------------

async def test_an_account_endpoint_gets_only_its_accounts_events_from_now_on(h):
    rec_global, rec_sales = h.receiver(), h.receiver()
    svc = await h.service([rec_global.url])
    before = event(h, SALES)  # history: not sent to an endpoint added later
    ep = await add(svc, SALES, rec_sales, event_log.TYPES, 10)
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
    ep_sales = await add(svc, SALES, rec, event_log.TYPES, 10)
    ep_support = await add(svc, SUPPORT, rec, event_log.TYPES, 10)
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
    # Each endpoint's worker moves its own cursor in its own round: the sales one may read past e2 after the
    # global one delivered it, so wait for that, then check both.
    def cursors():
        return {r["id"]: r["cursor"] for r in h.db.call(store.endpoints)}
    await until(lambda: cursors()[ep_sales["id"]] >= e2["seq"], what="the sales endpoint's cursor past e2")
    assert cursors()[ep_sales["id"]] >= e2["seq"] and cursors()[ep_support["id"]] < e2["seq"]


async def test_a_removed_endpoint_gets_nothing_more_and_its_pending_delivery_stays_listed(h):
    answer = {"code": 500}
    rec_sales, rec_control = h.receiver(lambda r: answer["code"]), h.receiver()
    svc = await h.service([rec_control.url])
    ep = await add(svc, SALES, rec_sales, event_log.TYPES, 10)
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
    ep_sales = await add(svc, SALES, rec_sales, event_log.TYPES, 10)
    ep_support = await add(svc, SUPPORT, rec_support, event_log.TYPES, 10)
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
        await add(svc, SALES, rec_sales, event_log.TYPES, 10)


async def test_account_endpoints_resume_from_the_database_after_a_restart(h):
    rec, rec_gone = h.receiver(), h.receiver()
    svc = await h.service([])
    ep = await add(svc, SALES, rec, ("message.received",), 10)
    gone = await add(svc, SALES, rec_gone, event_log.TYPES, 10)
    await svc.remove_account_endpoint(SALES, gone["id"])
    first = event(h, SALES)
    await h.status(first["id"], "delivered", url=ep["id"])
    await h.stop_services()
    while_down = event(h, SALES)  # committed while the gateway is down: sent after the restart
    skipped = h.db.call(event_log.append, SALES, "session.status", {"state": "open"}, time.time())
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
    ep = await add(svc, SALES, rec, event_log.TYPES, 10)
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
