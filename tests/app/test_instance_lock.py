"""An instance's session-bound advisory lock (service/cluster/instance_lock.py, store/leases.py ``dead``) against
a real PostgreSQL: an instance whose session ends is dead at once and its leases free; every session ending
together (a PostgreSQL restart) is no death; a lock not held is never recorded. Each instance here is its lock
connection (asyncpg, as the listener's) plus heartbeats through the store, as the keeper beats."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from service.cluster.instance_lock import InstanceLock, session_settings
from service.cluster.lease_keeper import LeaseKeeper, preferred
from service.store import leases
from service.store.pg import PostgresDatabase

TTL = 60.0  # nothing here may expire: whatever moves, moves because a session ended


class Node:
    """One instance: its lock on a connection of its own, and its heartbeats through the shared store."""

    def __init__(self, db: PostgresDatabase, url: str, name: str):
        self.db, self.url, self.name = db, url, name
        self.deaths = 0
        self.lock = InstanceLock(name, on_dead=self._dead, watch_s=0.05)
        self.conn: asyncpg.Connection | None = None

    def _dead(self) -> None:
        self.deaths += 1

    async def attach(self) -> Node:
        self.conn = await asyncpg.connect(self.url, server_settings=session_settings(TTL))
        await self.lock.attached(self.conn)
        assert self.lock.held is not None
        return self

    async def beat(self, stopping: bool = False) -> None:
        await self.db.run(leases.heartbeat, self.name, started_at=0.0, stopping=stopping, lock=self.lock.held)

    def die(self) -> None:
        """The process is gone: the server ends its session (the socket closed under it)."""
        assert self.conn is not None
        self.lock.detached()
        self.conn.terminate()


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def until_gone(db: PostgresDatabase, lock: tuple[int, int, float]) -> None:
    """Until the server has ended the session (its backend exits a moment after the socket closes)."""
    for _ in range(250):
        if not await db.run(lambda c: c.execute("SELECT 1 FROM pg_locks WHERE pid = ?", (lock[1],)).fetchone()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the lock's session did not end")


async def test_an_instance_whose_session_ends_is_dead_at_once_and_its_leases_are_free(url):
    db = PostgresDatabase(url).open()
    a, b = await Node(db, url, "gw-a").attach(), await Node(db, url, "gw-b").attach()
    try:
        # A silent (cut-off) peer's session is kept on the server for at least the TTL: its leases expire
        # before its lock goes, so a cut-off instance waits out the TTL like a paused one.
        assert a.conn is not None
        idle, interval, count, user_timeout = [int(await a.conn.fetchval(f"SHOW {name}")) for name in (
            "tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout")]
        assert idle + interval * count >= 2 * TTL and user_timeout >= 2 * TTL * 1000
        await a.beat()
        await b.beat()
        await db.run(leases.ensure, ["sales"])
        generation = await db.run(leases.acquire, "sales", "gw-a", TTL)
        assert await db.run(leases.acquire, "sales", "gw-b", TTL) is None  # a holds it, alive
        assert await db.run(leases.dead, "gw-b") == [] and await db.run(leases.dead, "gw-a") == []
        await asyncio.sleep(0.2)
        assert b.deaths == 0  # the watch saw nobody dead while both held their locks

        a.die()
        await until(lambda: b.deaths == 1, timeout=5, what="b's watch sees a dead")
        assert await db.run(leases.dead, "gw-b") == ["gw-a"]
        assert await db.run(leases.acquire, "sales", "gw-b", TTL) == generation + 1  # at once, a new generation
    finally:
        for node in (a, b):
            if node.conn is not None and not node.conn.is_closed():
                node.conn.terminate()
        db.close()


async def test_every_session_ending_together_is_no_death_and_a_stopping_instance_none_either(url):
    """A PostgreSQL restart ends every session: b, back first with a new lock, must not take a's accounts
    (a beat before b's new lock, so nothing says a's session ended while the server stayed up)."""
    db = PostgresDatabase(url).open()
    a, b = await Node(db, url, "gw-a").attach(), await Node(db, url, "gw-b").attach()
    c: Node | None = None
    try:
        await a.beat()
        await b.beat()
        await db.run(leases.ensure, ["sales"])
        await db.run(leases.acquire, "sales", "gw-a", TTL)
        held = a.lock.held
        assert held is not None
        a.die()
        b.die()
        await until_gone(db, held)  # a's lock is gone: only the lock_since rule keeps a alive to b
        await b.attach()  # b reconnects first, with a new lock, and beats
        await b.beat()
        await asyncio.sleep(0.3)
        assert await db.run(leases.dead, "gw-b") == [] and b.deaths == 0
        assert await db.run(leases.acquire, "sales", "gw-b", TTL) is None

        # an instance that beat "stopping" (SIGTERM: it releases its own leases) is not dead when it exits
        c = await Node(db, url, "gw-c").attach()
        await c.beat(stopping=True)
        c.die()
        await asyncio.sleep(0.3)
        assert await db.run(leases.dead, "gw-b") == []
    finally:
        for node in (a, b, c):
            if node is not None and node.conn is not None and not node.conn.is_closed():
                node.conn.terminate()
        db.close()


async def test_a_lock_that_is_not_held_is_not_recorded(url):
    """A heartbeat names the lock only while pg_locks shows it held: a lock lost unnoticed (its connection just
    dropped) never vouches for a fresh beat, which would make a live instance look dead."""
    db = PostgresDatabase(url).open()
    a, b = await Node(db, url, "gw-a").attach(), await Node(db, url, "gw-b").attach()
    try:
        await b.beat()
        held = a.lock.held
        assert held is not None
        a.die()
        await until_gone(db, held)
        await db.run(leases.heartbeat, "gw-a", started_at=0.0, lock=held)  # the keeper did not know yet
        row = next(r for r in await db.run(leases.instances) if r["id"] == "gw-a")
        assert row["heartbeat_at"] > 0
        lock_row = await db.run(lambda c: dict(c.execute(
            "SELECT lock_key, lock_pid FROM instances WHERE id = 'gw-a'").fetchone()))
        assert lock_row == {"lock_key": None, "lock_pid": None}
        assert await db.run(leases.dead, "gw-b") == []
    finally:
        if b.conn is not None and not b.conn.is_closed():
            b.conn.terminate()
        db.close()


ACCOUNTS = ["default", "sales", "support", "billing"]


class Keeper(Node):
    """A node with its lease keeper, as the placement wires them (lock watch -> wake, heartbeat -> the lock)."""

    def __init__(self, db: PostgresDatabase, url: str, name: str):
        super().__init__(db, url, name)
        self.serving: dict[str, int] = {}
        self.lost: list[str] = []

        async def names():
            return list(ACCOUNTS)

        async def acquired(account, generation):
            self.serving[account] = generation

        async def lost(account):
            self.serving.pop(account, None)
            self.lost.append(account)

        self.keeper = LeaseKeeper(db, instance=name, ttl=TTL, accounts=names, on_acquired=acquired, on_lost=lost,
                                  interval=0.2, lock=lambda: self.lock.held)

    def _dead(self) -> None:
        super()._dead()
        self.keeper.wake()


def by_preference(*nodes: Keeper) -> bool:
    names = [n.name for n in nodes]
    return all(set(n.serving) == {x for x in ACCOUNTS if preferred(x, names) == n.name} for n in nodes)


async def test_an_instance_that_lives_on_without_its_lock_gives_up_what_was_taken_and_gets_it_back(url):
    """The lock's connection drops while the instance lives (a network blip, pg_terminate_backend): the other
    takes its accounts at once, left out of the live ones; it drops them at its next renewal (fenced), takes a
    new lock when its connection is back, and gets its share back by handoff."""
    db = PostgresDatabase(url).open()
    a, b = Keeper(db, url, "gw-a"), Keeper(db, url, "gw-b")
    try:
        await a.attach()
        await b.attach()
        await a.keeper.start()
        await b.keeper.start()
        await until(lambda: by_preference(a, b), timeout=10, what="the accounts spread by preference")
        share = dict(a.serving)
        assert share

        started = time.monotonic()
        a.die()  # a's keeper goes on beating, without a lock
        await until(lambda: set(b.serving) == set(ACCOUNTS), timeout=10, what="b takes a's share at once")
        assert time.monotonic() - started < TTL / 6
        await until(lambda: not a.serving, timeout=10, what="a drops what it lost")
        assert set(a.lost) >= set(share)
        assert all(b.serving[x] == g + 1 for x, g in share.items())  # new generations: a's are fenced

        await a.attach()  # its connection is back: a new lock
        await until(lambda: by_preference(a, b), timeout=10, what="a's share handed back")
    finally:
        await a.keeper.stop()
        await b.keeper.stop()
        for node in (a, b):
            if node.conn is not None and not node.conn.is_closed():
                node.conn.terminate()
        db.close()
