"""Sending a run of outbox rows whose messages may carry media: the media readied in the local media directory
first (a remote store, or another instance accepted it), and the worker given the time to upload it."""

from __future__ import annotations

from typing import Any

import structlog

from service.errors import ApiError
from service.media.store import MediaStore
from service.runtime.worker_client import WorkerApi, send_run

log = structlog.get_logger("gateway.media")


async def send_with_media(worker: WorkerApi, rows: list[dict[str, Any]], *, store: MediaStore,
                          timeout: float) -> list[ApiError | None]:
    """As ``send_run``; a row whose media is nowhere is sent all the same: the worker answers 422
    ``media_missing`` and the message fails with that reason, visibly, instead of waiting forever."""
    for sha256 in {row["media_sha256"] for row in rows if row.get("media_sha256")}:
        try:
            await store.local_path(sha256)
        except FileNotFoundError:
            log.warning("media.missing", sha256=sha256[:12])
    return await send_run(worker, rows, media_timeout=timeout)
