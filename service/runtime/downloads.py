"""An account's inbound media downloads: each contact's media, fetched once through the worker into the media store.

A media message is stored with its row in ``inbound_media`` (state ``downloading``, due at once;
service/store/inbound_media.py). The account's ``Downloader`` (one per account served here: part of its runtime,
like the dispatcher, so in a cluster only the lease holder downloads) takes due rows and asks the worker
(``POST /media/download``), which answers once the decrypted, verified file is durable in WA_MEDIA_DIR under
its sha256. Then the sha256 is checked against the sender's, the blob is adopted by the media store, and the row
becomes ``stored`` with a ``media.stored`` event in one transaction. What fails:

* the worker away, the account not connected (409/503): the attempt is given back; tried again when the account
  connects (``on_event``) or after a while;
* 502 ``media_download_failed``, a timeout, a failing store: tried again with capped exponential backoff (and
  jitter), until ``WA_MEDIA_DOWNLOAD_ATTEMPTS`` attempts;
* 410 ``media_gone`` (the phone did not upload it again): tried again until the ``GONE_ATTEMPTS``-th attempt;
* 422 ``media_corrupt``, 400, another sha256 than announced, larger than its kind's limit, or older than
  ``WA_MEDIA_DOWNLOAD_MAX_AGE``: ``failed`` at once, with ``media.failed``.

An attempt is counted before it starts, so a download that crashes a process every time still ends. After a crash
the rows left ``downloading`` are simply due again (``resume`` at start). The descriptor (it holds the media key)
goes to the worker and nowhere else: no log line names it.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable
from typing import Any

import structlog

from service.errors import ApiError
from service.media.config import MediaSettings
from service.media.kinds import is_kind
from service.media.store import Blob, MediaStore
from service.runtime.worker_client import WorkerApi
from service.store import inbound, inbound_media
from service.store.db import Database, storage_full

log = structlog.get_logger("gateway.media")

CONCURRENCY = 2  # downloads at once per account: a large video does not hold up a voice note for long
GONE_ATTEMPTS = 3  # a 410 media_gone on this attempt or a later one is final
IDLE_WAIT = 60.0  # seconds between looks at the store when nothing is due and nothing wakes the downloader
# Each idle look waits IDLE_WAIT times a random factor in this range: a thousand accounts' downloaders, started
# together, do not look at the store in the same second every minute (issue 28).
IDLE_JITTER = (0.5, 1.5)
WAIT_DELAY = 30.0  # seconds before asking again a worker whose account is not connected (its connection wakes us)
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Answers that say "not now" rather than "this media" (not connected, the worker starting or stopping, a full
# disk): the attempt is given back.
_NOT_NOW = frozenset({409, 503, 507})
# Worker answers after which the same request can never work.
_FINAL = {400: "invalid_media", 422: "media_corrupt"}


class Final(Exception):
    """The download cannot succeed: the row fails with ``code``."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class Downloader:
    def __init__(self, db: Database, worker: WorkerApi, store: MediaStore, settings: MediaSettings, *,
                 account: str, clock: Callable[[], float] = time.time):
        self._db = db
        self._worker = worker
        self._store = store
        self._settings = settings
        self._account = account
        self._clock = clock
        self._wake = asyncio.Event()
        self._resume = False
        self._inflight: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        # Called after each media.stored / media.failed event (webhooks and SSE wake up).
        self.on_stored: list[Callable[[], None]] = []

    # --- waking ------------------------------------------------------------------------------
    def on_event(self, event: dict[str, Any], result: dict[str, Any]) -> None:
        """An EventConsumer listener: a new media message is due at once; a connection makes every waiting
        download due (those that waited for it)."""
        kind = event.get("type")
        if kind == "message" and result.get("event") is not None and isinstance(event.get("media"), dict):
            self.wake()
        elif kind == "session.status" and event.get("state") == "connected":
            self.wake(resume=True)

    def wake(self, *, resume: bool = False) -> None:
        self._resume = self._resume or resume
        self._wake.set()

    # --- life --------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"media-downloads-{self._account}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def run(self) -> None:
        # Nothing of this account is in flight in this process yet: what a crash left downloading is due now.
        self._resume = True
        while True:
            self._wake.clear()  # before reading: a wake from now on is not lost
            try:
                wait = await self.step()
            except Exception as exc:
                if not storage_full(exc):
                    log.exception("media.downloads_failed", account=self._account)
                wait = 1.0
            if wait > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    pass

    async def step(self) -> float:
        """Start what is due (at most CONCURRENCY at once) and wait for it; returns how long to sleep after."""
        if self._resume:
            self._resume = False
            await self._db.run(inbound_media.resume, self._account, self._clock())
        rows = await self._db.run(inbound_media.due, self._account, self._clock(), CONCURRENCY, tuple(self._inflight))
        if rows:
            await asyncio.gather(*(self._guarded(row) for row in rows))
            return 0.0
        upcoming = await self._db.run(inbound_media.next_due, self._account)
        idle = IDLE_WAIT * random.uniform(*IDLE_JITTER)
        return idle if upcoming is None else min(idle, max(0.0, upcoming - self._clock()))

    async def _guarded(self, row: dict[str, Any]) -> None:
        self._inflight.add(row["message_id"])
        try:
            await self.download(row)
        finally:
            self._inflight.discard(row["message_id"])

    # --- one download ------------------------------------------------------------------------
    async def download(self, row: dict[str, Any]) -> None:
        """One attempt at ``row`` (a ``due`` row): stored, failed, or due again later."""
        message_id, now = row["message_id"], self._clock()
        try:
            self._check(row, now)
        except Final as final:
            await self._settle(message_id, error=final.code, attempts=row["attempts"])
            return
        attempts = row["attempts"] + 1
        # Due again after the worker's timeout only if this process dies meanwhile (resume makes it due at start).
        if not await self._db.run(inbound_media.claim, self._account, message_id,
                                  now + self._settings.download_timeout + self._settings.download_retry_max, now):
            return
        try:
            sha256, size, descriptor = await self._fetch(row)
        except Final as final:
            await self._settle(message_id, error=final.code, attempts=attempts)
        except ApiError as exc:
            await self._failed_attempt(row, attempts, exc)
        else:
            await self._settle(message_id, sha256=sha256, size=size, descriptor=descriptor, attempts=attempts)

    def _check(self, row: dict[str, Any], now: float) -> None:
        """What fails a download before it starts: its age, its announced size, its attempts."""
        if now - row["created_at"] > self._settings.download_max_age:
            raise Final("media_expired")
        kind = row["kind"]
        if is_kind(kind) and row["size"] is not None and row["size"] > self._settings.limit(kind):
            raise Final("media_too_large")
        if row["attempts"] >= self._settings.download_attempts:
            raise Final("too_many_attempts")

    async def _fetch(self, row: dict[str, Any]) -> tuple[str, int, dict[str, Any] | None]:
        """The file in the media store: (sha256, size, the worker's new descriptor or None). Raises ``Final``
        or the ``ApiError`` of an attempt that may be tried again."""
        expected = row["sha256"]
        if expected is not None:  # the same file came before (forwarded media): nothing to download
            size = await self._store.stat(expected)
            if size is not None:
                return expected, size, None
        body = {"id": row["wa_id"], "chat_jid": row["chat_jid"], "kind": row["kind"], "descriptor": row["descriptor"]}
        answer = await self._worker.request("POST", "/media/download", json=body,
                                            timeout=self._settings.download_timeout)
        sha256 = answer.get("sha256") if isinstance(answer, dict) else None
        size = answer.get("size") if isinstance(answer, dict) else None
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256) or not isinstance(size, int) or size < 0:
            raise ApiError("The worker answered a download without its sha256 and size.", code="worker_protocol",
                           status=502)
        if expected is not None and sha256 != expected:
            raise Final("sha256_mismatch")
        await self._adopt(sha256, size)
        new = answer.get("descriptor")
        return sha256, size, new if isinstance(new, dict) and new != row["descriptor"] else None

    async def _adopt(self, sha256: str, size: int) -> None:
        """The worker's file (in WA_MEDIA_DIR, named by its sha256) made durable in the media store."""
        path = self._settings.directory / sha256[:2] / sha256[2:]
        try:
            on_disk = (await asyncio.to_thread(path.stat)).st_size
            if on_disk != size:
                raise OSError(f"{on_disk} bytes on disk, {size} announced")
            await self._store.adopt(Blob(sha256, size, path))
        except Exception as exc:  # not where the worker said, or the store refused it (full, away): later
            if storage_full(exc):
                raise ApiError("The media store is full.", code="insufficient_storage", status=507) from exc
            log.warning("media.adopt_failed", account=self._account, sha256=sha256[:12], error=type(exc).__name__)
            raise ApiError("The downloaded file could not be stored.", code="media_store_failed", status=502) from exc

    async def _failed_attempt(self, row: dict[str, Any], attempts: int, exc: ApiError) -> None:
        """An attempt the worker (or the store) answered with ``exc``: final, given back, or due again later."""
        message_id, now = row["message_id"], self._clock()
        if exc.status in _FINAL:
            await self._settle(message_id, error=_FINAL[exc.status], attempts=attempts)
            return
        if exc.status == 410 and attempts >= min(GONE_ATTEMPTS, self._settings.download_attempts):
            await self._settle(message_id, error="media_gone", attempts=attempts)
            return
        if exc.status in _NOT_NOW:
            log.info("media.download_waits", account=self._account, message_id=message_id, code=exc.code)
            await self._db.run(inbound_media.retry, self._account, message_id,
                               now + min(WAIT_DELAY, self._settings.download_retry_max), now, give_back=True)
            return
        if attempts >= self._settings.download_attempts:
            await self._settle(message_id, error=exc.code or "media_download_failed", attempts=attempts)
            return
        delay = min(self._settings.download_retry_max, self._settings.download_retry_base * 2 ** (attempts - 1))
        delay *= 0.5 + random.random() / 2  # jitter: the downloads of one outage do not come back together
        log.info("media.download_retry", account=self._account, message_id=message_id, code=exc.code,
                 status=exc.status, attempts=attempts, retry_in=round(delay, 3))
        await self._db.run(inbound_media.retry, self._account, message_id, now + delay, now)

    async def _settle(self, message_id: str, *, attempts: int, error: str | None = None, sha256: str | None = None,
                      size: int | None = None, descriptor: dict[str, Any] | None = None) -> None:
        event = await self._db.run(inbound.media_settled, self._account, message_id, self._clock(), sha256=sha256,
                                   size=size, descriptor=descriptor, error=error)
        if event is None:
            return
        if error is None:
            log.info("media.stored", account=self._account, message_id=message_id, size=size, attempts=attempts)
        else:
            log.warning("media.failed", account=self._account, message_id=message_id, error=error, attempts=attempts)
        for notify in self.on_stored:
            notify()
