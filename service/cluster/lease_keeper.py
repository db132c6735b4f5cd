"""Running past one machine: this instance's share of the accounts, kept through leases (store/leases.py).

Every ``WA_LEASE_TTL / 3`` seconds (at most 2 s) the keeper, in one transaction each step:

1. beats (``instances``), and renews the leases it holds; one it no longer holds (taken over after it
   could not renew in time, e.g. while it was paused) is dropped at once: ``on_lost`` stops its dispatcher
   and closes its WhatsApp session without logging out;
2. spreads the accounts over the live instances by rendezvous hashing (each account goes to the live
   instance with the highest hash of instance and account): adding or removing an instance moves only
   that instance's share. It takes a free or expired lease it is preferred for (a new generation, the
   fence: ``on_acquired`` attaches the session with it), and hands one off that another instance, live
   for two rounds, is now preferred for. An expired lease nobody took within a TTL goes to whoever sees it.

On SIGTERM (``stop``) it marks itself stopping, closes its sessions and releases every lease at once, so
the others take them over at their next round instead of after the TTL. An instance that dies loses its
PostgreSQL session and its advisory lock with it (instance_lock.py): the others see it ``dead``
(store/leases.py), leave it out of the live ones and take its leases at once, woken by the lock watch.
One that stalls or is cut off keeps its session, so its leases wait for the TTL. Without
``WA_DATABASE_URL`` there is no keeper: one instance serves everything.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from service.store import leases
from service.store.db import Database

log = structlog.get_logger("gateway.cluster")


def preferred(account: str, instances: list[str]) -> str | None:
    """The live instance an account belongs to (rendezvous hashing; None when there is none)."""
    if not instances:
        return None
    return max(instances, key=lambda i: hashlib.sha256(f"{i}\x00{account}".encode()).digest())


class LeaseKeeper:
    def __init__(self, db: Database, *, instance: str, ttl: float, accounts: Callable[[], Awaitable[list[str]]],
                 on_acquired: Callable[[str, int], Awaitable[None]], on_lost: Callable[[str], Awaitable[None]],
                 api_url: str | None = None, interval: float | None = None,
                 lock: Callable[[], tuple[int, int, float] | None] | None = None):
        self.db = db
        self.instance = instance
        self.ttl = ttl
        self.interval = interval if interval is not None else min(2.0, ttl / 3)
        self.api_url = api_url
        self._accounts = accounts
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._lock = lock or (lambda: None)  # this instance's advisory lock (key, pid, since), when it holds one
        self.held: dict[str, int] = {}  # account -> the generation this instance holds it at
        self._seen_live: dict[str, int] = {}  # instance -> rounds in a row it was live
        self._dead: set[str] = set()  # instances whose session ended, as of the last round
        self._started_at = time.time()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        self.last_view: dict[str, Any] = {"instances": [], "leases": []}

    # --- life ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Beat first. Alone (no other instance beat within the TTL: one machine, or the first up) take
        leases at once; with others about, only at the next round, once instances restarting at the same
        time have beaten too (else the first one back would take everything and hand most of it back)."""
        at = await self.db.run(leases.heartbeat, self.instance, started_at=self._started_at, api_url=self.api_url,
                               lock=self._lock())
        others = [i for i in await self.db.run(leases.live, self.ttl, at) if i != self.instance]
        if not others:
            await self.round()
        self._task = asyncio.create_task(self._run(), name="lease-keeper")

    async def stop(self) -> None:
        """Hand every account off at once: sessions closed first (their keys flushed), then the leases."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self.db.run(leases.heartbeat, self.instance, started_at=self._started_at, stopping=True,
                          api_url=self.api_url)
        held, self.held = dict(self.held), {}
        # every session at once: a stop must fit the gateway's stopwaitsecs whatever the number of accounts
        await asyncio.gather(*(self._lose(account, "stopping") for account in held))
        released = await self.db.run(leases.release, self.instance, held)
        if released:
            log.info("lease.released", accounts=len(released), reason="stopping")

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.round()
            except Exception:
                log.exception("lease.round_failed")

    # --- one round -----------------------------------------------------------------------------
    async def round(self) -> None:
        at = await self.db.run(leases.heartbeat, self.instance, started_at=self._started_at, api_url=self.api_url,
                               lock=self._lock())
        kept = await self.db.run(leases.renew, self.instance, dict(self.held), self.ttl)
        for account in [a for a in self.held if a not in kept]:
            del self.held[account]
            log.warning("lease.lost", account=account)
            await self._lose(account, "taken_over")
        names = await self._accounts()
        await self.db.run(leases.ensure, names)
        self._dead = dead = set(await self.db.run(leases.dead, self.instance))  # session ended: no TTL to wait
        live = [i for i in await self.db.run(leases.live, self.ttl, at) if i not in dead]
        self._seen_live = {i: self._seen_live.get(i, 0) + 1 for i in live}
        wanted = set(names)
        rows = await self.db.run(leases.all_leases)
        changed = False  # a handoff or an acquisition below: the view reads the leases again
        for lease in rows:
            account = lease["account"]
            if account not in wanted:
                continue
            best = preferred(account, live)
            if account in self.held:
                if best is not None and best != self.instance and self._seen_live.get(best, 0) >= 2:
                    await self._hand_off(account, best)
                    changed = True
                continue
            free = (lease["owner"] is None or lease["expires_at"] < at or lease["owner"] == self.instance
                    or lease["owner"] in dead)
            overdue = lease["owner"] is not None and lease["expires_at"] < at - self.ttl
            if free and (best == self.instance or overdue) and not self._stopping:
                generation = await self.db.run(leases.acquire, account, self.instance, self.ttl)
                if generation is not None:
                    changed = True
                    self.held[account] = generation
                    log.info("lease.acquired", account=account, generation=generation,
                             previous_owner=lease["owner"])
                    try:
                        await self._on_acquired(account, generation)
                    except Exception:
                        log.exception("lease.serve_failed", account=account)
        self.last_view = {"instances": await self.db.run(leases.instances),
                          "leases": await self.db.run(leases.all_leases) if changed else rows, "at": at}

    async def _hand_off(self, account: str, to: str) -> None:
        generation = self.held.pop(account)
        await self._lose(account, "handoff")
        await self.db.run(leases.release, self.instance, {account: generation})
        log.info("lease.handed_off", account=account, to=to)

    async def _lose(self, account: str, reason: str) -> None:
        try:
            await self._on_lost(account)
        except Exception:
            log.exception("lease.unserve_failed", account=account, reason=reason)

    # --- what it knows -------------------------------------------------------------------------
    def owner_of(self, account: str) -> str | None:
        """The instance serving ``account`` as of the last round (None: nobody between owners)."""
        for lease in self.last_view.get("leases", []):
            if lease["account"] == account:
                return str(lease["owner"]) if lease["owner"] is not None else None
        return None

    def url_of(self, instance: str) -> str | None:
        """Where ``instance`` answers the API (``WA_INSTANCE_URL``), as it announced it; None when it did not."""
        for row in self.last_view.get("instances", []):
            if row["id"] == instance:
                return row["api_url"] or None
        return None

    def forget(self, account: str) -> None:
        """The account was deleted: its lease row went with its other rows, so there is nothing to release."""
        self.held.pop(account, None)

    # --- the view for /health ------------------------------------------------------------------
    def view(self) -> dict[str, Any]:
        at = self.last_view.get("at", 0.0)
        return {
            "instance": self.instance,
            "owns": sorted(self.held),
            "lease_ttl_s": self.ttl,
            "instances": [
                {"id": i["id"], "live": bool(i["heartbeat_at"] > at - self.ttl and not i["stopping"]
                                             and i["id"] not in self._dead),
                 "stopping": bool(i["stopping"]), "last_seen_s_ago": round(max(0.0, at - i["heartbeat_at"]), 1),
                 "accounts": sorted(lease["account"] for lease in self.last_view["leases"]
                                    if lease["owner"] == i["id"])}
                for i in self.last_view["instances"]
            ],
        }
