"""The app factory, used by ``__main__`` and by the tests alike."""

from __future__ import annotations

import time

from aiohttp import web

from .events import EventConsumer
from .keys import EVENTS, MONITOR, SETTINGS, STARTED_AT, WORKER
from .middlewares import MIDDLEWARES, setup_security
from .routes import setup_routes
from .settings import Settings
from .supervision import SupervisorMonitor
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
    events = EventConsumer(worker)
    app[EVENTS] = events
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


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=MIDDLEWARES,
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[STARTED_AT] = time.monotonic()
    setup_security(app)  # the API keys: WA_API_KEY, else the data dir's key file (made once)
    app.cleanup_ctx.append(_supervision)
    app.cleanup_ctx.append(_worker_link)
    setup_routes(app)
    return app
