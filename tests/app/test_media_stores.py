"""One contract for every media store (service/media/store.py ``MediaStore``): the data dir's ``FileStore``, the
PostgreSQL store against a real server (tests/helpers/postgres.py; skipped, saying why, without its binaries)
and the S3 store against moto's standalone server (tests/helpers/s3_server.py). Each writes and commits locally,
adopts, stats, reads ranges, brings a blob back after its local copy is gone, adopts the same content again and
the same blob twice at once, and removes it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import pytest

from service.media.store import FileStore
from service.media.store_pg import MediaIntegrityError, PostgresStore
from service.media.store_s3 import S3Store
from tests.helpers import s3_server
from tests.helpers.media_stores import PG_CHUNK, S3_PART, close_store, open_store


@pytest.fixture(scope="module")
def s3():
    server = s3_server.S3Server().start()
    yield server
    server.stop()


@pytest.fixture(params=["file", "postgres", "s3"])
async def store(request, tmp_path):
    opened = await open_store(request.param, tmp_path / "media", request)
    yield opened
    await close_store(opened)


def _remote(store) -> bool:
    return not isinstance(store, FileStore)


def _local(store) -> FileStore:
    return store.local if _remote(store) else store


async def _write(store, data: bytes):
    async with store.writer(len(data) + 1) as writer:
        for start in range(0, len(data), 100_000):
            writer.write(data[start:start + 100_000])
        return await writer.commit()


async def _read(store, sha256: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(sha256, start, end)])


def _size(store) -> int:
    """Big enough to span several PostgreSQL chunks, and S3 parts (a multipart upload) for the S3 store."""
    return 2 * S3_PART + 12345 if isinstance(store, S3Store) else 3 * PG_CHUNK + 777


async def test_a_blob_goes_in_is_read_by_range_comes_back_and_goes(store):
    data = os.urandom(_size(store))
    sha256 = hashlib.sha256(data).hexdigest()
    blob = await _write(store, data)
    assert blob.sha256 == sha256 and blob.size == len(data)
    await store.adopt(blob)
    assert await store.stat(sha256) == len(data)
    assert await _read(store, sha256) == data
    size, chunk = len(data), PG_CHUNK
    for start, end in [(0, 1), (0, None), (chunk - 3, chunk + 5), (chunk, 2 * chunk), (size - 10, None),
                       (size - 10, size), (5, 5), (1000, 3 * chunk + 1), (size - 1, size + 100)]:
        assert await _read(store, sha256, start, end) == data[start:end], (start, end)
    if _remote(store):  # another instance received it: this one fetches it back for the worker
        _local(store).delete(sha256)
        path = await store.local_path(sha256)
        assert path.read_bytes() == data and oct(path.stat().st_mode & 0o777) == "0o600"
    else:
        assert (await store.local_path(sha256)).read_bytes() == data
    assert await store.remove(sha256) is True
    assert await store.stat(sha256) is None
    assert not _local(store).exists(sha256)
    with pytest.raises(FileNotFoundError):
        await _read(store, sha256)
    with pytest.raises(FileNotFoundError):
        await store.local_path(sha256)
    assert await store.remove(sha256) is False


async def test_the_same_content_adopted_again_and_twice_at_once_is_one_blob(store):
    data = os.urandom(_size(store))
    first = await _write(store, data)
    await store.adopt(first)
    again = await _write(store, data)  # the same bytes sent anew: one blob, adopted again without harm
    assert again.sha256 == first.sha256
    await store.adopt(again)
    assert await store.stat(first.sha256) == len(data)
    other = os.urandom(_size(store) - 1)
    blob = await _write(store, other)
    await asyncio.gather(store.adopt(blob), store.adopt(blob))  # two intakes of one content at once
    assert await store.stat(blob.sha256) == len(other)
    if _remote(store):
        _local(store).delete(blob.sha256)
    assert await _read(store, blob.sha256) == other
    assert await _read(store, first.sha256) == data
    if isinstance(store, PostgresStore):
        async with store.pool.acquire() as conn:
            assert await conn.fetchval("SELECT COUNT(*) FROM media_blobs") == 2
            chunks = await conn.fetchval("SELECT COUNT(*) FROM media_chunks WHERE sha256 = $1", blob.sha256)
            assert chunks == -(-len(other) // PG_CHUNK)


async def test_a_damaged_local_copy_is_not_made_durable(store):
    if not _remote(store):
        pytest.skip("the file store's local copy is the store")
    data = os.urandom(_size(store))
    blob = await _write(store, data)
    with open(blob.path, "r+b") as f:  # one bit flipped on disk after the commit
        f.seek(len(data) // 2)
        byte = f.read(1)
        f.seek(len(data) // 2)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(MediaIntegrityError):
        await store.adopt(blob)
    assert await store.stat(blob.sha256) is None


async def test_unknown_and_malformed_names(store):
    assert await store.stat("0" * 64) is None
    with pytest.raises(FileNotFoundError):
        await _read(store, "0" * 64)
    for bad in ("../" + "0" * 61, "A" * 64, "0" * 63):
        with pytest.raises(ValueError):
            await store.stat(bad)


async def test_a_sweep_never_takes_a_remote_blob_adopted_since_it_looked(store):
    if not _remote(store):
        pytest.skip("the file store's sweep checks the file's mtime (tests/app/test_media_retention.py)")
    blob = await _write(store, os.urandom(5000))
    looked = time.time() - 5  # a sweep listed the blob as older than this, then the same content came again
    await store.adopt(blob)
    assert await store.forget(blob.sha256, looked) is False
    assert await store.stat(blob.sha256) == 5000
    assert blob.sha256 not in await store.blobs(looked)
    assert blob.sha256 in await store.blobs(time.time() + 5)
    assert await store.forget(blob.sha256, time.time() + 5) is True
    assert await store.stat(blob.sha256) is None


async def test_two_instances_adopting_one_blob_at_once_store_it_once(request, tmp_path):
    """Two gateways on one PostgreSQL received the same content: each adopts its local copy at the same time."""
    first = await open_store("postgres", tmp_path / "one", request)
    second = PostgresStore(FileStore(tmp_path / "two"), request.getfixturevalue("url"), chunk_size=PG_CHUNK)
    try:
        await second.open()
        data = os.urandom(40 * PG_CHUNK)
        blobs = [await _write(first, data), await _write(second, data)]
        await asyncio.gather(first.adopt(blobs[0]), second.adopt(blobs[1]))
        async with first.pool.acquire() as conn:
            assert await conn.fetchval("SELECT COUNT(*) FROM media_chunks") == 40
            storage = await conn.fetchval("SELECT attstorage FROM pg_attribute"
                                          " WHERE attrelid = 'media_chunks'::regclass AND attname = 'data'")
            assert storage in ("e", b"e")  # EXTERNAL: uncompressed, so that substring reads only the slice
        second.local.delete(blobs[1].sha256)
        assert (await second.local_path(blobs[1].sha256)).read_bytes() == data
    finally:
        await close_store(first)
        await close_store(second)
