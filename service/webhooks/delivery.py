"""Persisted webhook delivery: one worker per configured endpoint, everything it knows in the database.

Event path: an event commits to the log (``service/store/event_log.py``) -> the endpoint's worker turns
it into a ``pending`` delivery (``store.webhooks.fan_out``; the cursor moves in the same transaction)
-> ``claim`` leases the oldest pending delivery of each contact that is due -> one POST, signed per the
Standard Webhooks specification -> ``delivered`` | retry later (capped exponential backoff with
jitter, ``Retry-After`` honoured on 429/503) | ``failed`` (dead-lettered: a 4xx other than
408/409/425/429, ``WA_WEBHOOK_MAX_ATTEMPTS`` attempts, or older than ``WA_WEBHOOK_MAX_AGE``).

Each endpoint has its own worker, HTTP session and bounded number of requests in flight, so a slow or
dead endpoint never delays another. Workers wake on ``notify()`` (called by whoever commits events)
and also poll every ``poll_interval`` so that nothing depends on the notify. The body is the stored
payload byte for byte; the headers are the signature's three, a content type and a user agent — never
the API key, never a cookie. On SIGTERM (``drain``) nothing more is claimed; attempts in flight finish or
are cut off at the deadline, staying pending with their attempt counted and their lease released.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import structlog
from standardwebhooks import Webhook

from service import __version__
from service.store import webhooks as store
from service.store.db import Database
from service.store.full_disk import FullDiskLog, storage_full
from service.webhooks.address import (
    REFUSED_REASON,
    AddressPolicy,
    AddressRefused,
    guarded_connector,
    system_lookup,
)
from service.webhooks.secret import EndpointSecret, generate, signing

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


def endpoint_label(endpoint_id: str, account: str | None) -> str:
    """How metrics name an endpoint: a global one by its public URL (its id is the configured URL, which may
    carry credentials), an account's by its id (whe_...: two accounts may add the same URL)."""
    return public_url(endpoint_id) if account is None else endpoint_id


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
    if isinstance(exc, AddressRefused) or isinstance(getattr(exc, "os_error", None), AddressRefused):
        return REFUSED_REASON  # generic: never which address, nor what it is
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return f"request: {type(exc).__name__}"


class EndpointWorker:
    """Fans out and delivers the events of one endpoint."""

    def __init__(self, db: Database, url: str, types: tuple[str, ...], secrets: tuple[str, ...] | EndpointSecret,
                 policy: Policy, poll_interval: float, *, key: str | None = None, account: str | None = None,
                 on_outcome: Callable[[str, str], None] | None = None, egress: AddressPolicy | None = None):
        self.db = db
        self.url = url
        # Where it may connect (service/webhooks/address.py): None for the operator's WA_WEBHOOK_URL (trusted).
        self.egress = egress
        self.key = key or url  # the endpoint's id: its URL when global, whe_<ULID> when an account's
        self.account = account  # None: every account's events; else only this account's
        self.name = public_url(url)
        self.label = endpoint_label(self.key, account)
        # (endpoint label, outcome) per decision, for GET /metrics: delivered, retry_scheduled or dead_lettered,
        # named as the log events that say more.
        self.on_outcome = on_outcome
        # How log lines name it: the URL as shown publicly, and for an account's endpoint its account and id.
        self.ident = {"endpoint": self.name} if account is None else \
            {"endpoint": self.name, "account": account, "webhook_id": self.key}
        self.types = types
        self.secrets = secrets
        self.policy = policy
        self.poll_interval = poll_interval
        self.wake = asyncio.Event()
        self.in_flight: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        self._draining = False  # SIGTERM: claim nothing more
        self._seqs: dict[asyncio.Task, int] = {}  # attempt in flight -> its delivery's seq
        # A full disk: one line now and then. A delivery whose outcome could not be stored stays claimed until its
        # lease runs out, then goes again (the same webhook-id): at least once, as after a crash.
        self._full = FullDiskLog(log, "webhook.store_full")

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=guarded_connector(self.egress, self.policy.concurrency),
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

    async def drain(self, deadline: float) -> tuple[int, int, list[int]]:
        """SIGTERM (service/http/drain.py): claim nothing more; attempts in flight finish until ``deadline`` (the
        loop's clock) and record their outcome as always; the rest are cut off and stay pending, their attempt
        counted. Returns (in flight, finished, seqs cut off)."""
        self._draining = True
        self.wake.set()
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done():  # its round ends; what it claimed starts
            await asyncio.wait([self._task], timeout=max(0.0, deadline - loop.time()))
        tasks = list(self.in_flight)
        finished = 0
        if tasks:
            done, _ = await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
            finished = len(done)
        late = [t for t in tasks if not t.done()]
        cut = [self._seqs[t] for t in late]
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        return len(tasks), finished, cut

    async def _run(self) -> None:
        while not self._draining:
            self.wake.clear()  # before reading: a notify during the reads is not lost
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if storage_full(exc):
                    self._full.failed(exc, **self.ident)
                else:
                    log.exception("webhook.round_failed", **self.ident)
            try:
                # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives as the event
                # is set, and stop() would wait forever (seen in tests/test_drain.py). asyncio.timeout does not.
                async with asyncio.timeout(self.poll_interval):
                    await self.wake.wait()
            except TimeoutError:
                pass

    async def _round(self) -> None:
        while True:
            created, more = await self.db.run(store.fan_out, self.key, self.types, time.time(), self.policy.max_age,
                                              account=self.account)
            if not more:
                break
        if self._draining:
            return
        free = self.policy.concurrency - len(self.in_flight)
        claimed, expired = await self.db.run(store.claim, self.key, time.time(), max(free, 0),
                                             self.policy.timeout + LEASE_MARGIN)
        for row in expired:
            log.warning("webhook.dead_lettered", **self.ident, delivery_id=row["id"], event_id=row["event_id"],
                        attempts=row["attempts"], reason=row["last_error"])
            self._count("dead_lettered")
        for row in claimed:
            task = asyncio.create_task(self._attempt(row))
            self.in_flight.add(task)
            self._seqs[task] = row["seq"]
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.in_flight.discard(task)
        self._seqs.pop(task, None)
        failure = None if task.cancelled() else task.exception()
        if failure is not None and storage_full(failure):
            self._full.failed(failure, **self.ident)
        elif failure is not None:
            log.error("webhook.attempt_failed", **self.ident, exc_info=failure)
        self.wake.set()  # a slot is free, and the next event of that contact may go now

    async def _attempt(self, row: dict) -> None:
        assert self._session is not None
        timestamp = int(time.time())
        body = row["payload"]
        headers = headers_for(signing(self.secrets, time.time()), row["event_id"], timestamp, body)
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        wait_hint: float | None = None
        try:
            if self.egress is not None:
                self.egress.check_literal(self.url)  # an IP literal never reaches the pinned resolver
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
        context = dict(**self.ident, delivery_id=row["id"], event_id=row["event_id"],
                       event_type=row["event_type"], attempts=row["attempts"], status_code=status_code,
                       duration_ms=round((time.monotonic() - started) * 1000, 1))
        if outcome == "delivered":
            await self.db.run(store.delivered, row["seq"], now, status_code)
            log.info("webhook.delivered", **context)
            self._count("delivered")
        elif outcome == "retry":
            await self.db.run(store.retry_later, row["seq"], now, status_code, reason, next_at)
            log.info("webhook.retry_scheduled", **context, reason=reason, retry_in_s=round(next_at - now, 3))
            self._count("retry_scheduled")
        else:
            await self.db.run(store.fail, row["seq"], now, status_code, reason)
            log.warning("webhook.dead_lettered", **context, reason=reason)
            self._count("dead_lettered")

    def _count(self, outcome: str) -> None:
        """Counted after the store committed the decision, so the counter never runs ahead of the store."""
        if self.on_outcome is not None:
            self.on_outcome(self.label, outcome)


class WebhookService:
    """All endpoint workers; ``notify()`` wakes them (call it after committing events).

    Global endpoints come from ``urls`` (WA_WEBHOOK_URL, every account's events, ``types``); account
    endpoints from the database (``add_account_endpoint``, only their account's events, their own types).
    Every worker is keyed by its endpoint id, so one URL configured globally and for accounts is that many
    independent endpoints. Global endpoints sign with ``secrets`` (WA_WEBHOOK_SECRET; when none were given,
    ``resolve_secrets``, an async callable, provides them once) and are trusted; an account endpoint signs with
    its own secret (stored with it) and reaches only what ``egress`` permits, checked at creation and at
    every connection (service/webhooks/address.py).
    """

    def __init__(self, db: Database, urls: tuple[str, ...], types: tuple[str, ...], secrets: tuple[str, ...],
                 policy: Policy, *, poll_interval: float = 1.0, resolve_secrets=None,
                 on_outcome: Callable[[str, str], None] | None = None, reset_leases: bool = True,
                 egress: AddressPolicy | None = None):
        self.db = db
        self.egress = egress if egress is not None else AddressPolicy()  # no allowlist: public addresses only
        # At start, attempts in flight when this gateway stopped are due again at once. Not in a cluster:
        # there the attempts in flight may be another instance's (an expired lease is due anyway).
        self.reset_leases = reset_leases
        self.on_outcome = on_outcome  # handed to every endpoint worker (EndpointWorker.on_outcome)
        self.urls = tuple(urls)
        self.types = tuple(types)
        self.secrets = tuple(secrets)
        self.policy = policy
        self.poll_interval = poll_interval
        self.resolve_secrets = resolve_secrets
        self.workers: dict[str, EndpointWorker] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._housekeeping: asyncio.Task | None = None
        self._lock = asyncio.Lock()  # adding, removing and forgetting endpoints, one at a time

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        now = time.time()
        await self.db.run(store.register, self.urls, now)
        released = await self.db.run(store.reset_leases) if self.reset_leases else 0
        if self.urls and not self.secrets:
            raise ValueError("webhooks need a signing secret")
        mine = await self.db.run(store.account_endpoints)
        filled = await self.db.run(store.fill_missing_secrets, generate, now)
        if filled:  # made before secrets were per endpoint: the global one no longer signs them
            log.warning("webhook.endpoint_secrets_made", endpoints=filled,
                        hint="rotate each account webhook's secret (POST .../rotate-secret) to learn it")
        own = await self.db.run(store.signing_secrets)
        log.info("webhook.endpoints", endpoints=[public_url(u) for u in self.urls], events=list(self.types),
                 account_endpoints=len(mine), interrupted_attempts=released)
        for url in self.urls:
            self._start_worker(url, url, self.types, None)
        for row in mine:
            self._start_worker(row["id"], row["url"], _types(row), row["account"],
                               EndpointSecret.from_row(own[row["id"]]))
        self._housekeeping = asyncio.create_task(self._prune_loop(), name="webhooks:prune")

    async def drain(self, deadline: float) -> dict:
        """SIGTERM (service/http/drain.py): every endpoint at once; attempts cut off at the deadline are released
        (pending, due at once at the next start, their attempt counted); nothing is marked delivered unless
        its endpoint answered 2xx and the store committed it."""
        results = await asyncio.gather(*(w.drain(deadline) for w in list(self.workers.values())))
        cut = [seq for _, _, seqs in results for seq in seqs]
        if cut:
            await self.db.run(store.release, cut, time.time())
        return {"deliveries_in_flight": sum(r[0] for r in results),
                "deliveries_finished": sum(r[1] for r in results), "deliveries_cut_off": len(cut)}

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
        await asyncio.gather(*(w.stop() for w in self.workers.values()))
        self.workers.clear()

    def _start_worker(self, key: str, url: str, types: tuple[str, ...], account: str | None,
                      own: EndpointSecret | None = None) -> None:
        worker = EndpointWorker(self.db, url, types, own if own is not None else self.secrets, self.policy,
                                self.poll_interval, key=key, account=account, on_outcome=self.on_outcome,
                                egress=self.egress if account is not None else None)
        self.workers[key] = worker
        worker.start()

    async def _ensure_secrets(self) -> None:
        if not self.secrets and self.resolve_secrets is not None:
            self.secrets = tuple(await self.resolve_secrets())
        if not self.secrets:
            raise ValueError("webhooks need a signing secret")

    async def signing_secrets(self) -> tuple[str, ...]:
        """The secrets every delivery is signed with (resolved now if no endpoint needed them yet)."""
        await self._ensure_secrets()
        return self.secrets

    # --- account endpoints ------------------------------------------------------------------------

    async def add_account_endpoint(self, account: str, url: str, types: tuple[str, ...], max_per_account: int) -> dict:
        """Store a new endpoint of ``account`` with a new secret of its own (in the returned row as ``secret``,
        never listed) and start its worker (from the current end of the log). Raises ``AddressRefused`` (its
        host is or resolves to an address it may not reach), ``store.EndpointExists`` / ``TooManyEndpoints``."""
        async with asyncio.timeout(self.policy.timeout):
            await self.egress.check_url(url)
        secret = generate()
        async with self._lock:
            row = await self.db.run(store.add_account_endpoint, account, url, tuple(types), time.time(),
                                    max_per_account, secret)
            self._start_worker(row["id"], row["url"], _types(row), account, EndpointSecret(secret))
        log.info("webhook.endpoint_added", account=account, webhook_id=row["id"], endpoint=public_url(url),
                 events=list(_types(row)))
        return {**row, "secret": secret}

    async def rotate_secret(self, account: str, endpoint_id: str, overlap: float) -> tuple[str, float | None] | None:
        """A new secret for one endpoint of ``account``; the replaced one keeps signing beside it for ``overlap``
        seconds. Returns (new secret, until when the old one signs too) or None for no such endpoint."""
        secret = generate()
        async with self._lock:
            row = await self.db.run(store.rotate_secret, account, endpoint_id, secret, time.time(), overlap)
            if row is None:
                return None
            worker = self.workers.get(endpoint_id)
            if worker is not None:
                worker.secrets = EndpointSecret.from_row(row)
        log.info("webhook.secret_rotated", account=account, webhook_id=endpoint_id, overlap_s=overlap)
        return secret, row["secret_previous_until"]

    async def endpoint_secrets(self, account: str | None = None) -> dict[str, EndpointSecret]:
        """Each live account endpoint's signing secrets (of ``account``, or of all): for test pings."""
        rows = await self.db.run(store.signing_secrets, account)
        return {k: EndpointSecret.from_row(r) for k, r in rows.items() if r["secret"]}

    async def remove_account_endpoint(self, account: str, endpoint_id: str) -> dict | None:
        """Stop deliveries to one endpoint of ``account``; None when it has no such endpoint."""
        async with self._lock:
            row = await self.db.run(store.remove_account_endpoint, account, endpoint_id, time.time())
            worker = self.workers.pop(endpoint_id, None) if row is not None else None
            if worker is not None:
                await worker.stop()
        if row is not None:
            log.info("webhook.endpoint_removed", account=account, webhook_id=endpoint_id,
                     endpoint=public_url(row["url"]))
        return row

    async def forget_account(self, account: str) -> int:
        """The account was deleted (its endpoint rows with it): stop its endpoints' workers; returns how many."""
        async with self._lock:
            gone = [k for k, w in self.workers.items() if w.account == account]
            workers = [self.workers.pop(k) for k in gone]
            await asyncio.gather(*(w.stop() for w in workers))
        if gone:
            log.info("webhook.account_forgotten", account=account, endpoints=len(gone))
        return len(gone)

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
        for worker in list(self.workers.values()):
            worker.wake.set()

    async def summary(self) -> dict[str, dict]:
        """Per endpoint: pending and failed deliveries, and whether it is active. Global endpoints are
        keyed as shown publicly (their URL, credentials hidden); an account's by its id, with its account
        and URL (credentials hidden)."""
        counts = await self.db.run(store.summary)
        rows = {r["id"]: r for r in await self.db.run(store.endpoints)}
        out = {}
        for key in sorted(set(counts) | set(self.workers)):
            c = counts.get(key, {"pending": 0, "failed": 0})
            row = rows.get(key)
            if row is not None and row["account"] is not None:
                out[key] = {"account": row["account"], "url": public_url(row["url"]),
                            "active": key in self.workers, **c}
            else:
                out[public_url(key)] = {"active": key in self.workers, **c}
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


def _types(row: dict) -> tuple[str, ...]:
    return tuple(t for t in (row.get("events") or "").split(",") if t)


async def start_webhooks(settings, db: Database, *, poll_interval: float = 1.0,
                         on_outcome: Callable[[str, str], None] | None = None, lookup=None) -> WebhookService:
    """The service for these settings, started. The global signing secret is resolved only when it is needed
    (WA_WEBHOOK_URL, a test ping): ``WA_WEBHOOK_SECRET``, else the data dir's file (generated once, never
    logged). Account endpoints sign with their own. ``lookup``: the resolver seam (tests), else the system's."""
    from service.webhooks import secret

    async def resolve() -> tuple[str, ...]:
        resolved = await asyncio.to_thread(secret.resolve, settings.webhook_secrets, settings.data_dir)
        if resolved.source == "env":
            log.info("webhook.secret", source="WA_WEBHOOK_SECRET", secrets=len(resolved.values))
        else:
            # Where, never what: `wa-gateway webhook-secret` prints the value for the operator.
            log.info("webhook.secret", source="file", path=str(resolved.path), created=resolved.created)
            if not secret.file_is_private(resolved.path):
                log.warning("webhook.secret_file_readable", path=str(resolved.path),
                            hint="chmod 600 the file: other users can read the webhook secret")
        return resolved.values

    secrets: tuple[str, ...] = await resolve() if settings.webhook_urls else ()
    egress = AddressPolicy(settings.webhook_allow_private, lookup or system_lookup)
    service = WebhookService(db, settings.webhook_urls, settings.webhook_events, secrets,
                             Policy.from_settings(settings), poll_interval=poll_interval, resolve_secrets=resolve,
                             on_outcome=on_outcome, reset_leases=not settings.database_url, egress=egress)
    await service.start()
    return service
