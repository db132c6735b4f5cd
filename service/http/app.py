"""The app factory, used by ``__main__`` and by the tests alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from functools import partial

import structlog
from aiohttp import web

from service.http.appkeys import (
    ACCOUNTS,
    DATABASE,
    DRAIN,
    MEDIA_INTAKE,
    MEDIA_STORE,
    METRICS,
    MONITOR,
    NOTIFIER,
    PAIRING_LIMIT,
    SCOPED_KEYS,
    SETTINGS,
    STARTED_AT,
    STREAMS,
    WEBHOOK_LOOKUP,
    WEBHOOKS,
    WORKER,
)
from service.http.drain import Drain
from service.http.metrics import Metrics
from service.http.middlewares import MIDDLEWARES, setup_security
from service.http.pairing_limit import PairingLimit
from service.http.routes import setup_routes
from service.http.sse_hub import EventHub
from service.media.factory import close_media_store, open_intake, open_media_store
from service.media.retention import MediaCollector, MediaStats, run_media_retention
from service.programs.supervision import SupervisorMonitor
from service.runtime.accounts import AccountRuntime
from service.runtime.notify import Notifier
from service.runtime.retention import run_retention
from service.runtime.worker_client import WorkerClient
from service.settings import Settings
from service.store.engine import open_database
from service.webhooks.address import Lookup
from service.webhooks.delivery import start_webhooks

log = structlog.get_logger("gateway")


async def _accounts(app: web.Application) -> AsyncIterator[None]:
    """The worker shards' links and every account's event reader and dispatcher (service/runtime/accounts.py)."""
    settings = app[SETTINGS]
    monitor = app[MONITOR]
    workers = []
    for shard in range(settings.worker_shards):
        worker = WorkerClient(
            str(settings.worker_socket_for(shard)), settings.worker_request_timeout,
            start_wait=settings.worker_start_wait, may_come_up=partial(monitor.worker_may_come_up, shard),
        )
        await worker.start()
        workers.append(worker)
    app[WORKER] = workers[0]
    # New events (and outbox changes, which add message.status events) wake the SSE streams and the
    # webhook workers at once.
    wake = [app[NOTIFIER].notify, app[WEBHOOKS].notify]
    runtime = AccountRuntime(settings, app[DATABASE], workers, on_event_stored=wake, on_message_changed=wake,
                             on_message_advanced=app[METRICS].message_advanced,
                             on_keys_changed=app[SCOPED_KEYS].invalidate, media_store=app[MEDIA_STORE])
    app[ACCOUNTS] = runtime
    await runtime.start()
    app[DRAIN].add_hook("dispatch", runtime.drain)  # SIGTERM: sends in flight finish or go back to the queue
    yield
    await runtime.stop()
    for worker in workers:
        await worker.close()


async def _streams(app: web.Application) -> AsyncIterator[None]:
    """The SSE streams' one reader of the event log (service/http/sse_hub.py); SIGTERM ends every stream."""
    settings = app[SETTINGS]
    hub = EventHub(app[DATABASE].run, app[NOTIFIER], max_total=settings.sse_max, max_per_key=settings.sse_max_per_key)
    await hub.start()
    app[STREAMS] = hub
    app[DRAIN].on_begin.append(hub.close_all)
    yield
    await hub.stop()


async def _supervision(app: web.Application) -> AsyncIterator[None]:
    monitor = SupervisorMonitor(app[SETTINGS])
    app[MONITOR] = monitor
    monitor.start()
    yield
    await monitor.stop()


async def _store(app: web.Application) -> AsyncIterator[None]:
    """The database, opened and migrated before anything is accepted or read from the worker: SQLite in
    the data dir, or PostgreSQL when WA_DATABASE_URL is set (service/store/pg.py)."""
    settings = app[SETTINGS]
    # The data dir holds more than the SQLite file (key files, the accounts' shard map): made here on
    # PostgreSQL too, as SQLite's open always did.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    database = await asyncio.to_thread(open_database(settings).open)
    # database_label: the URL without its password, or the SQLite file.
    log.info("store.opened", engine=database.dialect, location=settings.database_label, migrated=database.applied)
    app[DATABASE] = database
    yield
    await asyncio.to_thread(database.close)


async def _media(app: web.Application) -> AsyncIterator[None]:
    """The media store (WA_MEDIA_STORE) and the intake of /send's media; before the accounts, whose dispatchers
    and downloads use them."""
    store = await open_media_store(app[SETTINGS], app[DATABASE])
    app[MEDIA_STORE] = store
    app[MEDIA_INTAKE] = open_intake(store, app[SETTINGS], app.get(WEBHOOK_LOOKUP))
    # Retention and quotas (service/media/retention.py): an hourly pass, and wa_gateway_media_* on /metrics.
    config, stats = app[SETTINGS].media.store, MediaStats()
    app[METRICS].registry.register(MediaCollector(stats, app[DATABASE], config.quota_bytes))
    task = asyncio.create_task(run_media_retention(store, app[DATABASE], config, stats), name="media-retention")
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await close_media_store(store)


async def _retention(app: web.Application) -> AsyncIterator[None]:
    """The event log kept bounded (service/runtime/retention.py), hourly."""
    task = asyncio.create_task(run_retention(app[DATABASE], app[SETTINGS].event_retention), name="event-retention")
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def _webhooks(app: web.Application) -> AsyncIterator[None]:
    """Webhook delivery (service/webhooks/): persisted, so it resumes where the last run stopped."""
    service = await start_webhooks(app[SETTINGS], app[DATABASE], on_outcome=app[METRICS].webhook_outcome,
                                   lookup=app.get(WEBHOOK_LOOKUP))
    app[WEBHOOKS] = service
    app[DRAIN].add_hook("webhooks", service.drain)  # SIGTERM: attempts in flight finish or stay pending
    yield
    await service.stop()


def create_app(settings: Settings, *, webhook_lookup: Lookup | None = None) -> web.Application:
    """``webhook_lookup``: the resolver seam of the webhook address policy (tests inject names that resolve
    inside); None: the system's resolver."""
    app = web.Application(
        middlewares=MIDDLEWARES,
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    if webhook_lookup is not None:
        app[WEBHOOK_LOOKUP] = webhook_lookup
    app[STARTED_AT] = time.monotonic()
    app[NOTIFIER] = Notifier()
    # SIGTERM (service/http/drain.py, run by http_server.py): new requests 503, in-flight work finishes or is put back.
    app[DRAIN] = Drain(settings.shutdown_timeout)
    app[PAIRING_LIMIT] = PairingLimit(settings.pairing_code_interval, settings.pairing_codes_per_hour)
    app[DRAIN].on_begin.append(app[NOTIFIER].notify)  # the SSE streams wake up and end
    # GET /metrics: read at scrape time from what the cleanup contexts below open (absent until then).
    app[METRICS] = Metrics(database=lambda: app.get(DATABASE), accounts=lambda: app.get(ACCOUNTS),
                           monitor=lambda: app.get(MONITOR), streams=lambda: app.get(STREAMS))
    setup_security(app)  # the API keys: WA_API_KEY, else the data dir's key file (made once)
    app.cleanup_ctx.append(_supervision)
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_media)
    app.cleanup_ctx.append(_streams)
    app.cleanup_ctx.append(_retention)
    app.cleanup_ctx.append(_webhooks)
    app.cleanup_ctx.append(_accounts)
    setup_routes(app)
    return app
