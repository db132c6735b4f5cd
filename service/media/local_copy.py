"""The local copy of a blob a remote store (PostgreSQL, S3) holds: what the worker reads from WA_MEDIA_DIR.

Both remote stores keep every blob in the store proper and only a cache in the local media directory; this is
the one way that cache is filled (verified before it is put in place) and kept (its mtime renewed on each use,
since the retention pass evicts only local copies older than its grace period).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from service.media.store import FileStore


class MediaIntegrityError(RuntimeError):
    """A remote store's bytes do not hash to their name (damaged in the store, or on the way)."""


async def local_copy(local: FileStore, sha256: str, stat: Callable[[str], Awaitable[int | None]],
                     read: Callable[[str], AsyncIterator[bytes]]) -> Path:
    """The local copy of ``sha256``, fetched through ``stat``/``read`` first when this instance has none
    (FileNotFoundError when the store has none either; MediaIntegrityError when its bytes are not the blob's)."""
    path = local.path(sha256)
    try:
        await asyncio.to_thread(os.utime, path)
        return path
    except FileNotFoundError:
        pass
    size = await stat(sha256)
    if size is None:
        raise FileNotFoundError(sha256)
    digest = hashlib.sha256()
    async with local.writer(max(size, 1)) as writer:
        async for chunk in read(sha256):
            digest.update(chunk)
            await asyncio.to_thread(writer.write, chunk)
        if digest.hexdigest() != sha256:
            raise MediaIntegrityError(f"the stored bytes of {sha256} do not match their hash")
        await writer.commit()
    return path
