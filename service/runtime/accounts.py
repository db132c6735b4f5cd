"""The WhatsApp accounts this gateway serves, each with its link, event reader and dispatcher.

The database is the registry (service/store/accounts.py: name, shard); the worker learns it from
``$WA_DATA_DIR/accounts.json``, which is written (temp file, fsync, rename) from the registry before a
worker is asked to attach an account, so a worker that restarts finds its accounts without asking.
``default`` always exists: the original routes act on it.

Per account served here: an ``AccountWorker`` (the worker's ``/accounts/<name>/...`` routes), an
``AccountLink`` (the one mirror of its WhatsApp state), an ``EventConsumer`` (its durable event hand-over) and
a ``Dispatcher`` (its outbox, with its own send governor). Which accounts are served here, and on which
shard, is the placement's decision (placement.py: one gateway; service/cluster/placement.py: a cluster).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import structlog

from service import proxy_url as proxy_url_module
from service.cluster.placement import ClusterPlacement
from service.media.store import MediaStore
from service.runtime.account import Account
from service.runtime.dispatch import Dispatcher
from service.runtime.downloads import Downloader
from service.runtime.governor import Governor, GovernorPolicy
from service.runtime.link import AccountLink
from service.runtime.media_send import send_with_media
from service.runtime.placement import Elsewhere, LocalPlacement, Placement
from service.runtime.shard_watch import ShardWatcher
from service.runtime.worker_client import WorkerClient, send_run
from service.runtime.worker_events import EventConsumer
from service.settings import Settings
from service.states import DEFAULT_ACCOUNT
from service.store import accounts as registry
from service.store.db import Database

__all__ = ["DEFAULT", "Account", "AccountRuntime", "Elsewhere"]

log = structlog.get_logger("gateway.accounts")

DEFAULT = DEFAULT_ACCOUNT


class AccountRuntime:
    def __init__(self, settings: Settings, db: Database, workers: list[WorkerClient], *,
                 on_event_stored: list[Callable[[], None]], on_message_changed: list[Callable[[], None]],
                 on_message_advanced: Callable[[str, dict[str, Any], tuple[str, ...]], None] | None = None,
                 on_keys_changed: Callable[[], None] | None = None, media_store: MediaStore | None = None):
        self.settings = settings
        self.media_store = media_store  # where sends read their media from (None: text only, as in some tests)
        # (account, row, steps reached) for every message a dispatcher moved forward (service/http/metrics.py)
        self._on_message_advanced = on_message_advanced
        self.db = db
        self.workers = workers  # one client per worker shard
        # One long-poll per shard feeds every account's link and wakes its event reader (shard_watch.py).
        self.watchers = [ShardWatcher(worker, shard) for shard, worker in enumerate(workers)]
        self._on_event_stored = on_event_stored
        self._on_message_changed = on_message_changed
        self._accounts: dict[str, Account] = {}
        self.lock = asyncio.Lock()  # create, delete, serve and unserve one at a time
        self.placement: Placement
        if settings.database_url:  # a cluster: this instance serves only the accounts it holds a lease for
            self.placement = ClusterPlacement(self, on_keys_changed)
        else:
            self.placement = LocalPlacement(self)

    # --- reading -----------------------------------------------------------------------------
    def get(self, name: str) -> Account | None:
        """The account if this instance serves it."""
        return self._accounts.get(name)

    def get_shard(self, name: str) -> int:
        return self._accounts[name].shard

    def lookup(self, name: str) -> Account | Elsewhere | None:
        """The account served here, one of the cluster served elsewhere, or None (no such account)."""
        return self.placement.lookup(name)

    def names(self) -> list[str]:
        """The accounts served here."""
        return sorted(self._accounts)

    async def listed(self) -> list[str]:
        """The accounts ``GET /accounts`` lists: every account of the store (in a cluster, those served
        elsewhere too)."""
        return await self.placement.listed()

    @property
    def clustered(self) -> bool:
        return self.placement.clustered

    def cluster_view(self) -> dict[str, Any] | None:
        """This instance, what it serves and every instance (/health); None without a cluster."""
        return self.placement.view()

    @property
    def default(self) -> Account:
        return self._accounts[DEFAULT]

    def on_shard(self, shard: int) -> list[str]:
        return sorted(name for name, account in self._accounts.items() if account.shard == shard)

    # --- life --------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.db.run(registry.ensure_default, time.time())
        for watcher in self.watchers:
            watcher.start()
        await self.placement.start()

    async def stop(self) -> None:
        await self.placement.stop()
        for account in list(self._accounts.values()):
            await self.stop_account(account)
        self._accounts.clear()
        for watcher in self.watchers:
            await watcher.stop()

    async def drain(self, deadline: float) -> dict[str, int]:
        """SIGTERM (service/http/drain.py): every dispatcher at once; the totals of their sends in flight."""
        results = await asyncio.gather(*(a.dispatcher.drain(deadline) for a in list(self._accounts.values())))
        return {key: sum(r[key] for r in results) for key in ("sends_in_flight", "sends_finished", "sends_requeued")}

    async def start_account(self, name: str, shard: int, fence: tuple[str, int] | None = None) -> Account:
        """Serve ``name`` here on ``shard``: its link, event reader and dispatcher (fenced by the lease's
        generation in a cluster)."""
        worker = self.workers[shard].account(name)
        link = AccountLink(self.db, worker, account=name)
        events = EventConsumer(worker, self.db, account=name)
        events.on_stored.extend(self._on_event_stored)
        policy = self.settings.governor or GovernorPolicy()
        dispatcher = Dispatcher(
            self.db, worker, Governor(policy), account=name, link=link,
            concurrency=self.settings.dispatch_concurrency, max_attempts=self.settings.send_max_attempts,
            retry_base=self.settings.send_retry_base, retry_max=self.settings.send_retry_max,
            batch_size=self.settings.dispatch_batch, fence=fence, receipt_bound=self.settings.delivery_receipt_bound,
            send=send_run if self.media_store is None else partial(
                send_with_media, store=self.media_store, timeout=self.settings.media.send_timeout),
        )
        dispatcher.on_change.extend(self._on_message_changed)
        if self._on_message_advanced is not None:
            dispatcher.on_advance.append(partial(self._on_message_advanced, name))
        # Before the first event is read, in this order: the state first, then what it releases.
        events.listeners.append(link.on_event)
        events.listeners.append(dispatcher.on_event)
        downloads = None
        if self.media_store is not None:  # its contacts' media, fetched while this instance serves it
            downloads = Downloader(self.db, worker, self.media_store, self.settings.media, account=name)
            downloads.on_stored.extend(self._on_event_stored)
            events.listeners.append(downloads.on_event)
        account = Account(name, shard, worker, link, events, dispatcher, downloads)
        self._accounts[name] = account
        self.watchers[shard].follow(name, link, events)
        events.start()
        await dispatcher.start()
        if downloads is not None:
            downloads.start()
        return account

    def take(self, name: str) -> Account | None:
        """No longer served here (the caller stops it)."""
        account = self._accounts.pop(name, None)
        if account is not None:
            self.watchers[account.shard].unfollow(name)
        return account

    async def stop_account(self, account: Account) -> None:
        self.watchers[account.shard].unfollow(account.name)
        if account.downloads is not None:
            await account.downloads.stop()
        await account.dispatcher.stop()
        await account.link.stop()
        await account.events.stop()

    # --- changing ----------------------------------------------------------------------------
    async def create(self, name: str, proxy_url: str | None = None) -> Account | Elsewhere:
        """Register ``name`` (AccountExists, TooManyAccounts from the store), tell the worker, serve it (in a
        cluster the instance it hashes to takes its lease: this one at once when it is that instance).
        ``proxy_url``: its own proxy (a checked URL or ``direct``), None for WA_PROXY_URL."""
        return await self.placement.create(name, proxy_url)

    async def set_proxy(self, name: str, proxy_url: str | None) -> dict[str, Any] | None:
        """Store the account's own proxy and rewrite accounts.json: the worker reads it when the account next
        connects (a running connection keeps its way). The account's row, or None when it is unknown."""
        row = await self.db.run(registry.set_proxy, name, proxy_url)
        if row is not None:
            await self.placement.rewrite()
            log.info("account.proxy_changed", account=name, proxy=proxy_url_module.redact(proxy_url))
        return row

    async def delete(self, name: str) -> dict[str, bool]:
        """Log the account out at WhatsApp, remove its data at the worker and every row in the store."""
        async with self.lock:
            account = self._accounts.get(name)
            if account is None:
                return {"unlinked": False}
            # Stop reading its events and take it out of accounts.json first: nothing may open the
            # account at the worker again once it is detached (a read would, while the file lists it).
            await self.stop_account(account)
            await self.placement.withdraw(name)
            try:
                detached = await account.worker.detach()  # raises (5xx) when the worker is away: try again
            except BaseException:
                await self.placement.restore(name, account.shard)  # still served, as before the attempt
                raise
            self._accounts.pop(name, None)
            await self.placement.forget(name)
            await self.db.run(registry.delete, name)
            log.info("account.deleted", account=name, unlinked=detached.get("unlinked"))
            return {"unlinked": bool(detached.get("unlinked"))}
