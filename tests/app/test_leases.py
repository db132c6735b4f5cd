"""Leases (service/store/leases.py) and the lease keeper (service/cluster/lease_keeper.py) against a real PostgreSQL:
several keepers in this process stand for several gateway instances sharing one database."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from service.cluster.lease_keeper import LeaseKeeper, preferred
from service.store import leases
from service.store.pg import PostgresDatabase

ACCOUNTS = ["default", "sales", "support", "billing"]
TTL = 1.5


@pytest.fixture
def database_url(postgres_server):
    return postgres_server.create_database()


class Instance:
    """One gateway instance's keeper, recording what it was told to serve and to drop."""

    def __init__(self, url: str, name: str, accounts=ACCOUNTS):
        self.db = PostgresDatabase(url).open()
        self.name = name
        self.serving: dict[str, int] = {}
        self.lost: list[str] = []

        async def names():
            return list(accounts)

        async def acquired(account, generation):
            self.serving[account] = generation

        async def lost(account):
            self.serving.pop(account, None)
            self.lost.append(account)

        self.keeper = LeaseKeeper(self.db, instance=name, ttl=TTL, accounts=names, on_acquired=acquired,
                                  on_lost=lost, interval=0.1)

    def close(self):
        self.db.close()


async def until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_rendezvous_spreads_and_moves_only_the_leavers_share():
    names = [f"acct-{i}" for i in range(300)]
    three = {a: preferred(a, ["a", "b", "c"]) for a in names}
    counts = {i: list(three.values()).count(i) for i in "abc"}
    assert all(70 <= n <= 130 for n in counts.values()), counts
    two = {a: preferred(a, ["a", "b"]) for a in names}
    assert all(two[a] == three[a] for a in names if three[a] != "c")  # only c's accounts moved
    assert preferred("x", []) is None


async def test_accounts_are_spread_each_held_once_and_handed_off_at_once_on_stop(database_url):
    a, b = Instance(database_url, "gw-a"), Instance(database_url, "gw-b")
    try:
        await a.keeper.start()
        await b.keeper.start()
        everything = set(ACCOUNTS)
        await until(lambda: set(a.serving) | set(b.serving) == everything
                    and not set(a.serving) & set(b.serving)
                    and all(preferred(x, ["gw-a", "gw-b"]) == ("gw-a" if x in a.serving else "gw-b")
                            for x in everything), what="the accounts spread by preference")
        rows = {r["account"]: r for r in a.db.call(leases.all_leases)}
        assert {x: r["owner"] for x, r in rows.items()} == {x: "gw-a" if x in a.serving else "gw-b" for x in everything}
        await until(lambda: len(a.keeper.view()["instances"]) == 2, what="a's view shows both")
        view = a.keeper.view()
        assert view["instance"] == "gw-a" and view["owns"] == sorted(a.serving)
        assert all(i["live"] for i in view["instances"])

        before = {x: g for x, g in a.serving.items()}
        started = time.monotonic()
        await a.keeper.stop()  # SIGTERM: released at once, not after the TTL
        assert a.serving == {} and set(a.lost) >= set(before)
        await until(lambda: set(b.serving) == everything, what="b serves all after a stopped")
        handoff = time.monotonic() - started
        assert handoff < TTL, handoff  # well inside the TTL: the leases were given back
        for account, generation in before.items():
            assert b.serving[account] == generation + 1  # a new generation: a's is fenced out
            with pytest.raises(leases.NotOwner):
                a.db.call(leases.check, account, "gw-a", generation)
    finally:
        await b.keeper.stop()
        a.close()
        b.close()


async def test_a_dead_instance_loses_its_accounts_only_after_the_ttl_and_is_fenced_when_it_returns(database_url):
    a, b = Instance(database_url, "gw-a"), Instance(database_url, "gw-b")
    try:
        await a.keeper.start()
        await until(lambda: set(a.serving) == set(ACCOUNTS), what="a alone serves everything")
        # a dies (kill -9): no more rounds, no release. b starts and must wait for the TTL.
        a.keeper._task.cancel()
        died = time.monotonic()
        held_by_a = dict(a.keeper.held)
        await b.keeper.start()
        await until(lambda: set(b.serving) == set(ACCOUNTS), timeout=TTL * 4, what="b takes over")
        took = time.monotonic() - died
        assert TTL * 0.9 <= took <= TTL * 3 + 1, took  # not before the lease expired; soon after
        # a was only paused: it comes back, renews nothing, drops every account, and is refused by the fence.
        await a.keeper.round()
        assert a.keeper.held == {} and set(a.lost) == set(ACCOUNTS)
        for account, generation in held_by_a.items():
            with pytest.raises(leases.NotOwner):
                a.db.call(leases.check, account, "gw-a", generation)
            b.db.call(leases.check, account, "gw-b", b.serving[account])  # the new owner passes
        # and it gets its share back by handoff once it is live again (b hands off; a acquires)
        a.keeper._stopping = False
        a.keeper._task = asyncio.create_task(a.keeper._run())
        await until(lambda: set(a.serving) == {x for x in ACCOUNTS if preferred(x, ["gw-a", "gw-b"]) == "gw-a"}
                    and set(b.serving) == {x for x in ACCOUNTS if preferred(x, ["gw-a", "gw-b"]) == "gw-b"},
                    what="the share rebalanced")
    finally:
        await a.keeper.stop()
        await b.keeper.stop()
        a.close()
        b.close()


def test_a_takeover_waits_for_a_fenced_write_in_flight_and_then_wins(database_url):
    """``check`` share-locks the lease row: a takeover cannot commit while the old owner's transaction that
    passed the fence is still open, and after the takeover the old generation passes nothing."""
    a, b = Instance(database_url, "gw-a"), Instance(database_url, "gw-b")
    try:
        a.db.call(leases.ensure, ["sales"])
        generation = a.db.call(leases.acquire, "sales", "gw-a", 0.2)
        assert generation == 1
        assert b.db.call(leases.acquire, "sales", "gw-b", 5) is None  # held and not expired: not taken
        assert a.db.call(leases.renew, "gw-a", {"sales": generation + 1}, 0.2) == {}  # another generation: no
        assert a.db.call(leases.renew, "gw-a", {"sales": generation}, 0.2) == {"sales": generation}
        time.sleep(0.3)  # a's lease expired (a paused)
        in_fence = threading.Event()
        release = threading.Event()
        order = []

        def old_owner_writes(conn):
            leases.check(conn, "sales", "gw-a", generation)
            in_fence.set()
            release.wait(5)
            order.append("old write committed")

        writer = threading.Thread(target=a.db.call, args=(old_owner_writes,))
        writer.start()
        assert in_fence.wait(5)
        taken = []
        taker = threading.Thread(target=lambda: taken.append(b.db.call(leases.acquire, "sales", "gw-b", 5)))
        taker.start()
        taker.join(0.5)
        assert taker.is_alive()  # blocked behind the old owner's transaction
        release.set()
        writer.join(5)
        taker.join(5)
        order.append("takeover")
        assert taken == [2] and order == ["old write committed", "takeover"]
        with pytest.raises(leases.NotOwner):
            a.db.call(leases.check, "sales", "gw-a", generation)
    finally:
        a.close()
        b.close()


async def test_a_restarted_instance_takes_its_own_leases_back_at_once_and_fences_its_former_run(database_url):
    first = Instance(database_url, "gw-a")
    again = Instance(database_url, "gw-a")  # the same instance id after a crash (a StatefulSet pod's name)
    try:
        await first.keeper.start()
        await until(lambda: set(first.serving) == set(ACCOUNTS), what="the first run serves everything")
        first.keeper._task.cancel()  # kill -9: no release
        old = dict(first.keeper.held)
        started = time.monotonic()
        await again.keeper.start()
        await until(lambda: set(again.serving) == set(ACCOUNTS), what="the restarted run serves everything")
        assert time.monotonic() - started < TTL  # no wait for its own leases to expire
        assert all(again.serving[x] == old[x] + 1 for x in ACCOUNTS)
        with pytest.raises(leases.NotOwner):
            first.db.call(leases.check, "sales", "gw-a", old["sales"])
    finally:
        await again.keeper.stop()
        first.close()
        again.close()


async def test_listen_notify_carries_new_work_released_leases_new_accounts_and_key_changes(database_url):
    """service/cluster/pg_notify.py: what other instances must hear of at once arrives, each on its channel."""
    from service.cluster import pg_notify as pg_listener
    from service.store import accounts as registry
    from service.store import outbox

    heard: list[tuple[str, str]] = []
    listener = pg_listener.PgListener(database_url, {
        channel: (lambda payload, channel=channel: heard.append((channel, payload)))
        for channel in (pg_listener.OUTBOX, pg_listener.LEASES, pg_listener.KEYS)})
    db = PostgresDatabase(database_url).open()
    listener.start()
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        await db.run(registry.create, "sales", 0, time.time(), 10)
        await db.run(outbox.accept, account="sales", phone_number="+15550002222", body="hi", idempotency_key=None,
                     now=time.time(), ttl=60.0, max_outbox=10)
        await db.run(registry.create_key, "sales", "h" * 64, "wak_abcd", None, time.time())
        await db.run(leases.ensure, ["sales"])
        generation = await db.run(leases.acquire, "sales", "gw-a", 5)
        await db.run(leases.release, "gw-a", {"sales": generation})
        await until(lambda: len(heard) >= 4, what="four notifications")
        assert heard == [(pg_listener.LEASES, "sales"), (pg_listener.OUTBOX, "sales\t+15550002222"),
                         (pg_listener.KEYS, ""), (pg_listener.LEASES, "sales")]
    finally:
        await listener.stop()
        db.close()
