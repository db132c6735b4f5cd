"""The in-process gateway app that test_app, test_openapi and test_metrics build: settings in a temporary
data dir with one admin key (the ``client`` fixture, an aiohttp test client of it, is in tests/app/conftest.py;
no worker, no supervisord)."""

from __future__ import annotations

from service.settings import Settings

KEY = "s3cret-key"
AUTH = {"X-API-Key": KEY}


def settings(tmp_path, **env) -> Settings:
    base = {"WA_DATA_DIR": str(tmp_path / "data"), "WA_RUN_DIR": str(tmp_path / "run"), "WA_API_KEY": KEY}
    return Settings.from_env({**base, **env})
