"""The fixtures of the account webhook tests: ``h``, the webhook harness with the accounts `sales` and
`support` registered, and ``api``, a builder of the app's middlewares and routes on that harness."""

from __future__ import annotations

import time

import pytest
from aiohttp import web

from service.http.appkeys import ACCOUNTS, DATABASE, SETTINGS, WEBHOOKS
from service.http.middlewares import MIDDLEWARES, setup_security
from service.http.routes import setup_routes
from service.settings import Settings
from service.store import accounts as registry
from tests.helpers.account_webhooks import (
    KEY,
    SALES,
    SUPPORT,
    Runtime,
)
from tests.helpers.webhook_harness import Harness


@pytest.fixture
async def h(tmp_path):
    harness = Harness(tmp_path)
    now = time.time()
    harness.db.call(registry.ensure_default, now)
    for name in (SALES, SUPPORT):
        harness.db.call(registry.create, name, 0, now, 100)
    yield harness
    await harness.stop_services()
    harness.db.close()
    for rec in harness.receivers:
        rec.stop()


@pytest.fixture
async def api(h, aiohttp_client, tmp_path):
    async def build(urls=(), **env):
        settings = Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_API_KEY": KEY, **env})
        app = web.Application(middlewares=MIDDLEWARES)
        app[SETTINGS] = settings
        setup_security(app)
        app[DATABASE] = h.db
        app[ACCOUNTS] = Runtime(h.db)
        app[WEBHOOKS] = await h.service(urls)
        setup_routes(app)
        return await aiohttp_client(app)
    return build
