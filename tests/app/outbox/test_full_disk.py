"""A full disk under the gateway itself, in-process (the whole stack: tests/system/test_full_disk_stack.py): on a tmpfs
and an ext4 image mounted by the test and filled until ENOSPC, every write the API needs answers 507
insufficient_storage with Retry-After, as documented, and stores nothing; reads still answer; once space is back
the same requests work and nothing was stored twice. Underneath: the store's writer reports SQLite's own error
when SQLite dropped the whole transaction, and runs the pieces of a batch alone so that a read is not failed
for a write's sake; the dispatcher puts back a message whose outcome it could not store."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
import structlog

from service.runtime.dispatch import Dispatcher
from service.runtime.governor import Governor, GovernorPolicy
from service.states import DEFAULT_ACCOUNT
from service.store import outbox
from service.store.db import Database, StorageFull, storage_full
from tests.helpers.fake_worker import AUTH, P1, P2, FakeWorker, accept, status_of, until
from tests.helpers.full_disk import KINDS, fill, free, mounted
from tests.helpers.openapi import conforms

pytestmark = pytest.mark.skipif(__import__("os").geteuid() != 0, reason="mounting a file system needs root")

A = DEFAULT_ACCOUNT


@pytest.fixture(params=KINDS)
def disk(request, tmp_path):
    """A small file system (tmpfs, or ext4 on a loop device) on tmp_path/data, unmounted afterwards."""
    with mounted(tmp_path / "data", 24, request.param) as directory:
        yield directory


async def test_writes_answer_507_while_the_disk_is_full_and_work_once_space_is_back(disk, api):
    client = await api()
    doc = await (await client.get("/openapi.json", headers=AUTH)).json()
    await client.post("/send", json={"phone_number": P1, "message": "before"}, headers=AUTH)
    key = {**AUTH, "Idempotency-Key": "full-1"}
    filler = fill(disk)
    with structlog.testing.capture_logs() as logs:
        attempts = [
            ("POST", "/send", "/send", {"phone_number": P1, "message": "secret body text"}, key),
            ("POST", "/accounts/default/send", "/accounts/{account}/send", {"phone_number": P2, "message": "x"}, AUTH),
            ("POST", "/accounts", "/accounts", {"name": "sales"}, AUTH),
            ("POST", "/accounts/default/keys", "/accounts/{account}/keys", {"label": "crm"}, AUTH),
        ]
        for method, path, pattern, body, headers in attempts:
            res = await client.request(method, path, json=body, headers=headers)
            answer = await conforms(doc, res, method, pattern)  # 507 is documented for the route, with its code
            assert res.status == 507 and answer["error"]["code"] == "insufficient_storage", (path, answer)
            assert int(res.headers["Retry-After"]) > 0
        listed = await client.get("/messages", headers=AUTH)  # reads still work
        assert listed.status == 200 and [m["message"] for m in (await listed.json())["messages"]] == ["before"]
    lines = [entry for entry in logs if entry["event"] == "http.insufficient_storage"]
    assert [(entry["route"], entry["log_level"]) for entry in lines] == [(p, "error") for _, _, p, _, _ in attempts]
    assert "full" in lines[0]["error"] and "secret body text" not in json.dumps(logs, default=str)

    free(filler)
    res = await client.post("/send?wait=0", json={"phone_number": P1, "message": "secret body text"}, headers=key)
    assert res.status in (200, 202) and "Idempotent-Replayed" not in res.headers  # the 507 had stored nothing
    again = await client.post("/send?wait=0", json={"phone_number": P1, "message": "secret body text"}, headers=key)
    assert (await again.json())["id"] == (await res.json())["id"]
    assert (await client.post("/accounts", json={"name": "sales"}, headers=AUTH)).status == 201
    messages = (await (await client.get("/messages", headers=AUTH)).json())["messages"]
    assert sorted(m["message"] for m in messages) == ["before", "secret body text"]


def test_a_batch_the_disk_filled_under_fails_with_sqlites_own_error_and_spares_its_reads(disk):
    db = Database(disk / "gateway.db").open()
    try:
        accept(db, phone=P1, text="stored before")
        filler = fill(disk)
        # One group commit: a read between writes that do not fit, each bigger than SQLite's page cache, so that
        # it fails inside its statement, where SQLite drops the whole transaction on SQLITE_FULL. The read still
        # gets its answer, each write SQLite's error (not "no such savepoint").
        big = "x" * (3 << 20)
        futures = [db.submit(outbox.accept, account=A, phone_number=P2, body=big, idempotency_key=None, now=1.0,
                             ttl=60.0, max_outbox=100),
                   db.submit(outbox.pending_count, A),
                   db.submit(outbox.accept, account=A, phone_number=P2, body=big + "y", idempotency_key=None, now=1.0,
                             ttl=60.0, max_outbox=100)]
        assert futures[1].result() == 1
        for future in (futures[0], futures[2]):
            with pytest.raises(sqlite3.OperationalError) as failed:
                future.result()
            assert failed.value.sqlite_errorname == "SQLITE_FULL" and storage_full(failed.value), failed.value
        free(filler)
        assert db.call(outbox.pending_count, A) == 1  # nothing of the failed writes held
        accept(db, phone=P2, text="after")
        assert db.call(outbox.pending_count, A) == 2
    finally:
        db.close()


def test_an_io_error_on_a_full_disk_is_a_full_disk_and_on_a_working_one_stays_an_io_error(disk):
    db = Database(disk / "gateway.db").open()

    def io_error(conn):
        exc = sqlite3.OperationalError("disk I/O error")  # what SQLite says for EDQUOT (SQLITE_IOERR_WRITE)
        exc.sqlite_errorcode = 778
        raise exc

    try:
        filler = fill(disk)
        with pytest.raises(StorageFull) as full:
            db.call(io_error)
        assert storage_full(full.value) and isinstance(full.value.__cause__, sqlite3.OperationalError)
        free(filler)
        with pytest.raises(sqlite3.OperationalError) as other:
            db.call(io_error)
        assert not storage_full(other.value)
    finally:
        db.close()


async def test_a_message_whose_outcome_the_full_disk_refused_goes_again_with_its_id(disk):
    db = Database(disk / "gateway.db").open()
    worker = FakeWorker()
    filler = []
    sent_once = worker.send_text

    async def send_then_fill(phone, text, message_id=None, **kw):
        answer = await sent_once(phone, text, message_id, **kw)
        if not filler:
            filler.append(fill(disk))  # WhatsApp has it; the disk fills before the gateway records `sent`
        return answer

    worker.send_text = send_then_fill
    dispatcher = Dispatcher(db, worker, Governor(GovernorPolicy(burst=100, rate_per_minute=6000, jitter=0)),
                            poll_interval=0.05, retry_base=0.05)
    row, _ = accept(db, phone=P1, text="once")
    await dispatcher.start()
    try:
        await until(lambda: filler)
        await asyncio.sleep(0.5)  # the disk stays full a while: nothing may be lost, nothing sent in a loop
        assert status_of(db, row["id"])["status"] == "sending"
        assert [m for _, _, m in worker.sent] == [row["wa_id"]]
        free(filler[0])
        await until(lambda: status_of(db, row["id"])["status"] == "sent")
    finally:
        await dispatcher.stop()
        db.close()
    assert [m for _, _, m in worker.sent] == [row["wa_id"]] * 2  # resent once, with the same WhatsApp id
