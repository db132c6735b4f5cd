"""A cluster's placement: this instance serves the accounts it holds a lease for (``WA_DATABASE_URL``).

The lease keeper (lease_keeper.py) decides which; this class turns its decisions into accounts served here
(``serve`` with the lease's generation as the fence, ``unserve`` without logging out), keeps
``accounts.json`` to what is held, and answers for the accounts other instances serve (``Elsewhere``). The
PostgreSQL listener (pg_notify.py) wakes the dispatchers, the keeper and the scoped keys at once, and its
connection holds this instance's advisory lock (instance_lock.py), which lets the others take the accounts
of a dead instance at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from service.cluster import pg_notify
from service.cluster.instance_lock import InstanceLock, session_settings
from service.cluster.lease_keeper import LeaseKeeper
from service.cluster.pg_notify import PgListener
from service.runtime.account import Account
from service.runtime.placement import Elsewhere, Host, least_loaded, write_registry
from service.store import accounts as registry

log = structlog.get_logger("gateway.accounts")

RELEASE_DRAIN_S = 3.0  # seconds a released account's remaining worker events may take to reach the store
LOCK_WAIT_S = 5.0  # at start, how long the first round waits for the lock (without it: failover after the TTL)


class ClusterPlacement:
    clustered = True

    def __init__(self, runtime: Host, on_keys_changed: Callable[[], None] | None = None):
        self.runtime = runtime
        self._on_keys_changed = on_keys_changed  # another instance changed the scoped keys
        self.keeper: LeaseKeeper | None = None
        self.listener: PgListener | None = None
        self._generations: dict[str, int] = {}  # account -> the lease generation it is served under
        self._known: set[str] = set()  # every account of the store, as of the keeper's last round

    @property
    def _keeper(self) -> LeaseKeeper:
        assert self.keeper is not None, "ClusterPlacement.start() was not awaited"
        return self.keeper

    # --- life --------------------------------------------------------------------------------
    async def start(self) -> None:
        rt = self.runtime
        await asyncio.to_thread(write_registry, rt.settings.data_dir, [])  # nothing held yet
        await self.listed()  # every account is known (answered or forwarded) before the first round
        lock = InstanceLock(rt.settings.instance_id, on_dead=lambda: keeper.wake())
        self.keeper = keeper = LeaseKeeper(
            rt.db, instance=rt.settings.instance_id, ttl=rt.settings.lease_ttl, accounts=self.listed,
            on_acquired=self.serve, on_lost=self.unserve, api_url=rt.settings.instance_url or None,
            lock=lambda: lock.held)
        handlers: dict[str, Callable[[str], None]] = {
            pg_notify.OUTBOX: self._outbox_signal, pg_notify.LEASES: lambda _payload: keeper.wake()}
        if self._on_keys_changed is not None:
            on_keys_changed = self._on_keys_changed
            handlers[pg_notify.KEYS] = lambda _payload: on_keys_changed()
        self.listener = PgListener(rt.settings.database_url, handlers, lock=lock,
                                   server_settings=session_settings(rt.settings.lease_ttl))
        self.listener.start()
        try:  # the first heartbeat names the lock, so that a death right after the start fails over fast too
            await asyncio.wait_for(self.listener.connected.wait(), LOCK_WAIT_S)
        except TimeoutError:
            log.warning("cluster.lock_late", waited_s=LOCK_WAIT_S)
        await keeper.start()

    async def stop(self) -> None:
        # The keeper first: it marks this instance stopping before the listener's connection, and the lock
        # with it, goes; the other way round the others would see it dead and take its accounts while their
        # sessions were still closing here (their last key writes then fenced).
        if self.keeper is not None:
            await self.keeper.stop()  # hands every account off: sessions closed, leases released
        if self.listener is not None:
            await self.listener.stop()

    def _outbox_signal(self, payload: str) -> None:
        """A message was accepted (by any instance) for an account served here: send it now, not at the next
        poll; as after a local accept, a recipient already being sent to needs no new round."""
        account, _, phone = payload.partition("\t")
        served = self.runtime.get(account)
        if served is not None:
            served.dispatcher.wake(phone or None)

    # --- what is served where ----------------------------------------------------------------
    async def listed(self) -> list[str]:
        """Every account of the store (this instance serves only some of them)."""
        names = [r["account"] for r in await self.runtime.db.run(registry.list_accounts)]
        self._known = set(names)
        return names

    def lookup(self, name: str) -> Account | Elsewhere | None:
        account = self.runtime.get(name)
        if account is not None:
            return account
        if name not in self._known:
            return None
        owner = self.keeper.owner_of(name) if self.keeper is not None else None
        url = self.keeper.url_of(owner) if self.keeper is not None and owner is not None else None
        return Elsewhere(name, owner, url)

    def view(self) -> dict[str, Any] | None:
        return self._keeper.view()

    async def _write_served(self) -> None:
        proxies = {r["account"]: r.get("proxy_url") for r in await self.runtime.db.run(registry.list_accounts)}
        rows = [{"account": name, "shard": self.runtime.get_shard(name), "proxy_url": proxies.get(name),
                 "lease_generation": self._generations.get(name)} for name in self.runtime.names()]
        await asyncio.to_thread(write_registry, self.runtime.settings.data_dir, rows)

    async def serve(self, name: str, generation: int) -> None:
        """This instance took the account's lease at ``generation``: its sends left ``sending`` by the former
        owner go back to the queue (the same WhatsApp ids: the recipient sees each once), its dispatcher
        starts fenced by the generation, and the worker opens its session from the shared store."""
        rt = self.runtime
        async with rt.lock:
            row = await rt.db.run(registry.get, name)
            shard = ((row or {}).get("shard") or 0) % len(rt.workers)
            self._generations[name] = generation
            # (the dispatcher's start puts the former owner's sends left ``sending`` back in the queue)
            account = await rt.start_account(name, shard, fence=(rt.settings.instance_id, generation))
            await self._write_served()
        try:
            await account.worker.attach(lease_generation=generation)
        except Exception as exc:  # the worker opens it from accounts.json at its next start
            log.warning("account.attach_deferred", account=name, error=str(exc))
        log.info("account.serving", account=name, generation=generation, shard=shard)

    async def unserve(self, name: str) -> None:
        """The lease is gone (handed off, taken over, stopping): stop sending, close the session here
        without logging out; another instance opens it from the shared store."""
        rt = self.runtime
        async with rt.lock:
            account = rt.take(name)
            self._generations.pop(name, None)
            await self._write_served()
        if account is None:
            return
        await account.dispatcher.stop()
        await account.link.stop()
        try:
            await account.worker.release()
        except Exception as exc:  # the fence stops it anyway: its writes and sends are refused
            log.warning("account.release_failed", account=name, error=str(exc))
        # The session is closed: what it journaled until then goes into the shared store before the
        # reader stops (it would otherwise wait on this machine's disk for this instance to serve it again).
        await account.events.drain(RELEASE_DRAIN_S)
        log.info("account.released", account=name)

    # --- changing ----------------------------------------------------------------------------
    async def create(self, name: str, proxy_url: str | None = None) -> Account | Elsewhere:
        """Register ``name``; the instance it hashes to takes its lease (this one at once when it is that one)."""
        rt = self.runtime
        now = time.time()
        shard = least_loaded(await rt.db.run(registry.list_accounts), len(rt.workers))
        await rt.db.run(registry.create, name, shard, now, rt.settings.max_accounts, proxy_url)
        await self._keeper.round()
        log.info("account.created", account=name, served_here=rt.get(name) is not None)
        return self.lookup(name) or Elsewhere(name, None, None)

    async def rewrite(self) -> None:
        """accounts.json again (an account's proxy changed): the accounts served here, from the shared store."""
        async with self.runtime.lock:
            await self._write_served()

    async def withdraw(self, name: str) -> None:
        self.runtime.take(name)
        await self._write_served()

    async def restore(self, name: str, shard: int) -> None:
        await self.runtime.start_account(name, shard, fence=(self.runtime.settings.instance_id,
                                                             self._generations[name]))
        await self._write_served()

    async def forget(self, name: str) -> None:
        self._generations.pop(name, None)
        self._keeper.forget(name)  # its lease row goes with the account's other rows
