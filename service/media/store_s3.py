"""Media kept in an S3-compatible bucket (``WA_MEDIA_STORE=s3``): AWS S3, MinIO, Ceph RGW, R2, Garage, ...

Object key = ``WA_MEDIA_S3_PREFIX`` + sha256. ``adopt`` uploads the committed local blob, hashing it again as it
goes (a local copy damaged since its commit is refused): one PUT up to ``PART`` bytes, a multipart upload above
(``PART``-sized parts read one at a time from the file, so memory does not grow with the blob; aborted on any
failure, so no half upload is left to bill). An object appears whole or not at all, under its hash: two
instances adopting the same blob at once upload the same bytes and either write wins. ``read`` is a ranged GET
streamed in ``READ_CHUNK`` pieces, ``local_path`` the same into the local store, verified before it is put in
place.

Adopting a blob the bucket already holds copies the object onto itself with new metadata: its LastModified is
what the sweep's grace period reads, and an intake that reuses old content must not see it swept before its
row commits.

The client is aiobotocore's (botocore's request signing, retries and endpoint rules on aiohttp, which the gateway
already runs on); imported only when this store is chosen. The credentials go to the client and nowhere else:
they are not in this object's repr, nor in any log line or error.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.media.local_copy import MediaIntegrityError, local_copy
from service.media.store import READ_CHUNK, Blob, FileStore
from service.media.store_config import StoreSettings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

PART = 8 * 1024 * 1024  # bytes per multipart part (S3's minimum is 5 MiB, but for the last)
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def _missing(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND


class S3Store:
    """``FileStore`` for the local copies the worker reads and writes; a bucket for what lasts."""

    def __init__(self, local: FileStore, settings: StoreSettings, *, part_size: int = PART):
        self.local = local
        self.root = local.root
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self.part_size = part_size
        self._settings = settings
        self._stack = contextlib.AsyncExitStack()
        self._client: S3Client | None = None

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={self._settings.s3_endpoint_url!r})"

    async def open(self) -> S3Store:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        s = self._settings
        config = AioConfig(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                           s3={"addressing_style": "path" if s.s3_endpoint_url else "auto"})
        client = await self._stack.enter_async_context(get_session().create_client(
            "s3", region_name=s.s3_region, endpoint_url=s.s3_endpoint_url or None, config=config,
            aws_access_key_id=s.s3_access_key_id or None, aws_secret_access_key=s.s3_secret_access_key or None))
        self._client = client
        try:
            await client.head_bucket(Bucket=self.bucket)  # a wrong bucket or credentials fail the start-up
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    @property
    def client(self) -> S3Client:
        if self._client is None:
            raise RuntimeError("the media store is not open")
        return self._client

    def key(self, sha256: str) -> str:
        self.local.path(sha256)  # validates the name
        return self.prefix + sha256

    def writer(self, limit: int) -> Any:
        return self.local.writer(limit)

    async def stat(self, sha256: str) -> int | None:
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    async def _written(self, key: str) -> float | None:
        """When the object was last written (epoch seconds), or None when it is absent."""
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        return float(head["LastModified"].timestamp())

    async def adopt(self, blob: Blob) -> None:
        key = self.key(blob.sha256)
        await asyncio.to_thread(blob.path.touch)  # the local copy is fresh too: its sweep waits as long
        written = await self._written(key)
        if written is not None:
            if written < time.time() - self._settings.grace / 2:  # a copy per popular send would cost: at most
                await self.client.copy_object(  # one per half grace period, which still keeps it from the sweep
                    Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                    MetadataDirective="REPLACE", Metadata={"touched": str(time.time())})
            return
        digest = hashlib.sha256()
        with await asyncio.to_thread(blob.path.open, "rb") as handle:
            first = await asyncio.to_thread(handle.read, self.part_size)
            digest.update(first)
            if len(first) < self.part_size:
                self._check(digest, blob, len(first))
                await self.client.put_object(Bucket=self.bucket, Key=key, Body=first)
                return
            upload = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
            try:
                await self._parts(handle, first, digest, blob, upload["UploadId"])
            except BaseException:
                await asyncio.shield(self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                                        UploadId=upload["UploadId"]))
                raise

    async def _parts(self, handle: Any, first: bytes, digest: Any, blob: Blob, upload_id: str) -> None:
        key = self.key(blob.sha256)
        parts: list[dict[str, Any]] = []
        chunk, size = first, 0
        while chunk:
            size += len(chunk)
            answer = await self.client.upload_part(Bucket=self.bucket, Key=key, PartNumber=len(parts) + 1,
                                                   UploadId=upload_id, Body=chunk)
            parts.append({"ETag": answer["ETag"], "PartNumber": len(parts) + 1})
            chunk = await asyncio.to_thread(handle.read, self.part_size)
            digest.update(chunk)
        self._check(digest, blob, size)  # before the completion: a damaged copy never becomes an object
        await self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                    MultipartUpload={"Parts": parts})  # type: ignore[typeddict-item]

    @staticmethod
    def _check(digest: Any, blob: Blob, size: int) -> None:
        if digest.hexdigest() != blob.sha256 or size != blob.size:
            raise MediaIntegrityError(f"the local copy of {blob.sha256} no longer matches its hash")

    async def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """``[start, end)`` by one ranged GET, streamed; FileNotFoundError when the object is absent."""
        if end is not None and end <= start:
            if await self.stat(sha256) is None:
                raise FileNotFoundError(sha256)
            return
        wanted = f"bytes={start}-" + ("" if end is None else str(end - 1))
        try:
            answer = await self.client.get_object(Bucket=self.bucket, Key=self.key(sha256), Range=wanted)
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(sha256) from None
            if "InvalidRange" in str(exc):  # start at or past the end: nothing to send
                return
            raise
        async with answer["Body"] as body:
            while chunk := await body.read(READ_CHUNK):
                yield chunk

    async def local_path(self, sha256: str) -> Path:
        """The local copy, fetched first when this instance has none (verified before it is put in place)."""
        return await local_copy(self.local, sha256, self.stat, self.read)

    async def remove(self, sha256: str) -> bool:
        """Delete the object and this instance's local copy."""
        gone = await self.forget(sha256)
        local = await asyncio.to_thread(self.local.delete, sha256)
        return gone or local

    async def forget(self, sha256: str, untouched_since: float | None = None) -> bool:
        """Delete the object; with ``untouched_since``, only when it was last written or adopted before then
        (S3 has no conditional delete on that: a reuse in the milliseconds between the check and the delete is
        the one window left, which the grace period makes the length of an adopt, not of a sweep)."""
        key = self.key(sha256)
        written = await self._written(key)
        if written is None or (untouched_since is not None and written >= untouched_since):
            return False
        await self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    async def blobs(self, older_than: float) -> list[str]:
        """The objects under the prefix last written before ``older_than`` (epoch seconds) that are blobs."""
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                sha256 = item["Key"][len(self.prefix):]
                if len(sha256) == 64 and item["LastModified"].timestamp() < older_than:
                    found.append(sha256)
        return found

    async def totals(self) -> tuple[int, int]:
        """(blobs, bytes) under the prefix, for the metrics (one listing: call it rarely)."""
        count = total = 0
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                count += 1
                total += int(item["Size"])
        return count, total
