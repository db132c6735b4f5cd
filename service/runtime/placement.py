"""Where an account is served: which worker shard, and (in a cluster) which instance.

``AccountRuntime`` (accounts.py) keeps the accounts served here and delegates every decision about placement
to one of two classes behind the ``Placement`` interface:

- ``LocalPlacement`` (this module): one gateway serves every account of its store; the store is the registry
  and ``accounts.json`` lists them all for the workers.
- ``ClusterPlacement`` (service/cluster/placement.py): several gateways share a PostgreSQL store; each serves
  the accounts it holds a lease for, and answers for the others through ``Elsewhere``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from service.config_error import write_private
from service.runtime.account import Account
from service.runtime.worker_client import WorkerClient
from service.settings import Settings
from service.store import accounts as registry
from service.store.db import Database

log = structlog.get_logger("gateway.accounts")


@dataclass
class Elsewhere:
    """An account of the cluster that another instance serves (or, between owners, nobody): what needs no
    WhatsApp session (the outbox, messages, events, webhooks) is answered here from the shared store; what
    does is forwarded to its owner (views/context.py)."""
    name: str
    owner: str | None
    owner_url: str | None


def write_registry(data_dir: Path, rows: list[dict[str, Any]]) -> None:
    """``accounts.json`` for the workers, replaced atomically (0600) and durably (the directory too). In a
    cluster it lists only the accounts this instance holds a lease for, each with its generation. An account's
    own proxy (``proxy_url``: a URL with its credentials, or ``direct``) is its ``proxy``: the worker reads it
    at each connection (node_worker/src/proxy.js); without one WA_PROXY_URL applies."""
    path = Path(data_dir) / "accounts.json"
    entries: dict[str, dict[str, int | str]] = {}
    for r in rows:
        entries[r["account"]] = {"shard": r["shard"] or 0}
        if r.get("lease_generation") is not None:
            entries[r["account"]]["lease_generation"] = r["lease_generation"]
        if r.get("proxy_url") is not None:
            entries[r["account"]]["proxy"] = r["proxy_url"]
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


def least_loaded(rows: list[dict[str, Any]], shards: int) -> int:
    """The shard holding the fewest accounts (the lowest on a tie): new accounts spread evenly."""
    load = {shard: 0 for shard in range(shards)}
    for row in rows:
        if (row["shard"] or 0) in load:
            load[row["shard"] or 0] += 1
    return min(load, key=lambda shard: (load[shard], shard))


class Host(Protocol):
    """What a placement needs of the runtime it places accounts for (runtime/accounts.py AccountRuntime)."""

    settings: Settings
    db: Database
    workers: list[WorkerClient]
    lock: asyncio.Lock  # create, delete, serve and unserve one at a time

    def get(self, name: str) -> Account | None: ...
    def get_shard(self, name: str) -> int: ...
    def names(self) -> list[str]: ...
    def take(self, name: str) -> Account | None: ...
    async def start_account(self, name: str, shard: int, fence: tuple[str, int] | None = None) -> Account: ...


class Placement(Protocol):
    """What ``AccountRuntime`` asks of a placement. Methods that change what is served run under the
    runtime's lock when the runtime holds it (create and delete here take it themselves where they need to)."""

    clustered: bool

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def lookup(self, name: str) -> Account | Elsewhere | None: ...
    async def listed(self) -> list[str]: ...
    async def create(self, name: str, proxy_url: str | None = None) -> Account | Elsewhere: ...
    async def rewrite(self) -> None: ...
    async def withdraw(self, name: str) -> None: ...
    async def restore(self, name: str, shard: int) -> None: ...
    async def forget(self, name: str) -> None: ...
    def view(self) -> dict[str, Any] | None: ...


class LocalPlacement:
    """One gateway, every account: shards from the store, ``accounts.json`` lists them all."""

    clustered = False

    def __init__(self, runtime: Host):
        self.runtime = runtime

    async def start(self) -> None:
        rt = self.runtime
        rows = await rt.db.run(registry.list_accounts)
        # Fewer shards than before (WA_WORKER_SHARDS lowered): their accounts move, once, for good.
        placed = [r for r in rows if (r["shard"] or 0) < len(rt.workers)]
        for row in rows:
            if (row["shard"] or 0) >= len(rt.workers):
                shard = least_loaded(placed, len(rt.workers))
                await rt.db.run(registry.set_shard, row["account"], shard)
                log.info("account.moved", account=row["account"], old_shard=row["shard"], shard=shard)
                row["shard"] = shard
                placed.append(row)
        await asyncio.to_thread(write_registry, rt.settings.data_dir, rows)
        for row in rows:
            await rt.start_account(row["account"], row["shard"] or 0)

    async def stop(self) -> None:
        return None

    def lookup(self, name: str) -> Account | Elsewhere | None:
        return self.runtime.get(name)

    async def listed(self) -> list[str]:
        return self.runtime.names()

    async def create(self, name: str, proxy_url: str | None = None) -> Account | Elsewhere:
        rt = self.runtime
        async with rt.lock:
            now = time.time()
            shard = least_loaded(await rt.db.run(registry.list_accounts), len(rt.workers))
            row = await rt.db.run(registry.create, name, shard, now, rt.settings.max_accounts, proxy_url)
            rows = await rt.db.run(registry.list_accounts)
            try:
                await asyncio.to_thread(write_registry, rt.settings.data_dir, rows)
            except OSError:
                await self._undo_create(name)  # no worker would take it: not created (507 on a full disk)
                raise
            account = await rt.start_account(name, row["shard"] or 0)
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
            await self.runtime.db.run(registry.delete, name)
        except Exception as exc:  # noqa: BLE001 - the next start writes accounts.json from the store anyway
            log.error("account.create_undo_failed", account=name, error=f"{type(exc).__name__}: {exc}"[:300])

    async def rewrite(self) -> None:
        """accounts.json again from the store (an account's proxy changed)."""
        rt = self.runtime
        async with rt.lock:
            await asyncio.to_thread(write_registry, rt.settings.data_dir, await rt.db.run(registry.list_accounts))

    async def withdraw(self, name: str) -> None:
        rt = self.runtime
        rows = [r for r in await rt.db.run(registry.list_accounts) if r["account"] != name]
        await asyncio.to_thread(write_registry, rt.settings.data_dir, rows)

    async def restore(self, name: str, shard: int) -> None:
        rt = self.runtime
        await asyncio.to_thread(write_registry, rt.settings.data_dir, await rt.db.run(registry.list_accounts))
        await rt.start_account(name, shard)

    async def forget(self, name: str) -> None:
        return None

    def view(self) -> dict[str, Any] | None:
        return None
