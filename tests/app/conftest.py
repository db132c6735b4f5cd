"""The in-process tests' ``client``: an aiohttp test client of the whole app (tests/helpers/inprocess.py: its
settings in a temporary data dir with one admin key; no worker, no supervisord)."""

import pytest

from service.http.app import create_app
from tests.helpers.inprocess import settings


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    return await aiohttp_client(create_app(settings(tmp_path)))
