"""A content-addressed store of media bytes on disk: a blob is named by its sha256 and written crash-safe.

Bytes stream into a temp file (0600) under ``tmp/`` in the media directory (0700), hashed and counted as they
come; past the limit the write stops and the temp file is deleted (``MediaTooLarge``, nothing stored). On
commit the file is fsync'ed, renamed to ``<ab>/<cdef...>`` (the sha256 split after two hex digits) and the
directory fsync'ed: a blob exists under its name whole or not at all, and a kill mid-write leaves only a temp
file, which ``sweep`` deletes (at start-up). The same content twice is stored once. Deleting a blob is the
caller's decision (the outbox knows which rows still reference it).

``MediaStore`` is the interface (a PostgreSQL or S3 store can come later); ``FileStore`` the disk one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from service.media.errors import MediaTooLarge

HEAD_BYTES = 8192  # the first bytes kept for sniffing the type
READ_CHUNK = 256 * 1024  # bytes per read when serving a blob
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Blob:
    sha256: str
    size: int
    path: Path


class BlobWriter(Protocol):
    """One blob being written: ``write`` the chunks, then ``commit`` (or ``abort``; leaving the ``async with``
    without a commit aborts)."""

    size: int
    head: bytes

    def write(self, chunk: bytes) -> None: ...
    async def commit(self) -> Blob: ...
    def abort(self) -> None: ...
    async def __aenter__(self) -> BlobWriter: ...
    async def __aexit__(self, *exc: object) -> None: ...


class MediaStore(Protocol):
    """Where media lives. Every blob is first written and committed in the local media directory (``writer``,
    what the worker reads and writes); ``adopt`` makes a committed blob durable in the store proper (nothing to
    do for the disk store; an upload for a remote one), ``local_path`` brings one back for the worker. The
    gateway serves and deletes blobs only through the async methods, so a remote store fits behind them."""

    def writer(self, limit: int) -> BlobWriter: ...
    async def stat(self, sha256: str) -> int | None: ...
    def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]: ...
    async def adopt(self, blob: Blob) -> None: ...
    async def local_path(self, sha256: str) -> Path: ...
    async def remove(self, sha256: str) -> bool: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileWriter:
    def __init__(self, store: FileStore, limit: int):
        self.store = store
        self.limit = limit
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()
        fd, name = tempfile.mkstemp(prefix="blob-", dir=store.tmp)  # mkstemp: 0600
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._tmp = Path(name)
        self._state: Literal["open", "committing", "done"] = "open"

    def write(self, chunk: bytes) -> None:
        if self._file is None or self._state != "open":
            raise ValueError("the writer is closed")
        if self.size + len(chunk) > self.limit:
            self.abort()
            raise MediaTooLarge(f"the media is larger than its limit of {self.limit} bytes")
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self._hash.update(chunk)
        self._file.write(chunk)
        self.size += len(chunk)

    async def commit(self) -> Blob:
        if self._file is None or self._state != "open":
            raise ValueError("the writer is closed")
        sha256 = self._hash.hexdigest()
        self._state = "committing"
        finish = asyncio.ensure_future(asyncio.to_thread(self._finish, sha256))
        try:
            await asyncio.shield(finish)
        except asyncio.CancelledError:  # the thread runs on: clean up after it, not under it
            finish.add_done_callback(lambda _: self._cleanup())
            raise
        except BaseException:
            self._cleanup()
            raise
        return Blob(sha256, self.size, self.store.path(sha256))

    def _finish(self, sha256: str) -> None:
        """In a thread: fsync, then rename into place and fsync the directories."""
        file = self._file
        assert file is not None
        file.flush()
        os.fsync(file.fileno())
        file.close()
        self._file = None
        target = self.store.path(sha256)
        if target.exists():  # the same content is already stored: keep that one
            self._tmp.unlink()
        else:
            target.parent.mkdir(mode=0o700, exist_ok=True)
            os.replace(self._tmp, target)
            _fsync_dir(target.parent)
            _fsync_dir(self.store.root)
        self._state = "done"  # the temp name is gone: never unlink it again (a new writer may hold it)

    def abort(self) -> None:
        """Close and delete the temp file; nothing once committed, nor while a commit runs (it cleans up)."""
        if self._state == "open":
            self._cleanup()

    def _cleanup(self) -> None:
        if self._state == "done":
            return
        self._state = "done"
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)

    async def __aenter__(self) -> FileWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.abort()


class FileStore:
    """Blobs under ``root``: ``root/ab/cdef...`` (0600 files, 0700 directories), temp files under ``root/tmp``."""

    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / "tmp"
        for path in (root, self.tmp):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.chmod(0o700)

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:]

    def writer(self, limit: int) -> FileWriter:
        return FileWriter(self, limit)

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def delete(self, sha256: str) -> bool:
        path = self.path(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    async def stat(self, sha256: str) -> int | None:
        """The blob's size, or None when it is not stored."""
        try:
            return (await asyncio.to_thread(self.path(sha256).stat)).st_size
        except FileNotFoundError:
            return None

    async def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` in chunks, read off the event loop (FileNotFoundError when absent)."""
        handle = await asyncio.to_thread(self.open, sha256)
        try:
            await asyncio.to_thread(handle.seek, start)
            left = None if end is None else max(0, end - start)
            while left is None or left > 0:
                chunk = await asyncio.to_thread(handle.read, READ_CHUNK if left is None else min(READ_CHUNK, left))
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def adopt(self, blob: Blob) -> None:
        """Committed on disk is stored; its mtime is renewed, because a commit of content already stored keeps
        the old file, and the retention sweep (service/media/retention.py) spares only blobs younger than its
        grace period until the row that references them commits."""
        await asyncio.to_thread(os.utime, blob.path)

    async def local_path(self, sha256: str) -> Path:
        path = self.path(sha256)
        if not await asyncio.to_thread(path.is_file):
            raise FileNotFoundError(sha256)
        return path

    async def remove(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.delete, sha256)

    def sweep(self, older_than: float = 3600.0) -> int:
        """Delete temp files left by a crash (older than ``older_than`` seconds: not a write in progress)."""
        cutoff = time.time() - older_than
        removed = 0
        for temp in self.tmp.glob("blob-*"):
            try:
                if temp.stat().st_mtime <= cutoff:
                    temp.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
