"""Every media store opened the same way for the tests: the data dir's, PostgreSQL's (the session's server,
tests/helpers/postgres.py) and S3's (moto's server, tests/helpers/s3_server.py), each over a local FileStore."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

from service.media.store import Blob, FileStore
from service.media.store_config import StoreSettings
from service.media.store_pg import PostgresStore
from service.media.store_s3 import S3Store
from tests.helpers import s3_server

PG_CHUNK = 64 * 1024  # small chunks: a blob of a few hundred KB spans many rows
S3_PART = 5 * 1024 * 1024  # S3's smallest part: a blob above it goes up in parts


def s3_settings(server: s3_server.S3Server, bucket: str) -> StoreSettings:
    return StoreSettings(kind="s3", s3_bucket=bucket, s3_endpoint_url=server.url, s3_region=s3_server.REGION,
                         s3_prefix="media/", s3_access_key_id=s3_server.ACCESS_KEY_ID,
                         s3_secret_access_key=s3_server.SECRET_ACCESS_KEY)


async def open_store(kind: str, root: Path, request: Any) -> Any:
    """``request``: the pytest request, whose ``url`` / ``s3`` fixtures a remote store takes lazily (so that the
    file store's tests need neither server)."""
    local = FileStore(root)
    if kind == "file":
        return local
    if kind == "postgres":
        return await PostgresStore(local, request.getfixturevalue("url"), chunk_size=PG_CHUNK).open()
    server = request.getfixturevalue("s3")
    bucket = "wa-" + secrets.token_hex(6)
    server.create_bucket(bucket)
    return await S3Store(local, s3_settings(server, bucket), part_size=S3_PART).open()


async def close_store(store: Any) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        await close()


def local_of(store: Any) -> FileStore:
    return store if isinstance(store, FileStore) else store.local


async def put(store: Any, data: bytes, *, adopt: bool = True) -> Blob:
    """``data`` written, committed and (by default) adopted, as an intake does."""
    async with store.writer(len(data) + 1) as writer:
        for start in range(0, len(data), 100_000):
            writer.write(data[start:start + 100_000])
        blob: Blob = await writer.commit()
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    if adopt:
        await store.adopt(blob)
    return blob
