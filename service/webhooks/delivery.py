"""Persisted webhook delivery: the service that runs one worker per configured endpoint (``worker.py``),
with everything it knows in the database.

Event path: an event commits to the log (``service/store/event_log.py``) -> the endpoint's worker turns
it into a ``pending`` delivery (``store.webhooks.fan_out``; the cursor moves in the same transaction)
-> ``claim`` leases the oldest pending delivery of each contact that is due -> one POST, signed per the
Standard Webhooks specification (``attempt.py``, ``signature.py``) -> ``delivered`` | retry later (capped
exponential backoff with jitter, ``Retry-After`` honoured on 429/503: ``schedule.py``) | ``failed``
(dead-lettered: a 4xx other than 408/409/425/429, ``WA_WEBHOOK_MAX_ATTEMPTS`` attempts, or older than
``WA_WEBHOOK_MAX_AGE``).

This module is the facade the app holds: it starts and stops the workers, adds, rotates and removes
account endpoints, wakes the workers on ``notify()``, drains them on SIGTERM and summarises the backlog.
The body is the stored payload byte for byte; the headers are the signature's three, a content type and
a user agent, never the API key, never a cookie.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from service.settings import Settings
from service.store import webhooks as store
from service.store.db import Database
from service.webhooks import secret as webhook_secret
from service.webhooks.address import AddressPolicy, Lookup, system_lookup
from service.webhooks.endpoint_names import endpoint_label, public_url
from service.webhooks.schedule import Policy, backoff, decide, retry_after
from service.webhooks.secret import EndpointSecret, generate
from service.webhooks.signature import USER_AGENT, headers_for, sign
from service.webhooks.worker import EndpointWorker

# Kept importable from here (tests, service/http/appkeys.py): where they moved is an arrangement.
__all__ = ["USER_AGENT", "EndpointWorker", "Policy", "WebhookService", "backoff", "decide", "endpoint_label",
           "headers_for", "public_url", "retry_after", "sign", "start_webhooks"]

log = structlog.get_logger("gateway.webhooks")

PRUNE_EVERY = 3600.0


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
                 policy: Policy, *, poll_interval: float = 1.0,
                 resolve_secrets: Callable[[], Awaitable[tuple[str, ...]]] | None = None,
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
        self._housekeeping: asyncio.Task[None] | None = None
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

    async def drain(self, deadline: float) -> dict[str, int]:
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

    async def add_account_endpoint(self, account: str, url: str, types: tuple[str, ...],
                                   max_per_account: int) -> dict[str, Any]:
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

    async def remove_account_endpoint(self, account: str, endpoint_id: str) -> dict[str, Any] | None:
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

    async def summary(self) -> dict[str, dict[str, Any]]:
        """Per endpoint: pending and failed deliveries, and whether it is active. Global endpoints are
        keyed as shown publicly (their URL, credentials hidden); an account's by its id, with its account
        and URL (credentials hidden)."""
        counts = await self.db.run(store.summary)
        rows = {r["id"]: r for r in await self.db.run(store.endpoints)}
        out: dict[str, dict[str, Any]] = {}
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


def _types(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(t for t in (row.get("events") or "").split(",") if t)


async def start_webhooks(settings: Settings, db: Database, *, poll_interval: float = 1.0,
                         on_outcome: Callable[[str, str], None] | None = None,
                         lookup: Lookup | None = None) -> WebhookService:
    """The service for these settings, started. The global signing secret is resolved only when it is needed
    (WA_WEBHOOK_URL, a test ping): ``WA_WEBHOOK_SECRET``, else the data dir's file (generated once, never
    logged). Account endpoints sign with their own. ``lookup``: the resolver seam (tests), else the system's."""

    async def resolve() -> tuple[str, ...]:
        resolved = await asyncio.to_thread(webhook_secret.resolve, settings.webhook_secrets, settings.data_dir)
        if resolved.source == "env":
            log.info("webhook.secret", source="WA_WEBHOOK_SECRET", secrets=len(resolved.values))
        else:
            # Where, never what: `wa-gateway webhook-secret` prints the value for the operator.
            log.info("webhook.secret", source="file", path=str(resolved.path), created=resolved.created)
            if resolved.path is not None and not webhook_secret.file_is_private(resolved.path):
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
