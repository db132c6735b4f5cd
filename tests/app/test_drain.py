"""Graceful drain (issue 12, item 4; service/http/drain.py): what SIGTERM does to the gateway, in-process.

In-process (fast): the gate (every documented operation answers 503 shutting_down with Retry-After, as the
document says; /health/live stays 200, /health/ready is 503 not_ready), the dispatcher's drain (a send in
flight finishes and is recorded, or at the deadline goes back to `queued` with its WhatsApp id; nothing new
is claimed; waiting callers are answered at once) and the webhook workers' drain (an attempt in flight
finishes, or is cut off and stays pending with its attempt counted and its lease released).

(The whole-stack part is in tests/system/test_drain_stack.py.)
"""

from __future__ import annotations

import asyncio
import time

import jsonschema
import pytest

import wa_gateway_client as wgc
from service.http.app import create_app
from service.http.appkeys import DRAIN
from service.http.drain import CODE
from service.settings import Settings
from service.states import DEFAULT_ACCOUNT
from service.store import event_log as event_store
from service.store import outbox
from service.store.db import Database
from service.webhooks import secret as webhook_secret
from service.webhooks.delivery import Policy, WebhookService
from tests.helpers.fake_worker import FakeWorker, accept, make_dispatcher, status_of
from tests.helpers.webhook_receiver import HANG, Receiver

KEY = "drain-test-key"
AUTH = {"X-API-Key": KEY}


A = DEFAULT_ACCOUNT
P1, P2 = "+15550002222", "+15550003333"


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


# --- the gate, in-process ---------------------------------------------------------------------------

@pytest.fixture
async def client(aiohttp_client, tmp_path):
    env = {"WA_DATA_DIR": str(tmp_path / "data"), "WA_RUN_DIR": str(tmp_path / "run"), "WA_API_KEY": KEY,
           "WA_SHUTDOWN_TIMEOUT": "2.5"}
    return await aiohttp_client(create_app(Settings.from_env(env)))


def _concrete(path: str) -> str:
    return path.replace("{account}", "default").replace("{id}", "x")


async def test_draining_every_documented_operation_answers_503_shutting_down_as_documented(client):
    doc = await (await client.get("/openapi.json", headers=AUTH)).json()
    assert "503 `shutting_down`" in doc["info"]["description"]  # said once, for every operation
    client.app[DRAIN].begin()
    checked = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            res = await client.request(method.upper(), _concrete(path), json={}, headers=AUTH)
            body = await res.json()
            if path == "/health/live":
                assert res.status == 200, body  # alive: an orchestrator must not kill it mid-drain
                continue
            assert res.status == 503, (method, path, res.status, body)
            assert res.headers["Retry-After"] == "3"  # WA_SHUTDOWN_TIMEOUT rounded up
            documented = op["responses"]["503"]
            assert "Retry-After" in documented["headers"], (method, path)
            schema = documented["content"]["application/json"]["schema"]
            jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(body)
            if path == "/health/ready":
                assert body["status"] == "not_ready" and body["error"]["code"] == CODE
            else:
                assert body == {"error": {"code": CODE, "message": body["error"]["message"]}}
                assert CODE in documented["x-error-codes"]
                assert res.headers.get("Connection", "").lower() == "close"
            checked += 1
    assert checked > 40
    # Without a key too: nobody gets anything but the 503 (and no 401 first).
    res = await client.get("/messages")
    assert res.status == 503 and (await res.json())["error"]["code"] == CODE


async def test_a_request_in_flight_finishes_and_an_event_stream_ends_when_the_drain_begins(client):
    stream = await client.get("/events/stream", headers=AUTH)
    assert stream.status == 200
    drain = client.app[DRAIN]
    assert drain.requests == 1  # the stream is a request in flight
    started = time.monotonic()
    left = await drain.run()  # the stream ends by itself: the drain does not wait for the deadline
    assert time.monotonic() - started < 1.5 and left > 1.0
    assert drain.requests == 0
    await asyncio.wait_for(stream.read(), 5)  # the server closed it (the client resumes with Last-Event-ID)
    res = await client.get("/status", headers=AUTH)
    assert res.status == 503 and (await res.json())["error"]["code"] == CODE


async def test_the_python_client_retries_shutting_down_after_retry_after(client):
    drain = client.app[DRAIN]
    drain.begin()
    url = str(client.make_url("/")).rstrip("/")
    async with wgc.AsyncClient(url, api_key=KEY, retry=wgc.Retry(attempts=2, max_wait=0.2)) as wa:
        began = time.monotonic()
        with pytest.raises(wgc.errors.ShuttingDown) as caught:
            await wa.accounts()
        assert time.monotonic() - began >= 0.2  # it waited (Retry-After, capped by max_wait) and tried again
        assert isinstance(caught.value, wgc.errors.ServiceUnavailableError) and caught.value.retry_after == 3
        # The gateway that answers next (here the same app, its drain over) serves the retry.
        asyncio.get_running_loop().call_later(0.1, setattr, drain, "since", None)
        assert [a.name for a in await wa.accounts()] == ["default"]


# --- the dispatcher's drain, in-process --------------------------------------------------------------

class SlowWorker(FakeWorker):
    """A send takes ``delay`` seconds at the worker (None: it never answers)."""

    def __init__(self, delay: float | None):
        super().__init__()
        self.delay = delay
        self.started = 0

    async def send_text(self, phone, text, message_id=None):
        self.started += 1
        await asyncio.sleep(3600 if self.delay is None else self.delay)
        return await super().send_text(phone, text, message_id)


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "data" / "gateway.db").open()
    yield database
    database.close()


async def test_a_send_in_flight_finishes_during_the_drain_and_its_result_is_recorded(db):
    worker = SlowWorker(0.3)
    row, _ = accept(db)
    waiting, _ = accept(db, phone=P2)
    dispatcher = make_dispatcher(db, worker, concurrency=1)
    await dispatcher.start()
    try:
        await wait_async(lambda: worker.started == 1, "the first send at the worker")
        behind = dispatcher.waiter(waiting["id"])  # a POST /send waiting for a message that is not in flight
        drain = asyncio.create_task(dispatcher.drain(_loop_time() + 5))
        await wait_async(behind.done, "the waiting caller answered")
        assert behind.result() is None and not drain.done()  # at once, while the send in flight still runs
        summary = await drain
        assert summary == {"sends_in_flight": 1, "sends_finished": 1, "sends_requeued": 0}
        assert status_of(db, row["id"])["status"] == "sent"
        await asyncio.sleep(0.1)  # several poll rounds: nothing more is claimed
        assert worker.started == 1 and status_of(db, waiting["id"])["status"] == "queued"
        assert dispatcher.waiter(waiting["id"]).result() is None  # a caller arriving now is not kept waiting
    finally:
        await dispatcher.stop()


async def test_a_send_still_running_at_the_deadline_goes_back_to_the_queue_and_goes_later_with_its_id(db):
    row, _ = accept(db)
    stuck = SlowWorker(None)
    dispatcher = make_dispatcher(db, stuck)
    await dispatcher.start()
    try:
        await wait_async(lambda: stuck.started == 1, "the send at the worker")
        assert status_of(db, row["id"])["status"] == "sending"
        began = time.monotonic()
        summary = await dispatcher.drain(_loop_time() + 0.3)
        assert time.monotonic() - began < 1.0  # bounded by the deadline
    finally:
        await dispatcher.stop()
    assert summary == {"sends_in_flight": 1, "sends_finished": 0, "sends_requeued": 1}
    back = status_of(db, row["id"])
    assert (back["status"], back["wait_reason"], back["attempts"]) == ("queued", "resend_after_restart", 1)
    # The next start finds nothing left `sending` and sends it again with the same WhatsApp id.
    assert db.call(outbox.recover_sending, time.time()) == 0
    worker = FakeWorker()
    again = make_dispatcher(db, worker)
    await again.start()
    try:
        await wait_async(lambda: status_of(db, row["id"])["status"] == "sent", "the resend")
    finally:
        await again.stop()
    assert [w for _, _, w in stuck.sent + worker.sent] == [outbox.wa_id_for(row["id"])]


async def wait_async(predicate, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


# --- the webhook workers' drain, in-process ----------------------------------------------------------

async def test_webhook_attempts_in_flight_finish_or_stay_pending_with_their_attempt_counted(db):
    secret = webhook_secret.generate()
    slow = Receiver(secret, lambda r: HANG if r.event and r.event["data"].get("hang") else 200).start()
    try:
        policy = Policy(timeout=30, retry_base=0.05, retry_max=0.1, concurrency=4)
        service = WebhookService(db, (slow.url,), event_store.TYPES, (secret,), policy, poll_interval=0.05)
        await service.start()
        try:
            hung = db.call(event_store.append, A, "message.received", {"text": "x", "hang": True}, time.time(),
                           subject=P1)
            service.notify()
            await wait_async(lambda: slow.by_id(hung["id"]), "the attempt that hangs")
            summary = await service.drain(_loop_time() + 0.3)
            late = db.call(event_store.append, A, "message.received", {"text": "y"}, time.time(), subject=P2)
            service.notify()
            await asyncio.sleep(0.2)  # poll rounds: nothing is claimed after the drain began
        finally:
            await service.stop()
        assert summary == {"deliveries_in_flight": 1, "deliveries_finished": 0, "deliveries_cut_off": 1}
        row = delivery(db, hung["id"])
        assert (row["status"], row["attempts"], row["lease_until"]) == ("pending", 1, None)  # due at once
        assert slow.by_id(late["id"]) == []
        # The next run delivers both; the cut-off one again with its webhook-id, its first attempt still counted.
        slow.script = lambda r: 200
        again = WebhookService(db, (slow.url,), event_store.TYPES, (secret,), policy, poll_interval=0.05)
        await again.start()
        try:
            await wait_async(lambda: delivery(db, hung["id"])["status"] == "delivered" and
                             delivery(db, late["id"], must=False) and
                             delivery(db, late["id"])["status"] == "delivered", "both delivered", timeout=10)
        finally:
            await again.stop()
        assert delivery(db, hung["id"])["attempts"] == 2 == len(slow.by_id(hung["id"]))
    finally:
        slow.stop()


def delivery(db, event_id, *, must=True):
    rows = db.call(lambda c: [dict(r) for r in c.execute("SELECT * FROM webhook_deliveries WHERE event_id = ?",
                                                           (event_id,))])
    assert rows or not must, event_id
    return rows[0] if rows else None
