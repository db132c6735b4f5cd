"""The chats tests' fixtures: ``db``, the store (SQLite, or PostgreSQL with WA_TEST_DATABASE=postgresql), and ``api``,
a builder of the in-process app in front of a ``StandInWorker`` (as tests/app/outbox)."""

from __future__ import annotations

import pytest

from service.http.app import create_app
from service.settings import Settings
from tests.helpers import postgres
from tests.helpers.fake_worker import KEY, StandInWorker
from tests.helpers.postgres import store_database


@pytest.fixture
def db(tmp_path):
    database = store_database(tmp_path / "data" / "gateway.db").open()  # PostgreSQL with WA_TEST_DATABASE
    yield database
    database.close()


@pytest.fixture
async def api(aiohttp_client, tmp_path):
    runners = []

    async def build(**env):
        settings = Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_RUN_DIR": str(tmp_path / "run"),
                                      "WA_API_KEY": KEY, "WA_SEND_JITTER": "0", "WA_SEND_RATE_PER_MINUTE": "6000",
                                      **postgres.database_env(), **env})
        worker = StandInWorker()
        await worker.start(settings.worker_socket)
        runners.append(worker.runner)
        client = await aiohttp_client(create_app(settings))
        client.worker = worker
        return client
    yield build
    for runner in runners:
        await runner.cleanup()
