"""The app factory, used by ``__main__`` and by the tests alike."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from .events import EventConsumer
from .dispatch import Dispatcher
from .governor import Governor, GovernorPolicy
from .keys import DATABASE, DISPATCHER, EVENTS, MONITOR, NOTIFIER, SETTINGS, STARTED_AT, WEBHOOKS, WORKER
from .middlewares import MIDDLEWARES, setup_security
from .notify import Notifier
from .retention import retention_ctx
from .routes import setup_routes
from .settings import Settings
from .store.db import Database
from .supervision import SupervisorMonitor
from .webhooks.delivery import start_webhooks
from .worker_client import WorkerClient


async def _worker_link(app: web.Application):
    settings = app[SETTINGS]
    monitor = app[MONITOR]
    worker = WorkerClient(
        str(settings.worker_socket), settings.worker_request_timeout,
        start_wait=settings.worker_start_wait, may_come_up=monitor.worker_may_come_up,
    )
    await worker.start()
    app[WORKER] = worker
    events = EventConsumer(worker, app[DATABASE])
    events.on_stored.append(app[NOTIFIER].notify)
    app[EVENTS] = events
    events.on_stored.append(app[WEBHOOKS].notify)  # new events: the webhook workers look now
    events.start()
    yield
    await events.stop()
    await worker.close()


async def _supervision(app: web.Application):
    monitor = SupervisorMonitor(app[SETTINGS])
    app[MONITOR] = monitor
    monitor.start()
    yield
    await monitor.stop()


async def _store(app: web.Application):
    """The database, opened and migrated before anything is accepted or read from the worker."""
    database = await asyncio.to_thread(Database(app[SETTINGS].db_path).open)
    app[DATABASE] = database
    yield
    await asyncio.to_thread(database.close)


async def _webhooks(app: web.Application):
    """Webhook delivery (service/webhooks/): persisted, so it resumes where the last run stopped."""
    service = await start_webhooks(app[SETTINGS], app[DATABASE])
    app[WEBHOOKS] = service
    yield
    await service.stop()


async def _outbox(app: web.Application):
    """The dispatcher; it hears every worker event from the first one on (registered before any await)."""
    settings = app[SETTINGS]
    dispatcher = Dispatcher(
        app[DATABASE], app[WORKER], Governor(getattr(settings, "governor", None) or GovernorPolicy()),
        concurrency=settings.dispatch_concurrency, max_attempts=settings.send_max_attempts,
        retry_base=settings.send_retry_base, retry_max=settings.send_retry_max,
    )
    app[EVENTS].listeners.append(dispatcher.on_event)
    dispatcher.on_change.append(app[NOTIFIER].notify)
    dispatcher.on_change.append(app[WEBHOOKS].notify)  # message.status events: webhooks look now
    app[DISPATCHER] = dispatcher
    await dispatcher.start()
    yield
    await dispatcher.stop()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=MIDDLEWARES,
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[STARTED_AT] = time.monotonic()
    app[NOTIFIER] = Notifier()
    setup_security(app)  # the API keys: WA_API_KEY, else the data dir's key file (made once)
    app.cleanup_ctx.append(_supervision)
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(retention_ctx)
    app.cleanup_ctx.append(_webhooks)
    app.cleanup_ctx.append(_worker_link)
    app.cleanup_ctx.append(_outbox)
    setup_routes(app)
    return app
