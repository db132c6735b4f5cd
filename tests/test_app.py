"""The gateway app in-process (pytest-aiohttp): error shape, API key, request ids, worker outage.

No worker runs here, which is exactly the outage the gateway must report cleanly.
"""

import pytest

from service.app import create_app
from service.settings import Settings


def settings(tmp_path, **env) -> Settings:
    base = {"WA_DATA_DIR": str(tmp_path / "data"), "WA_RUN_DIR": str(tmp_path / "run")}
    return Settings.from_env({**base, **env})


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    return await aiohttp_client(create_app(settings(tmp_path)))


@pytest.fixture
async def keyed_client(aiohttp_client, tmp_path):
    return await aiohttp_client(create_app(settings(tmp_path, WA_API_KEY="s3cret-key")))


async def test_worker_down_is_503_in_the_error_shape(client):
    for method, path in [("GET", "/status"), ("POST", "/connect"), ("POST", "/disconnect")]:
        res = await client.request(method, path)
        assert res.status == 503
        assert await res.json() == {
            "error": {
                "code": "worker_unavailable",
                "message": "The WhatsApp worker is not reachable right now; it is restarted automatically.",
            }
        }


async def test_health_without_supervisord_is_degraded_not_an_error(client):
    res = await client.get("/health")
    assert res.status == 200
    body = await res.json()
    assert body["status"] == "degraded"
    assert body["worker"]["state"] == "UNKNOWN"
    assert (await client.get("/health/live")).status == 200
    assert (await client.get("/health/ready")).status == 503


async def test_request_id_is_echoed_or_made(client):
    res = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert res.headers["X-Request-ID"] == "abc-123"
    res = await client.get("/health/live", headers={"X-Request-ID": "bad id with spaces"})
    assert res.headers["X-Request-ID"] != "bad id with spaces"
    assert len(res.headers["X-Request-ID"]) == 16


async def test_api_key_guards_everything_but_probes(keyed_client):
    res = await keyed_client.get("/status")
    assert res.status == 401
    assert (await res.json())["error"]["code"] == "unauthorized"
    assert (await keyed_client.get("/status", headers={"X-API-Key": "wrong"})).status == 401
    # With the key the request reaches the (absent) worker.
    assert (await keyed_client.get("/status", headers={"X-API-Key": "s3cret-key"})).status == 503
    assert (await keyed_client.get("/status", headers={"Authorization": "Bearer s3cret-key"})).status == 503
    for probe in ("/health", "/health/live", "/health/ready"):
        assert (await keyed_client.get(probe)).status in (200, 503)
        assert (await keyed_client.get(probe)).status != 401


async def test_unknown_route_and_method_are_json(client):
    res = await client.get("/nope")
    assert res.status == 404 and (await res.json())["error"]["code"] == "not_found"
    res = await client.put("/send")
    assert res.status == 405 and (await res.json())["error"]["code"] == "method_not_allowed"


async def test_validation_happens_before_the_worker_is_asked(client):
    res = await client.post("/send", json={"phone_number": "12", "message": "hi"})
    assert res.status == 400
    assert (await res.json())["error"]["code"] == "invalid_phone_number"
