"""WA_MEDIA_STORE in the app (service/media/factory.py, the ``_media`` context of service/http/app.py): the settings
and their refusals, the store the app opens (S3 on moto's server, PostgreSQL on the tests' server), the
``wa_gateway_media_*`` metrics, and credentials that appear in no repr, error or log line."""

from __future__ import annotations

import secrets
import time

import pytest

from service.http.app import create_app
from service.http.appkeys import DATABASE, MEDIA_STORE
from service.media.store import FileStore
from service.media.store_config import StoreSettings, read_store_settings
from service.media.store_pg import PostgresStore
from service.media.store_s3 import S3Store
from service.settings import Settings, SettingsError
from tests.helpers import s3_server
from tests.helpers.inprocess import AUTH, settings
from tests.helpers.metrics import parse, value


@pytest.fixture(scope="module")
def s3():
    server = s3_server.S3Server().start()
    yield server
    server.stop()


def test_the_store_settings_and_their_refusals():
    assert read_store_settings({}) == StoreSettings()
    assert Settings.from_env({}).media.store.kind == "file"
    full = read_store_settings({"WA_MEDIA_STORE": "S3", "WA_MEDIA_S3_BUCKET": "b", "WA_MEDIA_S3_PREFIX": "p/",
                                "WA_MEDIA_S3_ACCESS_KEY_ID": "id", "WA_MEDIA_S3_SECRET_ACCESS_KEY": "sekrit-value",
                                "WA_MEDIA_RETENTION": "0", "WA_MEDIA_QUOTA_BYTES": "1000",
                                "WA_MEDIA_PRUNE_GRACE": "60"})
    assert (full.kind, full.s3_prefix, full.retention, full.quota_bytes, full.grace) == ("s3", "p/", 0, 1000, 60)
    assert "sekrit" not in repr(full) and "sekrit" not in repr(Settings.from_env({
        "WA_MEDIA_STORE": "s3", "WA_MEDIA_S3_BUCKET": "b", "WA_MEDIA_S3_ACCESS_KEY_ID": "id",
        "WA_MEDIA_S3_SECRET_ACCESS_KEY": "sekrit-value"}))
    for env, says in [({"WA_MEDIA_STORE": "disk"}, "file, postgres, s3"),
                      ({"WA_MEDIA_STORE": "postgres"}, "WA_DATABASE_URL"),
                      ({"WA_MEDIA_STORE": "s3"}, "WA_MEDIA_S3_BUCKET"),
                      ({"WA_MEDIA_S3_ACCESS_KEY_ID": "id"}, "both"),
                      ({"WA_MEDIA_S3_SECRET_ACCESS_KEY": "sekrit-value"}, "both"),
                      ({"WA_MEDIA_S3_ENDPOINT_URL": "minio:9000"}, "http"),
                      ({"WA_MEDIA_QUOTA_BYTES": "-1"}, "WA_MEDIA_QUOTA_BYTES"),
                      ({"WA_MEDIA_PRUNE_GRACE": "0"}, "WA_MEDIA_PRUNE_GRACE")]:
        with pytest.raises(SettingsError, match=says) as info:
            Settings.from_env(env)
        assert "sekrit" not in str(info.value)


async def test_the_app_keeps_media_in_a_bucket_and_shows_its_metrics(aiohttp_client, tmp_path, s3, capsys):
    bucket = "wa-" + secrets.token_hex(6)
    s3.create_bucket(bucket)
    app = create_app(settings(tmp_path, **s3.env(bucket), WA_MEDIA_QUOTA_BYTES="100"))
    client = await aiohttp_client(app)
    store = app[MEDIA_STORE]
    assert isinstance(store, S3Store) and store.bucket == bucket and s3_server.SECRET_ACCESS_KEY not in repr(store)
    await app[DATABASE].run(lambda conn: conn.execute(
        "INSERT INTO messages (account, id, wa_id, direction, phone_number, body, status, expires_at, request_hash,"
        " created_at, media_kind, media_sha256, media_size) VALUES ('default', 'm1', 'WA1', 'out', '+15550001', '',"
        " 'sent', ?, 'h', ?, 'image', ?, 150)", (time.time() + 60, time.time(), "e" * 64)))
    res = await client.get("/metrics", headers=AUTH)
    assert res.status == 200
    families = parse(await res.text())
    assert value(families, "wa_gateway_media_account_bytes", account="default") == 150
    assert value(families, "wa_gateway_media_account_over_quota", account="default") == 1
    assert value(families, "wa_gateway_media_pruned_total", direction="inbound") == 0
    await client.close()
    assert store._client is None  # closed with the app
    assert s3_server.SECRET_ACCESS_KEY not in capsys.readouterr().out


async def test_a_bucket_that_does_not_exist_stops_the_start(tmp_path, s3):
    app = create_app(settings(tmp_path, **s3.env("no-such-bucket-" + secrets.token_hex(4))))
    from aiohttp.test_utils import TestServer

    server = TestServer(app)
    with pytest.raises(Exception) as info:
        await server.start_server()
    await server.close()
    assert "HeadBucket" in str(info.value)  # the check at start, not some later failure
    assert s3_server.SECRET_ACCESS_KEY not in str(info.value) and s3_server.SECRET_ACCESS_KEY not in repr(info.value)


async def test_the_app_keeps_media_in_postgresql(aiohttp_client, tmp_path, url):
    app = create_app(settings(tmp_path, WA_DATABASE_URL=url, WA_MEDIA_STORE="postgres"))
    client = await aiohttp_client(app)
    store = app[MEDIA_STORE]
    assert isinstance(store, PostgresStore) and isinstance(store.local, FileStore)
    assert await store.stat("f" * 64) is None
    await client.close()
    assert store._pool is None


def test_the_parts_metrics_do_not_name_a_message_or_a_blob():
    """The labels are accounts and directions: never a sha256 or an id (service/http/metrics.py's rule)."""
    from service.media.retention import MediaCollector, MediaStats

    class Database:
        def submit(self, fn):
            from concurrent.futures import Future

            future: Future = Future()
            future.set_result({"acct": 10})
            return future

    names = {k for m in MediaCollector(MediaStats(), Database(), 0).collect() for s in m.samples for k in s.labels}
    assert names == {"direction", "account"}
