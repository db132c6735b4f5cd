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

from .config_error import write_private
from .dispatch import Dispatcher
from .events import EventConsumer
from .governor import Governor, GovernorPolicy
from .settings import Settings
from .store import accounts as registry
from .store.db import Database
from .worker_client import AccountWorker, WorkerClient

log = structlog.get_logger("gateway.accounts")

DEFAULT = registry.DEFAULT_ACCOUNT


@dataclass
class Account:
    name: str
    shard: int
    worker: AccountWorker
    events: EventConsumer
    dispatcher: Dispatcher


def write_registry(data_dir: Path, rows: list[dict]) -> None:
    """``accounts.json`` for the workers, replaced atomically (0600) and durably (the directory too)."""
    path = Path(data_dir) / "accounts.json"
    body = json.dumps({"version": 1, "accounts": {r["account"]: {"shard": r["shard"] or 0} for r in rows}},
                      sort_keys=True, indent=1)
    write_private(path, body)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AccountRuntime:
    def __init__(self, settings: Settings, db: Database, workers: list[WorkerClient], *,
                 on_event_stored: list[Callable[[], None]], on_message_changed: list[Callable[[], None]],
                 on_message_advanced: Callable[[str, dict, tuple[str, ...]], None] | None = None):
        self.settings = settings
        # (account, row, steps reached) for every message a dispatcher moved forward (service/metrics.py)
        self._on_message_advanced = on_message_advanced
        self.db = db
        self.workers = workers  # one client per worker shard
        self._on_event_stored = on_event_stored
        self._on_message_changed = on_message_changed
        self._accounts: dict[str, Account] = {}
        self._lock = asyncio.Lock()  # create and delete one at a time

    # --- reading -----------------------------------------------------------------------------
    def get(self, name: str) -> Account | None:
        return self._accounts.get(name)

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

    async def start(self) -> None:
        now = time.time()
        await self.db.run(registry.ensure_default, now)
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
        for account in list(self._accounts.values()):
            await self._stop_account(account)
        self._accounts.clear()

    async def drain(self, deadline: float) -> dict:
        """SIGTERM (service/drain.py): every dispatcher at once; the totals of their sends in flight."""
        results = await asyncio.gather(*(a.dispatcher.drain(deadline) for a in list(self._accounts.values())))
        return {key: sum(r[key] for r in results) for key in ("sends_in_flight", "sends_finished", "sends_requeued")}

    def on_shard(self, shard: int) -> list[str]:
        return sorted(name for name, account in self._accounts.items() if account.shard == shard)

    async def _start_account(self, name: str, shard: int) -> Account:
        worker = self.workers[shard].account(name)
        events = EventConsumer(worker, self.db, account=name)
        events.on_stored.extend(self._on_event_stored)
        policy = self.settings.governor or GovernorPolicy()
        dispatcher = Dispatcher(
            self.db, worker, Governor(policy), account=name,
            concurrency=self.settings.dispatch_concurrency, max_attempts=self.settings.send_max_attempts,
            retry_base=self.settings.send_retry_base, retry_max=self.settings.send_retry_max,
            batch_size=self.settings.dispatch_batch,
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
    async def create(self, name: str) -> Account:
        """Register ``name`` (AccountExists, TooManyAccounts from the store), tell the worker, serve it."""
        async with self._lock:
            now = time.time()
            shard = self._least_loaded(await self.db.run(registry.list_accounts))
            row = await self.db.run(registry.create, name, shard, now, self.settings.max_accounts)
            rows = await self.db.run(registry.list_accounts)
            await asyncio.to_thread(write_registry, self.settings.data_dir, rows)
            account = await self._start_account(name, row["shard"] or 0)
            try:
                await account.worker.attach()
            except Exception as exc:  # the worker opens it at its next start anyway (accounts.json)
                log.warning("account.attach_deferred", account=name, error=str(exc))
            log.info("account.created", account=name, shard=account.shard)
            return account

    async def delete(self, name: str) -> dict:
        """Log the account out at WhatsApp, remove its data at the worker and every row in the store."""
        async with self._lock:
            account = self._accounts.get(name)
            if account is None:
                return {"unlinked": False}
            # Stop reading its events and take it out of accounts.json first: nothing may open the
            # account at the worker again once it is detached (a read would, while the file lists it).
            await self._stop_account(account)
            rows = [r for r in await self.db.run(registry.list_accounts) if r["account"] != name]
            await asyncio.to_thread(write_registry, self.settings.data_dir, rows)
            try:
                detached = await account.worker.detach()  # raises (5xx) when the worker is away: try again
            except BaseException:
                await asyncio.to_thread(write_registry, self.settings.data_dir,
                                        await self.db.run(registry.list_accounts))
                await self._start_account(name, account.shard)  # still served, as before the attempt
                raise
            del self._accounts[name]
            await self.db.run(registry.delete, name)
            log.info("account.deleted", account=name, unlinked=detached.get("unlinked"))
            return {"unlinked": bool(detached.get("unlinked"))}
