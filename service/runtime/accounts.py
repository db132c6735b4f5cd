"""The WhatsApp accounts this gateway serves, each with its own worker view, event reader and dispatcher.

The database is the registry (service/store/accounts.py: name, shard); the worker learns it from
``$WA_DATA_DIR/accounts.json``, which is written (temp file, fsync, rename) from the registry before a
worker is asked to attach an account, so a worker that restarts finds its accounts without asking.
``default`` always exists: the original routes act on it.

Per account: an ``AccountWorker`` (the worker's ``/accounts/<name>/...`` routes), an ``EventConsumer``
(its durable event hand-over) and a ``Dispatcher`` (its outbox, with its own send governor).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import structlog

from service.cluster import pg_notify as pg_listener
from service.cluster.lease_keeper import LeaseKeeper
from service.cluster.pg_notify import PgListener
from service.config_error import write_private
from service.runtime.dispatch import Dispatcher
from service.runtime.governor import Governor, GovernorPolicy
from service.runtime.worker_client import AccountWorker, WorkerClient
from service.runtime.worker_events import EventConsumer
from service.settings import Settings
from service.states import DEFAULT_ACCOUNT
from service.store import accounts as registry
from service.store.db import Database

log = structlog.get_logger("gateway.accounts")

DEFAULT = DEFAULT_ACCOUNT
RELEASE_DRAIN_S = 3.0  # seconds a released account's remaining worker events may take to reach the store


@dataclass
class Account:
    name: str
    shard: int
    worker: AccountWorker
    events: EventConsumer
    dispatcher: Dispatcher


@dataclass
class Elsewhere:
    """An account of the cluster that another instance serves (or, between owners, nobody): what needs no
    WhatsApp session (the outbox, messages, events, webhooks) is answered here from the shared store; what
    does is forwarded to its owner (views/context.py)."""
    name: str
    owner: str | None
    owner_url: str | None


def write_registry(data_dir: Path, rows: list[dict]) -> None:
    """``accounts.json`` for the workers, replaced atomically (0600) and durably (the directory too). In a
    cluster it lists only the accounts this instance holds a lease for, each with its generation."""
    path = Path(data_dir) / "accounts.json"
    entries = {}
    for r in rows:
        entries[r["account"]] = {"shard": r["shard"] or 0}
        if r.get("lease_generation") is not None:
            entries[r["account"]]["lease_generation"] = r["lease_generation"]
    body = json.dumps({"version": 1, "accounts": entries}, sort_keys=True, indent=1)
    try:
        if path.read_text() == body:
            return  # as it is: a gateway that starts on a full disk must not fail on a file it need not write
    except (OSError, UnicodeDecodeError):
        pass
    write_private(path, body)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AccountRuntime:
    def __init__(self, settings: Settings, db: Database, workers: list[WorkerClient], *,
                 on_event_stored: list[Callable[[], None]], on_message_changed: list[Callable[[], None]],
                 on_message_advanced: Callable[[str, dict, tuple[str, ...]], None] | None = None,
                 on_keys_changed: Callable[[], None] | None = None):
        self.settings = settings
        # (account, row, steps reached) for every message a dispatcher moved forward (service/http/metrics.py)
        self._on_message_advanced = on_message_advanced
        self._on_keys_changed = on_keys_changed  # in a cluster: another instance changed the scoped keys
        self.db = db
        self.workers = workers  # one client per worker shard
        self._on_event_stored = on_event_stored
        self._on_message_changed = on_message_changed
        self._accounts: dict[str, Account] = {}
        self._lock = asyncio.Lock()  # create and delete one at a time
        # A cluster (WA_DATABASE_URL): this instance serves only the accounts it holds a lease for.
        self.keeper: LeaseKeeper | None = None
        self.listener: PgListener | None = None
        self._generations: dict[str, int] = {}  # account -> the lease generation it is served under
        self._known: set[str] = set()  # every account of the store, as of the keeper's last round

    # --- reading -----------------------------------------------------------------------------
    def get(self, name: str) -> Account | None:
        """The account if this instance serves it."""
        return self._accounts.get(name)

    def lookup(self, name: str) -> Account | Elsewhere | None:
        """The account served here, one of the cluster served elsewhere, or None (no such account)."""
        account = self._accounts.get(name)
        if account is not None or self.keeper is None:
            return account
        if name not in self._known:
            return None
        return Elsewhere(name, self.owner(name), self.owner_url(name))

    def names(self) -> list[str]:
        return sorted(self._accounts)

    @property
    def default(self) -> Account:
        return self._accounts[DEFAULT]

    # --- life --------------------------------------------------------------------------------
    def _least_loaded(self, rows: list[dict]) -> int:
        """The shard holding the fewest accounts (the lowest on a tie): new accounts spread evenly."""
        load = {shard: 0 for shard in range(len(self.workers))}
        for row in rows:
            if (row["shard"] or 0) in load:
                load[row["shard"] or 0] += 1
        return min(load, key=lambda shard: (load[shard], shard))

    @property
    def clustered(self) -> bool:
        return bool(self.settings.database_url)

    async def registered(self) -> list[str]:
        """Every account of the store (in a cluster, this instance serves only some of them)."""
        names = [r["account"] for r in await self.db.run(registry.list_accounts)]
        self._known = set(names)
        return names

    def owner(self, name: str) -> str | None:
        """The instance that serves ``name`` as this instance last saw it (None: nobody, or no cluster)."""
        if self.keeper is None:
            return None
        for lease in self.keeper.last_view.get("leases", []):
            if lease["account"] == name:
                return lease["owner"]
        return None

    def owner_url(self, name: str) -> str | None:
        owner = self.owner(name)
        if self.keeper is None or owner is None:
            return None
        for instance in self.keeper.last_view.get("instances", []):
            if instance["id"] == owner:
                return instance["api_url"] or None
        return None

    async def start(self) -> None:
        now = time.time()
        await self.db.run(registry.ensure_default, now)
        if self.clustered:
            await self._start_cluster()
            return
        rows = await self.db.run(registry.list_accounts)
        # Fewer shards than before (WA_WORKER_SHARDS lowered): their accounts move, once, for good.
        placed = [r for r in rows if (r["shard"] or 0) < len(self.workers)]
        for row in rows:
            if (row["shard"] or 0) >= len(self.workers):
                shard = self._least_loaded(placed)
                await self.db.run(registry.set_shard, row["account"], shard)
                log.info("account.moved", account=row["account"], old_shard=row["shard"], shard=shard)
                row["shard"] = shard
                placed.append(row)
        await asyncio.to_thread(write_registry, self.settings.data_dir, rows)
        for row in rows:
            await self._start_account(row["account"], row["shard"] or 0)

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
        if self.keeper is not None:
            await self.keeper.stop()  # hands every account off: sessions closed, leases released
        for account in list(self._accounts.values()):
            await self._stop_account(account)
        self._accounts.clear()

    async def drain(self, deadline: float) -> dict:
        """SIGTERM (service/http/drain.py): every dispatcher at once; the totals of their sends in flight."""
        results = await asyncio.gather(*(a.dispatcher.drain(deadline) for a in list(self._accounts.values())))
        return {key: sum(r[key] for r in results) for key in ("sends_in_flight", "sends_finished", "sends_requeued")}

    def on_shard(self, shard: int) -> list[str]:
        return sorted(name for name, account in self._accounts.items() if account.shard == shard)

    # --- a cluster: serving what this instance holds a lease for ---------------------------------
    async def _start_cluster(self) -> None:
        await asyncio.to_thread(write_registry, self.settings.data_dir, [])  # nothing held yet
        await self.registered()  # every account is known (answered or forwarded) before the first round
        self.keeper = LeaseKeeper(
            self.db, instance=self.settings.instance_id, ttl=self.settings.lease_ttl, accounts=self.registered,
            on_acquired=self.serve, on_lost=self.unserve, api_url=self.settings.instance_url or None)
        await self.keeper.start()
        handlers = {pg_listener.OUTBOX: self._outbox_signal, pg_listener.LEASES: lambda _payload: self.keeper.wake()}
        if self._on_keys_changed is not None:
            handlers[pg_listener.KEYS] = lambda _payload: self._on_keys_changed()
        self.listener = PgListener(self.settings.database_url, handlers)
        self.listener.start()

    def _outbox_signal(self, payload: str) -> None:
        """A message was accepted (by any instance) for an account served here: send it now, not at the next
        poll; as after a local accept, a recipient already being sent to needs no new round."""
        account, _, phone = payload.partition("\t")
        served = self._accounts.get(account)
        if served is not None:
            served.dispatcher.wake(phone or None)

    async def _write_served(self) -> None:
        rows = [{"account": name, "shard": account.shard, "lease_generation": self._generations.get(name)}
                for name, account in self._accounts.items()]
        await asyncio.to_thread(write_registry, self.settings.data_dir, rows)

    async def serve(self, name: str, generation: int) -> None:
        """This instance took the account's lease at ``generation``: its sends left ``sending`` by the former
        owner go back to the queue (the same WhatsApp ids: the recipient sees each once), its dispatcher
        starts fenced by the generation, and the worker opens its session from the shared store."""
        async with self._lock:
            row = await self.db.run(registry.get, name)
            shard = ((row or {}).get("shard") or 0) % len(self.workers)
            self._generations[name] = generation
            # (the dispatcher's start puts the former owner's sends left ``sending`` back in the queue)
            account = await self._start_account(name, shard, fence=(self.settings.instance_id, generation))
            await self._write_served()
        try:
            await account.worker.attach(lease_generation=generation)
        except Exception as exc:  # the worker opens it from accounts.json at its next start
            log.warning("account.attach_deferred", account=name, error=str(exc))
        log.info("account.serving", account=name, generation=generation, shard=shard)

    async def unserve(self, name: str) -> None:
        """The lease is gone (handed off, taken over, stopping): stop sending, close the session here
        without logging out; another instance opens it from the shared store."""
        async with self._lock:
            account = self._accounts.pop(name, None)
            self._generations.pop(name, None)
            await self._write_served()
        if account is None:
            return
        await account.dispatcher.stop()
        try:
            await account.worker.release()
        except Exception as exc:  # the fence stops it anyway: its writes and sends are refused
            log.warning("account.release_failed", account=name, error=str(exc))
        # The session is closed: what it journaled until then goes into the shared store before the
        # reader stops (it would otherwise wait on this machine's disk for this instance to serve it again).
        await account.events.drain(RELEASE_DRAIN_S)
        log.info("account.released", account=name)

    async def _start_account(self, name: str, shard: int, fence: tuple[str, int] | None = None) -> Account:
        worker = self.workers[shard].account(name)
        events = EventConsumer(worker, self.db, account=name)
        events.on_stored.extend(self._on_event_stored)
        policy = self.settings.governor or GovernorPolicy()
        dispatcher = Dispatcher(
            self.db, worker, Governor(policy), account=name,
            concurrency=self.settings.dispatch_concurrency, max_attempts=self.settings.send_max_attempts,
            retry_base=self.settings.send_retry_base, retry_max=self.settings.send_retry_max,
            batch_size=self.settings.dispatch_batch, fence=fence, receipt_bound=self.settings.delivery_receipt_bound,
        )
        dispatcher.on_change.extend(self._on_message_changed)
        if self._on_message_advanced is not None:
            dispatcher.on_advance.append(partial(self._on_message_advanced, name))
        events.listeners.append(dispatcher.on_event)  # before the first event is read
        account = Account(name, shard, worker, events, dispatcher)
        self._accounts[name] = account
        events.start()
        await dispatcher.start()
        return account

    async def _stop_account(self, account: Account) -> None:
        await account.dispatcher.stop()
        await account.events.stop()

    # --- changing ----------------------------------------------------------------------------
    async def create(self, name: str) -> Account | Elsewhere:
        """Register ``name`` (AccountExists, TooManyAccounts from the store), tell the worker, serve it. In a
        cluster the instance it hashes to takes its lease (this one at once when it is that instance)."""
        if self.keeper is not None:
            now = time.time()
            shard = self._least_loaded(await self.db.run(registry.list_accounts))
            await self.db.run(registry.create, name, shard, now, self.settings.max_accounts)
            await self.keeper.round()
            log.info("account.created", account=name, served_here=name in self._accounts)
            return self.lookup(name) or Elsewhere(name, None, None)
        async with self._lock:
            now = time.time()
            shard = self._least_loaded(await self.db.run(registry.list_accounts))
            row = await self.db.run(registry.create, name, shard, now, self.settings.max_accounts)
            rows = await self.db.run(registry.list_accounts)
            try:
                await asyncio.to_thread(write_registry, self.settings.data_dir, rows)
            except OSError:
                await self._undo_create(name)  # no worker would take it: not created (507 on a full disk)
                raise
            account = await self._start_account(name, row["shard"] or 0)
            try:
                await account.worker.attach()
            except Exception as exc:  # the worker opens it at its next start anyway (accounts.json)
                log.warning("account.attach_deferred", account=name, error=str(exc))
            log.info("account.created", account=name, shard=account.shard)
            return account

    async def _undo_create(self, name: str) -> None:
        """The account's row goes again when accounts.json could not name it: the workers refuse an account the
        file does not list, so the client's retry must find no account, not 409 account_exists."""
        try:
            await self.db.run(registry.delete, name)
        except Exception as exc:  # noqa: BLE001 - the next start writes accounts.json from the store anyway
            log.error("account.create_undo_failed", account=name, error=f"{type(exc).__name__}: {exc}"[:300])

    async def delete(self, name: str) -> dict:
        """Log the account out at WhatsApp, remove its data at the worker and every row in the store."""
        async with self._lock:
            account = self._accounts.get(name)
            if account is None:
                return {"unlinked": False}
            # Stop reading its events and take it out of accounts.json first: nothing may open the
            # account at the worker again once it is detached (a read would, while the file lists it).
            await self._stop_account(account)
            if self.keeper is not None:
                del self._accounts[name]
                await self._write_served()
            else:
                rows = [r for r in await self.db.run(registry.list_accounts) if r["account"] != name]
                await asyncio.to_thread(write_registry, self.settings.data_dir, rows)
            try:
                detached = await account.worker.detach()  # raises (5xx) when the worker is away: try again
            except BaseException:
                fence = None
                if self.keeper is None:
                    await asyncio.to_thread(write_registry, self.settings.data_dir,
                                            await self.db.run(registry.list_accounts))
                else:
                    fence = (self.settings.instance_id, self._generations[name])
                await self._start_account(name, account.shard, fence=fence)  # still served, as before the attempt
                if self.keeper is not None:
                    await self._write_served()
                raise
            self._accounts.pop(name, None)
            self._generations.pop(name, None)
            if self.keeper is not None:
                self.keeper.held.pop(name, None)  # its lease row goes with the account's other rows
            await self.db.run(registry.delete, name)
            log.info("account.deleted", account=name, unlinked=detached.get("unlinked"))
            return {"unlinked": bool(detached.get("unlinked"))}
