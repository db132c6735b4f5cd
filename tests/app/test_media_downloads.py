"""The gateway's inbound media, store and downloader (service/store/inbound_media.py, service/runtime/downloads.py)
against a real store (SQLite, or PostgreSQL with WA_TEST_DATABASE=postgresql) and a real FileStore, with the
worker's POST /media/download scripted (tests/helpers/inbound_media.py): stored with its message and announced
in message.received, then stored (media.stored) or failed (media.failed) once, retried with backoff in between,
an attempt given back while the account is not connected, resumed after a crash, never leaking the descriptor."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from structlog.testing import capture_logs

from service.media.config import MediaSettings
from service.media.store import FileStore
from service.runtime.downloads import GONE_ATTEMPTS, Downloader
from service.states import DEFAULT_ACCOUNT
from service.store import event_log, inbound, inbound_media
from tests.helpers.inbound_media import ScriptedWorker, error, media_event
from tests.helpers.postgres import store_database

A = DEFAULT_ACCOUNT
DATA = b"\xff\xd8\xff\xe0 a contact's photo " * 50


class Clock:
    """The downloader's time, moved by the tests; half a minute ahead, so a message received now is due (a second
    was not enough on a loaded machine: a message received more than a second after the clock was made was not
    due yet at the test's first step)."""

    def __init__(self) -> None:
        self.now = time.time() + 30

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path):
    database = store_database(tmp_path / "data" / "gateway.db").open()
    yield database
    database.close()


@pytest.fixture
def parts(db, tmp_path):
    media_dir = tmp_path / "media"
    store = FileStore(media_dir)
    worker = ScriptedWorker(media_dir)
    clock = Clock()
    settings = MediaSettings(directory=media_dir, download_attempts=4, download_retry_base=10.0,
                             download_retry_max=100.0, download_timeout=42.0)
    downloader = Downloader(db, worker, store, settings, account=A, clock=clock)
    return downloader, worker, store, clock


def receive(db, worker, data=DATA, n=1, **media):
    event = media_event(data, n, **media)
    worker.holds(event, data)
    stored = db.call(inbound.store_worker_event, A, event, time.time())
    return json.loads(stored["event"]["payload"])["data"], event


def media_row(db, message_id):
    return db.call(inbound_media.get, A, message_id)


def events_of(db, *types):
    return [json.loads(e["payload"]) for e in db.call(event_log.after, 0) if e["type"] in types]


def media_events(db):
    return [e for e in db.call(event_log.after, 0) if e["type"].startswith("media.")]


def test_a_media_message_is_announced_downloading_with_type_and_media_and_no_descriptor(db, parts):
    _, worker, _, _ = parts
    data, event = receive(db, worker, filename="invoice.pdf", kind="document", mimetype="application/pdf")
    assert data["type"] == data["kind"] == "document" and data["text"] == "look"
    media = data["media"]
    assert media == {"id": data["id"], "kind": "document", "mimetype": "application/pdf", "size": len(DATA),
                     "sha256": event["media"]["sha256"], "filename": "invoice.pdf", "caption": "look", "ptt": False,
                     "seconds": None, "width": 2, "height": 2, "state": "downloading", "url": f"/media/{data['id']}",
                     "error": None}
    key = event["media"]["descriptor"]["media_key"]
    assert all(key not in e["payload"] for e in db.call(event_log.after, 0))  # the secret stays in its row
    assert json.loads(media_row(db, data["id"])["descriptor"])["media_key"] == key
    text = db.call(inbound.store_worker_event, A, {**media_event(DATA, 2), "media": None, "kind": "text"}, time.time())
    shown = json.loads(text["event"]["payload"])["data"]
    assert shown["type"] == "text" and "media" not in shown
    # Another account's media is served under its own path.
    other = db.call(inbound.store_worker_event, "sales", media_event(DATA, 3), time.time())
    assert json.loads(other["event"]["payload"])["data"]["media"]["url"].startswith("/accounts/sales/media/")


def test_a_media_without_a_usable_descriptor_is_failed_at_once(db, parts):
    _, worker, _, _ = parts
    event = media_event(DATA)
    event["media"]["descriptor"] = {"direct_path": "/x"}  # no media key: nothing could ever decrypt it
    data = json.loads(db.call(inbound.store_worker_event, A, event, time.time())["event"]["payload"])["data"]
    assert (data["media"]["state"], data["media"]["error"]) == ("failed", "invalid_descriptor")
    # Every media message ends in one media.stored or media.failed: this one at once.
    assert [e["data"]["id"] for e in events_of(db, "media.failed")] == [data["id"]]


async def test_a_download_stores_the_file_and_appends_media_stored_once(db, parts):
    downloader, worker, store, _ = parts
    woken = []
    downloader.on_stored.append(lambda: woken.append(1))
    data, event = receive(db, worker)
    with capture_logs() as logs:
        await downloader.step()
    assert worker.calls == [{"id": "WAM1", "chat_jid": event["from_jid"], "kind": "image",
                             "descriptor": event["media"]["descriptor"]}]
    assert worker.timeouts == [42.0]  # WA_MEDIA_DOWNLOAD_TIMEOUT, not the worker client's default
    row = media_row(db, data["id"])
    assert (row["state"], row["attempts"], row["sha256"]) == ("stored", 1, event["media"]["sha256"])
    assert await store.stat(row["sha256"]) == len(DATA)
    stored = events_of(db, "media.stored")
    assert len(stored) == 1 and woken == [1]
    shown = stored[0]["data"]
    assert shown["id"] == data["id"] and shown["media"]["state"] == "stored" and shown["media"]["error"] is None
    assert db.call(inbound.get, A, data["id"])["media"]["state"] == "stored"
    await downloader.step()  # nothing due: no second download, no second event
    assert len(worker.calls) == 1 and len(events_of(db, "media.stored")) == 1
    key = event["media"]["descriptor"]["media_key"]
    assert logs and all(key not in repr(line) for line in logs)


async def test_a_failed_attempt_is_retried_with_backoff_then_stored(db, parts):
    downloader, worker, _, clock = parts
    data, _ = receive(db, worker)
    worker.script = [error(502, "media_download_failed"), error(504, "worker_timeout")]
    await downloader.step()
    first = media_row(db, data["id"])
    assert (first["state"], first["attempts"]) == ("downloading", 1)
    assert 5.0 <= first["next_attempt_at"] - clock.now <= 10.0  # base 10 s, with jitter (half to all of it)
    await downloader.step()
    assert len(worker.calls) == 1  # not due yet
    clock.now += 10.0
    await downloader.step()
    second = media_row(db, data["id"])
    assert second["attempts"] == 2 and 10.0 <= second["next_attempt_at"] - clock.now <= 20.0  # doubled
    clock.now += 20.0
    await downloader.step()
    assert media_row(db, data["id"])["state"] == "stored" and len(worker.calls) == 3


async def test_attempts_exhausted_fail_it_with_the_last_error_and_media_failed(db, parts):
    downloader, worker, _, clock = parts
    data, _ = receive(db, worker)
    worker.script = [error(502, "media_download_failed")] * 4
    for _ in range(4):
        await downloader.step()
        clock.now += 1000
    row = media_row(db, data["id"])
    assert (row["state"], row["error"], row["attempts"]) == ("failed", "media_download_failed", 4)
    failed = events_of(db, "media.failed")
    assert len(failed) == 1 and failed[0]["data"]["media"]["error"] == "media_download_failed"
    await downloader.step()
    assert len(worker.calls) == 4  # never again
    # Settled once: a late outcome (another attempt's, a second instance's) changes nothing and adds no event.
    assert db.call(inbound.media_settled, A, data["id"], clock.now, error="media_gone") is None
    assert db.call(inbound.media_settled, A, data["id"], clock.now, sha256="0" * 64, size=1) is None
    assert media_row(db, data["id"])["error"] == "media_download_failed" and len(media_events(db)) == 1


@pytest.mark.parametrize("answer,code", [(error(422, "media_corrupt"), "media_corrupt"),
                                         (error(400, "invalid_media"), "invalid_media")])
async def test_a_final_answer_fails_it_at_once(db, parts, answer, code):
    downloader, worker, _, _ = parts
    data, _ = receive(db, worker)
    worker.script = [answer]
    await downloader.step()
    row = media_row(db, data["id"])
    assert (row["state"], row["error"], row["attempts"]) == ("failed", code, 1)
    assert [e["data"]["media"]["error"] for e in events_of(db, "media.failed")] == [code]


async def test_media_gone_is_retried_until_its_bound(db, parts):
    downloader, worker, _, clock = parts
    data, _ = receive(db, worker)
    worker.script = [error(410, "media_gone")] * GONE_ATTEMPTS
    for attempt in range(1, GONE_ATTEMPTS + 1):
        await downloader.step()
        clock.now += 1000
        assert media_row(db, data["id"])["state"] == ("failed" if attempt == GONE_ATTEMPTS else "downloading")
    assert media_row(db, data["id"])["error"] == "media_gone" and len(worker.calls) == GONE_ATTEMPTS


async def test_another_sha256_than_announced_is_failed_and_nothing_is_adopted(db, parts):
    downloader, worker, store, _ = parts
    data, event = receive(db, worker)
    worker.holds(event, DATA + b"tampered")
    await downloader.step()
    row = media_row(db, data["id"])
    assert (row["state"], row["error"]) == ("failed", "sha256_mismatch")
    assert events_of(db, "media.failed") and not events_of(db, "media.stored")


async def test_not_connected_gives_the_attempt_back_and_a_connection_resumes_it(db, parts):
    downloader, worker, _, clock = parts
    data, _ = receive(db, worker)
    worker.script = [error(409, "not_connected"), error(503, "worker_unavailable")]
    await downloader.step()
    await downloader.step()  # not due again yet
    row = media_row(db, data["id"])
    assert (row["state"], row["attempts"], len(worker.calls)) == ("downloading", 0, 1)
    downloader.on_event({"type": "session.status", "state": "connected"}, {"event": None})
    await downloader.step()  # the connection made it due at once: the worker is away this time
    assert media_row(db, data["id"])["attempts"] == 0 and len(worker.calls) == 2
    clock.now += 1000
    await downloader.step()
    assert media_row(db, data["id"])["state"] == "stored"


async def test_a_media_too_large_or_too_old_is_failed_without_asking_the_worker(db, parts):
    downloader, worker, _, clock = parts
    big, _ = receive(db, worker, n=1, size=16 * 1024 * 1024 + 1)  # over WA_MEDIA_MAX_IMAGE_BYTES
    await downloader.step()
    assert media_row(db, big["id"])["error"] == "media_too_large" and worker.calls == []
    old, _ = receive(db, worker, n=2)
    worker.script = [error(409, "not_connected")]
    await downloader.step()
    clock.now += 7 * 86400 + 1  # the account stayed away past WA_MEDIA_DOWNLOAD_MAX_AGE
    await downloader.step()
    assert media_row(db, old["id"])["error"] == "media_expired" and len(worker.calls) == 1


async def test_the_same_file_again_is_not_downloaded_twice(db, parts):
    downloader, worker, _, _ = parts
    receive(db, worker, n=1)
    await downloader.step()
    again, _ = receive(db, worker, n=2)  # forwarded: the same bytes, another message
    await downloader.step()
    assert len(worker.calls) == 1 and media_row(db, again["id"])["state"] == "stored"


async def test_a_download_in_flight_at_a_crash_is_resumed_by_the_next_start(db, parts, tmp_path):
    downloader, worker, store, clock = parts
    data, _ = receive(db, worker)
    # The process died mid-download: the attempt was counted and the row pushed past the worker's timeout.
    assert db.call(inbound_media.claim, A, data["id"], clock.now + 3600, clock.now)
    await downloader.step()
    assert worker.calls == []  # not due (in flight, as far as the store knows)
    restarted = Downloader(db, worker, store, downloader._settings, account=A, clock=clock)
    restarted.start()
    try:
        for _ in range(200):
            if media_row(db, data["id"])["state"] == "stored":
                break
            await asyncio.sleep(0.01)
    finally:
        await restarted.stop()
    row = media_row(db, data["id"])
    assert (row["state"], row["attempts"]) == ("stored", 2)


async def test_a_new_media_message_wakes_the_running_downloader(db, parts):
    downloader, worker, _, _ = parts
    downloader.start()
    try:
        await asyncio.sleep(0.05)  # idle: waiting up to a minute
        data, event = receive(db, worker)
        downloader.on_event(event, {"event": {"id": "evt"}})
        for _ in range(200):
            if media_row(db, data["id"])["state"] == "stored":
                break
            await asyncio.sleep(0.01)
    finally:
        await downloader.stop()
    assert media_row(db, data["id"])["state"] == "stored"
