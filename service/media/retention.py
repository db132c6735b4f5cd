"""Media retention: messages' media pruned after WA_MEDIA_RETENTION, blobs deleted once nothing references them.

A pass (``prune_once``, hourly from the app's media context) does two things:
1. marks the media of done messages older than the retention pruned (``refs.prune_rows``): the rows stay, with
   their sha256, and ``GET /media/{id}`` answers 410 ``media_pruned``;
2. sweeps the blobs (mark and sweep, not a counter): every blob older than WA_MEDIA_PRUNE_GRACE, in the local
   media directory and in the remote store, that no unpruned message references (``refs.referenced``) is
   deleted. The same content shared by several messages or accounts stays while any of them needs it; a blob
   left by a request that failed after its commit (an orphan) goes too.

The grace period is what keeps an intake safe: its blob is committed (and adopted) before the row that references
it, so a blob younger than the grace is never deleted, referenced or not. Adopting a blob again (the same content
sent anew) renews its age in every store (the local file's mtime, the PostgreSQL row's ``touched_at``, the S3
object's LastModified), and each deletion checks the age once more right before it.

With a remote store the local directory is only a cache: a local copy the remote store holds is evicted once
older than the grace period, referenced or not (``local_path`` fetches it again when the worker needs it).
Several instances may sweep at once: every deletion is idempotent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from service.media import refs
from service.media.store import FileStore, MediaStore
from service.media.store_config import StoreSettings
from service.store.db import Database

log = structlog.get_logger("gateway.media")

INTERVAL = 3600.0
FIRST_PASS = 60.0  # seconds after start: not in the way of the start-up itself
PREFIX = "wa_gateway_media_"


class RemoteStore(Protocol):
    """What the PostgreSQL and S3 stores add for the sweep (service/media/store_pg.py, store_s3.py)."""

    local: FileStore

    async def blobs(self, older_than: float) -> list[str]: ...
    async def forget(self, sha256: str, untouched_since: float | None = None) -> bool: ...
    async def stat(self, sha256: str) -> int | None: ...
    async def totals(self) -> tuple[int, int]: ...


@dataclass
class MediaStats:
    """What the passes found, for the metrics: the store's size as of the last pass, and counts since start."""

    blobs: int | None = None
    bytes: int | None = None
    pruned: dict[str, int] = field(default_factory=lambda: {"outbound": 0, "inbound": 0})
    blobs_deleted: int = 0
    passes_failed: int = 0


def _local_store(store: MediaStore) -> tuple[FileStore, RemoteStore | None]:
    remote: Any = store
    if isinstance(store, FileStore):
        return store, None
    return remote.local, remote


def local_blobs(local: FileStore, older_than: float | None = None) -> dict[str, tuple[float, int]]:
    """The blobs in the local directory ``{sha256: (mtime, size)}``, only those last written before
    ``older_than`` when given (temp files are ``FileStore.sweep``'s)."""
    found = {}
    for entry in local.root.glob("[0-9a-f][0-9a-f]/*"):
        name = entry.parent.name + entry.name
        if len(name) != 64:
            continue
        try:
            info = entry.stat()
        except FileNotFoundError:
            continue
        if older_than is None or info.st_mtime < older_than:
            found[name] = (info.st_mtime, info.st_size)
    return found


def _delete_local_if_old(local: FileStore, sha256: str, older_than: float) -> bool:
    """Delete the local copy unless it was written or adopted again since ``older_than`` (checked right before)."""
    path: Path = local.path(sha256)
    try:
        if path.stat().st_mtime >= older_than:
            return False
    except FileNotFoundError:
        return False
    return local.delete(sha256)


async def _unreferenced(database: Database, blobs: Iterable[str]) -> list[str]:
    pending = sorted(set(blobs))
    free = []
    for start in range(0, len(pending), refs.BATCH):
        batch = pending[start:start + refs.BATCH]
        used = await database.run(refs.referenced, batch)
        free += [sha256 for sha256 in batch if sha256 not in used]
    return free


async def sweep(store: MediaStore, database: Database, grace: float, now: float | None = None) -> int:
    """Delete the blobs older than ``grace`` seconds that no unpruned message references; returns how many
    (local copies and remote blobs each count once)."""
    cutoff = (time.time() if now is None else now) - grace
    local, remote = _local_store(store)
    old_local = await asyncio.to_thread(local_blobs, local, cutoff)
    old_remote = await remote.blobs(cutoff) if remote is not None else []
    deleted = 0
    for sha256 in await _unreferenced(database, [*old_local, *old_remote]):
        if remote is not None and sha256 in old_remote and await remote.forget(sha256, cutoff):
            deleted += 1
        if sha256 in old_local and await asyncio.to_thread(_delete_local_if_old, local, sha256, cutoff):
            deleted += 1
    if remote is not None:  # the local directory is a cache: what the remote store holds need not stay here
        for sha256 in old_local:
            if local.exists(sha256) and await remote.stat(sha256) is not None:
                await asyncio.to_thread(_delete_local_if_old, local, sha256, cutoff)
    return deleted


async def prune_once(store: MediaStore, database: Database, settings: StoreSettings,
                     stats: MediaStats | None = None, now: float | None = None) -> MediaStats:
    """One pass: prune the rows due, sweep the blobs, and take the store's totals (see the module docstring)."""
    stats = stats or MediaStats()
    now = time.time() if now is None else now
    if settings.retention > 0:
        while True:
            out, inbound = await database.run(refs.prune_rows, now - settings.retention, now)
            stats.pruned["outbound"] += out
            stats.pruned["inbound"] += inbound
            if out < refs.BATCH and inbound < refs.BATCH:
                break
    deleted = await sweep(store, database, settings.grace, now)
    stats.blobs_deleted += deleted
    stats.blobs, stats.bytes = await _totals(store)
    if deleted:
        log.info("media.swept", blobs_deleted=deleted, blobs=stats.blobs, bytes=stats.bytes)
    return stats


async def _totals(store: MediaStore) -> tuple[int, int]:
    local, remote = _local_store(store)
    if remote is not None:
        return await remote.totals()
    found = await asyncio.to_thread(local_blobs, local)
    return len(found), sum(size for _, size in found.values())


async def over_quota(database: Database, quota: int) -> dict[str, int]:
    """The accounts whose media passes the quota, with their bytes: logged by each pass (inbound media is stored
    whatever the quota: a contact's message is never refused)."""
    if quota <= 0:
        return {}
    return {a: n for a, n in (await database.run(refs.bytes_by_account)).items() if n > quota}


async def run_media_retention(store: MediaStore, database: Database, settings: StoreSettings, stats: MediaStats,
                              interval: float = INTERVAL, first: float = FIRST_PASS) -> None:
    """Passes until cancelled (the app's media context starts and cancels it)."""
    await asyncio.sleep(first)
    while True:
        try:
            await prune_once(store, database, settings, stats)
            for account, held in (await over_quota(database, settings.quota_bytes)).items():
                log.warning("media.over_quota", account=account, bytes=held, quota=settings.quota_bytes)
        except Exception:
            stats.passes_failed += 1
            log.exception("media.prune_failed")
        await asyncio.sleep(interval)


class MediaCollector:
    """``wa_gateway_media_*``: the store's blobs and bytes (as of the last pass: listing a bucket at every scrape
    would cost), rows pruned and blobs deleted since start, and each account's bytes and quota (read at scrape
    time from the rows, like the other store metrics). Registered on the app's registry by the media context."""

    def __init__(self, stats: MediaStats, database: Database, quota: int, timeout: float = 2.0):
        self.stats = stats
        self.database = database
        self.quota = quota
        self.timeout = timeout

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        s = self.stats
        if s.blobs is not None and s.bytes is not None:
            blobs = GaugeMetricFamily(PREFIX + "blobs", "Media blobs in the store (as of the last retention pass).")
            blobs.add_metric([], s.blobs)
            size = GaugeMetricFamily(PREFIX + "stored_bytes", "Bytes of media in the store (last retention pass).")
            size.add_metric([], s.bytes)
            yield from (blobs, size)
        pruned = CounterMetricFamily(PREFIX + "pruned", "Messages whose media retention pruned, by direction.",
                                     labels=["direction"])
        for direction, count in sorted(s.pruned.items()):
            pruned.add_metric([direction], count)
        deleted = CounterMetricFamily(PREFIX + "blobs_deleted", "Blobs deleted once nothing referenced them.")
        deleted.add_metric([], s.blobs_deleted)
        yield from (pruned, deleted)
        yield from self._accounts()

    def _accounts(self) -> Iterable[Metric]:
        try:
            by_account = self.database.submit(refs.bytes_by_account).result(self.timeout)
        except Exception as exc:  # noqa: BLE001 - a scrape leaves these out, it does not fail
            log.warning("metrics.media_failed", error=type(exc).__name__)
            return
        held = GaugeMetricFamily(PREFIX + "account_bytes", "Bytes of the distinct media an account's unpruned "
                                 "messages reference (what WA_MEDIA_QUOTA_BYTES counts).", labels=["account"])
        over = GaugeMetricFamily(PREFIX + "account_over_quota", "1 when the account's media passes "
                                 "WA_MEDIA_QUOTA_BYTES (inbound media is stored regardless).", labels=["account"])
        for account in sorted(by_account):
            held.add_metric([account], by_account[account])
            over.add_metric([account], int(0 < self.quota < by_account[account]))
        yield from (held, over)

