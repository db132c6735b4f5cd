"""GET /health's `store`, which `selftest` relies on: whether the store takes writes (in-process)."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from service.http.app import create_app
from service.http.appkeys import DATABASE
from service.http.views import health as health_view
from service.settings import Settings
from tests.helpers.account_webhooks import KEY as HOOK_KEY

ADMIN = {"X-API-Key": HOOK_KEY}


def app_settings(tmp_path) -> Settings:
    return Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_RUN_DIR": str(tmp_path / "run"),
                              "WA_API_KEY": HOOK_KEY})


async def test_health_says_whether_the_store_takes_writes(aiohttp_client, tmp_path, monkeypatch):
    monkeypatch.setattr(health_view, "STORE_TIMEOUT", 0.3)
    monkeypatch.setattr(health_view, "STORE_REUSE", 0.0)
    client = await aiohttp_client(create_app(app_settings(tmp_path)))
    db = client.app[DATABASE]

    def writes() -> int:
        row = db.call(lambda c: c.execute("SELECT writes FROM health_probe").fetchone())
        return row[0] if row else 0

    body = await (await client.get("/health", headers=ADMIN)).json()
    assert body["store"] == {"writable": True}
    assert not any("store" in r for r in body["reasons"])
    assert writes() == 1  # a real write, committed
    anonymous = await (await client.get("/health")).json()
    assert "store" not in anonymous and writes() == 2

    # Another process holds the write lock past the timeout: no commit, no waiting beyond it.
    blocker = sqlite3.connect(tmp_path / "data" / "gateway.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        body = await (await client.get("/health", headers=ADMIN)).json()
        assert time.monotonic() - started < 2.0
        assert body["status"] == "degraded"
        assert body["store"] == {"writable": False, "error": "no commit within 0.3 s"}
        assert "store is not writable: no commit within 0.3 s" in body["reasons"]
        anonymous = await (await client.get("/health")).json()
        assert anonymous["status"] == "degraded" and "store is not writable" in anonymous["reasons"]
        assert "store" not in anonymous
        assert (await client.get("/health/live")).status == 200
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    async def writable_again() -> dict:
        for _ in range(100):
            body = await (await client.get("/health", headers=ADMIN)).json()
            if body["store"]["writable"]:
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"the store stayed unwritable: {body['store']}")

    await writable_again()
    # A store that refuses writes outright: the reason is SQLite's, without a path.
    await db.run(lambda c: c.execute("PRAGMA query_only = ON"))
    try:
        body = await (await client.get("/health", headers=ADMIN)).json()
        assert body["store"] == {"writable": False, "error": "attempt to write a readonly database"}
        assert str(tmp_path) not in str(body)
    finally:  # not through db.run: its BEGIN IMMEDIATE is refused now; the writer thread is idle meanwhile
        db._conn.execute("PRAGMA query_only = OFF")
    await writable_again()
