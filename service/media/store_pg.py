"""Media kept in PostgreSQL (``WA_MEDIA_STORE=postgres``): in cluster mode any instance serves any account's media.

A blob is chunked rows: ``media_chunks(sha256, n, data bytea)`` of ``CHUNK`` bytes each, and one
``media_blobs(sha256, size, chunk_size, ...)`` row written last, all in one transaction: a blob is in the table
whole or not at all, and ``media_blobs`` alone says which are. Chunks rather than large objects because rows go
with ``pg_dump``, replication and ``DELETE`` like the rest of the data (large objects need ``lo_unlink`` and their
own privileges), and a chunk is read with ``substring`` so that a range costs what it covers (the column's storage
is EXTERNAL: media is already compressed, and uncompressed TOAST slices are read without the whole value).

Streamed both ways: ``adopt`` reads the local file one chunk at a time (hashing it again: a local copy damaged
since its commit is refused, not made durable), ``read`` and ``local_path`` fetch one chunk per query. Two
instances adopting the same blob at once take a transaction-scoped advisory lock on it; the second finds the
row and does nothing.

Its own small asyncpg pool on the app's loop rather than the store's writer thread: that thread runs every
commit of the gateway one batch after another, and a 100 MB upload through it would hold up every send behind it.
The tables are created by the store (``CREATE TABLE IF NOT EXISTS`` under an advisory lock) rather than by a
numbered migration: they exist only where this store is chosen, ``bytea`` has no portable spelling for the SQLite
side of the migrations, and they may live in another database than the outbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.media.local_copy import MediaIntegrityError as MediaIntegrityError  # re-exported
from service.media.local_copy import local_copy
from service.media.store import Blob, FileStore
from service.store.pg_url import redact_url, scrub, split_password

if TYPE_CHECKING:
    from asyncpg import Pool

CHUNK = 1024 * 1024  # bytes per row
LOCK_CLASS = 0x6D656469  # 'medi': the first key of the two-key advisory locks this store takes
SCHEMA = """
CREATE TABLE IF NOT EXISTS media_blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    chunk_size INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    touched_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS media_chunks (
    sha256 TEXT NOT NULL,
    n INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (sha256, n)
);
"""
# Once, when the table is made: ALTER takes an exclusive lock, which a start must not take while others read.
UNCOMPRESSED = "ALTER TABLE media_chunks ALTER COLUMN data SET STORAGE EXTERNAL"


def _lock_key(sha256: str) -> int:
    """The blob's advisory lock key: 32 bits of its hash, as a signed int4."""
    return int(sha256[:8], 16) - 2**31


class PostgresStore:
    """``FileStore`` for the local copies the worker reads and writes; PostgreSQL for what lasts."""

    def __init__(self, local: FileStore, url: str, *, chunk_size: int = CHUNK, pool_size: int = 4):
        self.local = local
        self.root = local.root
        self.url = redact_url(url)
        self._dsn, self._password = split_password(url)
        self.chunk_size = chunk_size
        self.pool_size = pool_size
        self._pool: Pool | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    async def open(self) -> PostgresStore:
        import asyncpg  # only when this store is chosen (see service/store/pg_connection.py on its cost)

        try:
            self._pool = await asyncpg.create_pool(
                self._dsn, password=self._password, min_size=1, max_size=self.pool_size, timeout=10,
                command_timeout=120, server_settings={"application_name": "wa-gateway-media"})
        except Exception as exc:  # noqa: BLE001 - re-raised without the password
            reason = scrub(str(exc), (self._password or "",))
            raise RuntimeError(f"cannot connect the media store to {self.url}: {type(exc).__name__}: {reason}") \
                from None
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", LOCK_CLASS)
            if await conn.fetchval("SELECT to_regclass('media_chunks')") is None:
                await conn.execute(SCHEMA)
                await conn.execute(UNCOMPRESSED)
        return self

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("the media store is not open")
        return self._pool

    def writer(self, limit: int) -> Any:
        return self.local.writer(limit)

    async def stat(self, sha256: str) -> int | None:
        self.local.path(sha256)  # validates the name
        size = await self.pool.fetchval("SELECT size FROM media_blobs WHERE sha256 = $1", sha256)
        return None if size is None else int(size)

    async def adopt(self, blob: Blob) -> None:
        """Copy the committed local blob into the tables (nothing when they hold it: its touch time is renewed,
        so that a sweep does not take a blob an intake is about to reference again)."""
        await asyncio.to_thread(blob.path.touch)  # the local copy is fresh too: its sweep waits as long
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, _lock_key(blob.sha256))
            if await conn.fetchval("UPDATE media_blobs SET touched_at = $2 WHERE sha256 = $1 RETURNING 1",
                                   blob.sha256, time.time()):
                return
            digest = hashlib.sha256()
            size = 0
            with await asyncio.to_thread(blob.path.open, "rb") as handle:
                n = 0
                while chunk := await asyncio.to_thread(handle.read, self.chunk_size):
                    digest.update(chunk)
                    size += len(chunk)
                    await conn.execute("INSERT INTO media_chunks (sha256, n, data) VALUES ($1, $2, $3)",
                                       blob.sha256, n, chunk)
                    n += 1
            if digest.hexdigest() != blob.sha256 or size != blob.size:
                raise MediaIntegrityError(f"the local copy of {blob.sha256} no longer matches its hash")
            now = time.time()
            await conn.execute("INSERT INTO media_blobs (sha256, size, chunk_size, created_at, touched_at)"
                               " VALUES ($1, $2, $3, $4, $4)", blob.sha256, size, self.chunk_size, now)

    async def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """``[start, end)`` one chunk per query, each on a connection held only for that query (a slow client
        does not hold one); FileNotFoundError when the blob is not stored (or removed while being read)."""
        row = await self.pool.fetchrow("SELECT size, chunk_size FROM media_blobs WHERE sha256 = $1", sha256)
        if row is None:
            raise FileNotFoundError(sha256)
        size, chunk_size = int(row["size"]), int(row["chunk_size"])
        end = size if end is None else min(end, size)
        position = start
        while position < end:
            n, offset = divmod(position, chunk_size)
            length = min(chunk_size - offset, end - position)
            data = await self.pool.fetchval(  # substring counts from 1
                "SELECT substring(data FROM $3 FOR $4) FROM media_chunks WHERE sha256 = $1 AND n = $2",
                sha256, n, offset + 1, length)
            if data is None or len(data) != length:
                raise FileNotFoundError(sha256)
            position += length
            yield bytes(data)

    async def local_path(self, sha256: str) -> Path:
        """The local copy, fetched first when this instance has none (verified before it is put in place)."""
        return await local_copy(self.local, sha256, self.stat, self.read)

    async def remove(self, sha256: str) -> bool:
        """Delete the blob: its rows and this instance's local copy (another instance's copy is its cache, which
        its own sweep deletes)."""
        self.local.path(sha256)
        gone = await self.forget(sha256)
        local = await asyncio.to_thread(self.local.delete, sha256)
        return gone or local

    async def forget(self, sha256: str, untouched_since: float | None = None) -> bool:
        """Delete the rows of the blob; with ``untouched_since``, only when nothing adopted it since then
        (checked under the blob's lock, which ``adopt`` takes too: a sweep never takes a blob just reused)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, _lock_key(sha256))
            gone = await conn.fetchval("DELETE FROM media_blobs WHERE sha256 = $1 AND touched_at < $2 RETURNING 1",
                                       sha256, time.time() + 1 if untouched_since is None else untouched_since)
            if gone:
                await conn.execute("DELETE FROM media_chunks WHERE sha256 = $1", sha256)
        return bool(gone)

    async def blobs(self, older_than: float) -> list[str]:
        """The stored blobs last adopted before ``older_than`` (epoch seconds): what a sweep may consider."""
        rows = await self.pool.fetch("SELECT sha256 FROM media_blobs WHERE touched_at < $1", older_than)
        return [row["sha256"] for row in rows]

    async def totals(self) -> tuple[int, int]:
        """(blobs, bytes) stored, for the metrics."""
        row = await self.pool.fetchrow("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM media_blobs")
        assert row is not None
        return int(row[0]), int(row[1])
