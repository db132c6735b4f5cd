"""Persisted webhook delivery: one worker per configured endpoint, everything it knows in the database.

Event path: an event commits to the log (``service/store/events.py``) -> the endpoint's worker turns
it into a ``pending`` delivery (``store.webhooks.fan_out``; the cursor moves in the same transaction)
-> ``claim`` leases the oldest pending delivery of each contact that is due -> one POST, signed per the
Standard Webhooks specification -> ``delivered`` | retry later (capped exponential backoff with
jitter, ``Retry-After`` honoured on 429/503) | ``failed`` (dead-lettered: a 4xx other than
408/409/425/429, ``WA_WEBHOOK_MAX_ATTEMPTS`` attempts, or older than ``WA_WEBHOOK_MAX_AGE``).

Each endpoint has its own worker, HTTP session and bounded number of requests in flight, so a slow or
dead endpoint never delays another. Workers wake on ``notify()`` (called by whoever commits events)
and also poll every ``poll_interval`` so that nothing depends on the notify. The body is the stored
payload byte for byte; the headers are the signature's three, a content type and a user agent — never
the API key, never a cookie.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import structlog
from standardwebhooks import Webhook

from .. import __version__
from ..store import webhooks as store
from ..store.db import Database

log = structlog.get_logger("gateway.webhooks")

USER_AGENT = f"wa-gateway/{__version__} (webhooks)"
RETRYABLE = frozenset({408, 409, 425, 429})
RETRY_AFTER_CODES = frozenset({429, 503})
LEASE_MARGIN = 5.0  # seconds beyond the attempt timeout before an unreported attempt is made again
PRUNE_EVERY = 3600.0


@dataclass(frozen=True, slots=True)
class Policy:
    timeout: float = 10.0
    max_attempts: int = 12
    max_age: float = 86400.0
    retry_base: float = 5.0
    retry_max: float = 3600.0
    concurrency: int = 4
    keep: float = 7 * 86400.0

    @classmethod
    def from_settings(cls, settings) -> Policy:
        return cls(timeout=settings.webhook_timeout, max_attempts=settings.webhook_max_attempts,
                   max_age=settings.webhook_max_age, retry_base=settings.webhook_retry_base,
                   retry_max=settings.webhook_retry_max, concurrency=settings.webhook_concurrency,
                   keep=settings.webhook_keep)


def public_url(url: str) -> str:
    """The endpoint as logs and the API show it: credentials and query values hidden."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = ("***@" if "@" in parts.netloc else "") + host
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def sign(secrets: tuple[str, ...], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: ``v1,<base64>`` per secret, space-separated (rotation)."""
    when = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return " ".join(Webhook(s).sign(msg_id, when, body) for s in secrets)


def headers_for(secrets: tuple[str, ...], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, msg_id, timestamp, body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def backoff(attempts: int, policy: Policy, rand: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: doubled each time, capped, with
    equal jitter (between half and all of it) so that many deliveries failing together spread out."""
    delay = min(policy.retry_max, policy.retry_base * 2 ** min(attempts - 1, 62))
    return delay / 2 + (rand or random).uniform(0, delay / 2)


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def decide(row: dict, status_code: int | None, error: str | None, retry_after_s: float | None, now: float,
           policy: Policy) -> tuple[str, float | None, str | None]:
    """What an attempt's outcome means: ("delivered", None, None), ("retry", next_attempt_at, error)
    or ("failed", None, reason). ``row`` holds the delivery after the attempt was counted."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered", None, None
    if status_code is not None:
        error = f"HTTP {status_code}"
        if 400 <= status_code < 500 and status_code not in RETRYABLE:
            return "failed", None, f"rejected: {error}"
    if row["attempts"] >= policy.max_attempts:
        return "failed", None, f"max_attempts: {error}"
    if now >= row["expires_at"]:
        return "failed", None, f"max_age: {error}"
    if retry_after_s is not None and status_code in RETRY_AFTER_CODES:
        delay = min(retry_after_s, policy.retry_max)
    else:
        delay = backoff(row["attempts"], policy)
    # The last attempt falls at the deadline rather than after it.
    return "retry", min(now + delay, row["expires_at"]), error


def _describe(exc: BaseException) -> str:
    """A short reason for a failed request, without the URL (it may carry credentials)."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return f"request: {type(exc).__name__}"


class EndpointWorker:
    """Fans out and delivers the events of one endpoint."""

    def __init__(self, db: Database, url: str, types: tuple[str, ...], secrets: tuple[str, ...],
                 policy: Policy, poll_interval: float):
        self.db = db
        self.url = url
        self.name = public_url(url)
        self.types = types
        self.secrets = secrets
        self.policy = policy
        self.poll_interval = poll_interval
        self.wake = asyncio.Event()
        self.in_flight: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.policy.concurrency),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self.policy.timeout),
        )
        self._task = asyncio.create_task(self._run(), name=f"webhooks:{self.name}")

    async def stop(self) -> None:
        tasks = [t for t in [self._task, *self.in_flight] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            self.wake.clear()  # before reading: a notify during the reads is not lost
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook.round_failed", endpoint=self.name)
            try:
                await asyncio.wait_for(self.wake.wait(), self.poll_interval)
            except TimeoutError:
                pass

    async def _round(self) -> None:
        while True:
            created, more = await self.db.run(store.fan_out, self.url, self.types, time.time(), self.policy.max_age)
            if not more:
                break
        free = self.policy.concurrency - len(self.in_flight)
        claimed, expired = await self.db.run(store.claim, self.url, time.time(), max(free, 0),
                                             self.policy.timeout + LEASE_MARGIN)
        for row in expired:
            log.warning("webhook.dead_lettered", endpoint=self.name, delivery_id=row["id"], event_id=row["event_id"],
                        attempts=row["attempts"], reason=row["last_error"])
        for row in claimed:
            task = asyncio.create_task(self._attempt(row))
            self.in_flight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.in_flight.discard(task)
        self.wake.set()  # a slot is free, and the next event of that contact may go now

    async def _attempt(self, row: dict) -> None:
        assert self._session is not None
        timestamp = int(time.time())
        body = row["payload"]
        headers = headers_for(self.secrets, row["event_id"], timestamp, body)
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        wait_hint: float | None = None
        try:
            async with self._session.post(self.url, data=body.encode("utf-8"), headers=headers,
                                          allow_redirects=False) as resp:
                status_code = resp.status
                wait_hint = retry_after(resp.headers.get("Retry-After"), time.time())
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = _describe(exc)
        now = time.time()
        outcome, next_at, reason = decide(row, status_code, error, wait_hint, now, self.policy)
        context = dict(endpoint=self.name, delivery_id=row["id"], event_id=row["event_id"],
                       event_type=row["event_type"], attempts=row["attempts"], status_code=status_code,
                       duration_ms=round((time.monotonic() - started) * 1000, 1))
        if outcome == "delivered":
            await self.db.run(store.delivered, row["seq"], now, status_code)
            log.info("webhook.delivered", **context)
        elif outcome == "retry":
            await self.db.run(store.retry_later, row["seq"], now, status_code, reason, next_at)
            log.info("webhook.retry_scheduled", **context, reason=reason, retry_in_s=round(next_at - now, 3))
        else:
            await self.db.run(store.fail, row["seq"], now, status_code, reason)
            log.warning("webhook.dead_lettered", **context, reason=reason)


class WebhookService:
    """All endpoint workers; ``notify()`` wakes them (call it after committing events)."""

    def __init__(self, db: Database, urls: tuple[str, ...], types: tuple[str, ...], secrets: tuple[str, ...],
                 policy: Policy, *, poll_interval: float = 1.0):
        self.db = db
        self.urls = tuple(urls)
        self.types = tuple(types)
        self.secrets = tuple(secrets)
        self.policy = policy
        self.poll_interval = poll_interval
        self.workers: dict[str, EndpointWorker] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._housekeeping: asyncio.Task | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        now = time.time()
        await self.db.run(store.register, self.urls, now)
        released = await self.db.run(store.reset_leases)
        if self.urls and not self.secrets:
            raise ValueError("webhooks need a signing secret")
        log.info("webhook.endpoints", endpoints=[public_url(u) for u in self.urls], events=list(self.types),
                 interrupted_attempts=released)
        for url in self.urls:
            worker = EndpointWorker(self.db, url, self.types, self.secrets, self.policy, self.poll_interval)
            self.workers[url] = worker
            worker.start()
        self._housekeeping = asyncio.create_task(self._prune_loop(), name="webhooks:prune")

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
        await asyncio.gather(*(w.stop() for w in self.workers.values()))
        self.workers.clear()

    def notify(self) -> None:
        """New events were committed: every endpoint looks now. Safe from any thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake_all()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for worker in self.workers.values():
            worker.wake.set()

    async def summary(self) -> dict[str, dict]:
        """Per endpoint (as shown publicly): pending and failed deliveries, and whether it is configured."""
        counts = await self.db.run(store.summary)
        out = {}
        for url in sorted(set(counts) | set(self.urls)):
            c = counts.get(url, {"pending": 0, "failed": 0})
            out[public_url(url)] = {"active": url in self.workers, **c}
        return out

    async def _prune_loop(self) -> None:
        while True:
            try:
                dropped = await self.db.run(store.prune, time.time() - self.policy.keep)
                if dropped:
                    log.info("webhook.pruned", deliveries=dropped)
            except Exception:
                log.exception("webhook.prune_failed")
            await asyncio.sleep(PRUNE_EVERY)


async def start_webhooks(settings, db: Database, *, poll_interval: float = 1.0) -> WebhookService:
    """The service for these settings, started. The signing secret is resolved only when an endpoint
    is configured: ``WA_WEBHOOK_SECRET``, else the data dir's file (generated once, never logged)."""
    from . import secret

    secrets: tuple[str, ...] = ()
    if settings.webhook_urls:
        resolved = await asyncio.to_thread(secret.resolve, settings.webhook_secrets, settings.data_dir)
        secrets = resolved.values
        if resolved.source == "env":
            log.info("webhook.secret", source="WA_WEBHOOK_SECRET", secrets=len(secrets))
        else:
            # Where, never what: `wa-gateway webhook-secret` prints the value for the operator.
            log.info("webhook.secret", source="file", path=str(resolved.path), created=resolved.created)
            if not secret.file_is_private(resolved.path):
                log.warning("webhook.secret_file_readable", path=str(resolved.path),
                            hint="chmod 600 the file: other users can read the webhook secret")
    service = WebhookService(db, settings.webhook_urls, settings.webhook_events, secrets,
                             Policy.from_settings(settings), poll_interval=poll_interval)
    await service.start()
    return service
