"""Media retention and quotas (service/media/retention.py, refs.py) on a real store (SQLite, or PostgreSQL under
WA_TEST_DATABASE=postgresql) and real media stores: a blob shared by several messages and accounts stays while any
unpruned message references it, a blob younger than the grace period stays whatever references it (an intake
whose row is not committed yet), a queued message or a download in progress keeps its media, and the quota counts
each account's distinct unpruned blobs."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from service.media import refs
from service.media.retention import MediaCollector, MediaStats, prune_once, sweep
from service.media.store_config import StoreSettings
from tests.helpers import s3_server
from tests.helpers.media_stores import close_store, local_of, open_store, put
from tests.helpers.postgres import store_database

DAY = 86400.0
SETTINGS = StoreSettings(retention=30 * DAY, grace=3600.0, quota_bytes=0)


@pytest.fixture(scope="module")
def s3():
    server = s3_server.S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def db(tmp_path):
    database = store_database(tmp_path / "gateway.db").open()
    yield database
    database.close()


@pytest.fixture(params=["file", "s3", "postgres"])
async def store(request, tmp_path):
    opened = await open_store(request.param, tmp_path / "media", request)
    yield opened
    await close_store(opened)


def _outbound(conn, account, mid, sha256, size, created_at, status="sent"):
    conn.execute(
        "INSERT INTO messages (account, id, wa_id, direction, phone_number, body, status, expires_at, request_hash,"
        " created_at, media_kind, media_sha256, media_size, media_mimetype) VALUES (?, ?, ?, 'out', '+15550001',"
        " '', ?, ?, 'h', ?, 'image', ?, ?, 'image/png')",
        (account, mid, "WA" + mid, status, created_at + DAY, created_at, sha256, size))


def _inbound(conn, account, mid, sha256, size, created_at, state="stored"):
    conn.execute(
        "INSERT INTO inbound_media (account, message_id, kind, size, sha256, state, descriptor, created_at,"
        " updated_at) VALUES (?, ?, 'image', ?, ?, ?, '{}', ?, ?)", (account, mid, size, sha256, state, created_at,
                                                                     created_at))


def _pruned(conn):
    out = {r[0] for r in conn.execute("SELECT id FROM messages WHERE media_pruned_at IS NOT NULL")}
    return out | {r[0] for r in conn.execute("SELECT message_id FROM inbound_media WHERE pruned_at IS NOT NULL")}


async def _present(store, sha256) -> bool:
    remote = await store.stat(sha256) is not None
    return remote or local_of(store).exists(sha256)


async def test_a_shared_blob_stays_until_no_unpruned_message_references_it(db, store):
    now = time.time()
    shared = await put(store, os.urandom(70_000))
    alone = await put(store, os.urandom(50_000))
    old, recent = now - 40 * DAY, now - 5 * DAY

    def rows(conn):
        _outbound(conn, "a", "m1", shared.sha256, shared.size, old)  # due
        _inbound(conn, "a", "i1", shared.sha256, shared.size, old)  # due
        _outbound(conn, "b", "m2", shared.sha256, shared.size, recent)  # not due: keeps the blob
        _outbound(conn, "b", "m3", alone.sha256, alone.size, old, status="read")  # due, the only reference
    await db.run(rows)
    later = now + 2 * SETTINGS.grace  # the blobs are past their grace period
    stats = await prune_once(store, db, SETTINGS, now=later)
    assert await db.run(_pruned) == {"m1", "i1", "m3"}
    assert stats.pruned == {"outbound": 2, "inbound": 1}
    assert await _present(store, shared.sha256)
    assert not await _present(store, alone.sha256)
    # Once the last reference is pruned too, the shared blob goes.
    await prune_once(store, db, SETTINGS, stats, now=recent + SETTINGS.retention + 2 * SETTINGS.grace)
    assert await db.run(_pruned) == {"m1", "i1", "m2", "m3"}
    assert not await _present(store, shared.sha256)
    assert stats.pruned == {"outbound": 3, "inbound": 1} and stats.blobs == 0 and stats.bytes == 0


async def test_a_message_not_done_keeps_its_media_however_old(db, store):
    now = time.time()
    queued = await put(store, os.urandom(1000))
    downloading = await put(store, os.urandom(1001))

    def rows(conn):
        _outbound(conn, "a", "q1", queued.sha256, queued.size, now - 90 * DAY, status="queued")
        _outbound(conn, "a", "s1", queued.sha256, queued.size, now - 90 * DAY, status="sending")
        _inbound(conn, "a", "d1", downloading.sha256, downloading.size, now - 90 * DAY, state="downloading")
    await db.run(rows)
    await prune_once(store, db, SETTINGS, now=now + 2 * SETTINGS.grace)
    assert await db.run(_pruned) == set()
    assert await _present(store, queued.sha256) and await _present(store, downloading.sha256)


async def test_the_grace_period_spares_a_blob_whose_row_is_not_committed_yet(db, store):
    now = time.time()
    fresh = await put(store, os.urandom(2000))  # an intake between its commit and its row's
    assert await sweep(store, db, SETTINGS.grace, now=now) == 0
    assert await _present(store, fresh.sha256)
    assert await sweep(store, db, SETTINGS.grace, now=now + SETTINGS.grace + 60) >= 1  # an orphan, once old
    assert not await _present(store, fresh.sha256)


async def test_content_adopted_again_is_young_again(db, tmp_path):
    store = await open_store("file", tmp_path / "media", None)
    blob, other = await put(store, os.urandom(3000)), await put(store, os.urandom(3001))
    long_ago = time.time() - 10 * DAY
    for old in (blob, other):
        os.utime(old.path, (long_ago, long_ago))
    again = await put(store, blob.path.read_bytes())  # the same content sent anew: its row commits later
    assert again.sha256 == blob.sha256
    assert await sweep(store, db, SETTINGS.grace) == 1
    assert store.exists(blob.sha256) and not store.exists(other.sha256)


async def test_a_remote_store_keeps_the_local_copy_only_as_a_cache(db, tmp_path, request):
    store = await open_store("s3", tmp_path / "media", request)
    try:
        blob = await put(store, os.urandom(4000))
        await db.run(_outbound, "a", "m1", blob.sha256, blob.size, time.time(), "queued")
        await sweep(store, db, SETTINGS.grace, now=time.time() + 2 * SETTINGS.grace)
        assert not store.local.exists(blob.sha256)  # evicted: the bucket has it
        assert await store.stat(blob.sha256) == blob.size  # referenced: kept
        assert (await store.local_path(blob.sha256)).read_bytes()  # brought back for the worker
    finally:
        await close_store(store)


async def test_the_quota_counts_each_accounts_distinct_unpruned_blobs(db):
    now = time.time()
    a, b, c = "a" * 64, "b" * 64, "c" * 64

    def rows(conn):
        _outbound(conn, "acct", "m1", a, 100, now)
        _outbound(conn, "acct", "m2", a, 100, now)  # the same blob twice: counted once
        _inbound(conn, "acct", "i1", b, 30, now)
        _inbound(conn, "acct", "i2", c, 7, now, state="failed")  # holds nothing
        _outbound(conn, "other", "m3", c, 5000, now)
        _outbound(conn, "acct", "m4", c, 5000, now - 60 * DAY, status="delivered")
        refs.prune_rows(conn, now - 30 * DAY, now)  # m4 pruned: no longer counted
    await db.run(rows)
    assert await db.run(refs.account_bytes, "acct") == 130
    assert await db.run(refs.quota_left, "acct", 0) is None
    assert await db.run(refs.quota_left, "acct", 200) == 70
    assert await db.run(refs.quota_left, "acct", 100) == 0
    await db.run(refs.check_quota, "acct", 200, "d" * 64, 70)  # exactly fits
    await db.run(refs.check_quota, "acct", 0, "d" * 64, 10**12)  # no quota
    await db.run(refs.check_quota, "acct", 131, a, 100)  # a blob the account holds costs nothing more
    with pytest.raises(refs.MediaQuotaExceeded) as info:
        await db.run(refs.check_quota, "acct", 200, "d" * 64, 71)
    assert info.value.status == 413 and info.value.code == "media_quota_exceeded"
    assert await db.run(refs.bytes_by_account) == {"acct": 130, "other": 5000}
    collector = MediaCollector(MediaStats(blobs=3, bytes=5130), db, quota=200)
    samples = {(s.name, tuple(s.labels.values())): s.value
               for metric in await asyncio.to_thread(lambda: list(collector.collect())) for s in metric.samples}
    assert samples[("wa_gateway_media_account_bytes", ("acct",))] == 130
    assert samples[("wa_gateway_media_account_over_quota", ("other",))] == 1
    assert samples[("wa_gateway_media_account_over_quota", ("acct",))] == 0
    assert samples[("wa_gateway_media_stored_bytes", ())] == 5130


async def test_a_local_copy_the_worker_was_just_given_is_not_evicted(db, tmp_path, request):
    store = await open_store("postgres", tmp_path / "media", request)
    try:
        blob = await put(store, os.urandom(4000))
        long_ago = time.time() - 10 * DAY
        os.utime(blob.path, (long_ago, long_ago))
        assert await store.local_path(blob.sha256) == blob.path  # the dispatcher hands it to the worker now
        await sweep(store, db, SETTINGS.grace)
        assert store.local.exists(blob.sha256)
    finally:
        await close_store(store)
