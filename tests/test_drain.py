"""Graceful drain (issue 12, item 4; service/http/drain.py): what SIGTERM does to the gateway, and to the stack.

In-process (fast): the gate (every documented operation answers 503 shutting_down with Retry-After, as the
document says; /health/live stays 200, /health/ready is 503 not_ready), the dispatcher's drain (a send in
flight finishes and is recorded, or at the deadline goes back to `queued` with its WhatsApp id; nothing new
is claimed; waiting callers are answered at once) and the webhook workers' drain (an attempt in flight
finishes, or is cut off and stays pending with its attempt counted and its lease released).

On one sandbox stack (real supervisord, worker, emulator): SIGTERM to the gateway in the middle of a burst of
sends while webhook attempts hang, then SIGTERM to the whole stack with sends in flight and a restart: every
message accepted before is at its contact exactly once, every webhook event is delivered after, the account
comes back connected without a QR, and the measured stop times stay under stopwaitsecs.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pytest
import wa_gateway_client as wgc

from service.http.app import create_app
from service.http.appkeys import DRAIN
from service.http.drain import CODE
from service.settings import Settings
from service.store import event_log as event_store
from service.store import outbox
from service.store.db import Database
from service.webhooks import secret as webhook_secret
from service.webhooks.delivery import Policy, WebhookService
from tests.stack import CONF, Stack, wait_for
from tests.test_outbox import FakeWorker, accept, make_dispatcher, status_of
from tests.test_sandbox import PHONE, pair
from tests.webhook_receiver import HANG, Receiver

KEY = "drain-test-key"
AUTH = {"X-API-Key": KEY}
A = outbox.DEFAULT_ACCOUNT
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


# --- the whole stack -------------------------------------------------------------------------------------

BURST_CONTACTS = [f"+1555000{n}00" for n in range(41, 46)]
STOP_CONTACTS = [f"+1555000{n}00" for n in range(46, 50)]
STACK_ENV = {
    "WA_SEND_BURST": "1000", "WA_SEND_RATE_PER_MINUTE": "600000", "WA_SEND_JITTER": "0",
    "WA_SHUTDOWN_TIMEOUT": "3",  # the drain's bound: short, so that the hung webhook attempts are cut off soon
    "WA_WEBHOOK_TIMEOUT": "60", "WA_WEBHOOK_RETRY_BASE": "0.2", "WA_WEBHOOK_RETRY_MAX": "1",  # attempts hang on
}


def stopwaitsecs(program: str) -> int:
    section = CONF.read_text().split(f"[program:{program}]", 1)[1].split("\n[", 1)[0]
    return int(re.search(r"^stopwaitsecs=(\d+)", section, re.M).group(1))


class Sender:
    """Clients sending from threads as a careful client does: an Idempotency-Key per message, and every
    refusal retried (503 after its Retry-After, a refused connection at once) until 200/202."""

    def __init__(self, stack, prefix: str, contacts: list[str]):
        self.stack, self.prefix, self.contacts = stack, prefix, contacts
        self.accepted: dict[str, dict] = {}  # key -> the answer body, with the text
        self.refusals: list[tuple[int, str, str | None]] = []  # (status, code, Retry-After)
        self.lock = threading.Lock()

    def send(self, n: int) -> None:
        phone = self.contacts[n % len(self.contacts)]
        key, text = f"{self.prefix}-{n}", f"{self.prefix} {n:02d}"
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                res = self.stack.post("/send?wait=0", {"phone_number": phone, "message": text},
                                      headers={"Idempotency-Key": key}, timeout=10)
            except OSError:
                time.sleep(0.1)  # the gateway is restarting
                continue
            if res.status in (200, 202):
                with self.lock:
                    self.accepted[key] = {**res.json(), "text": text}
                return
            code = res.json()["error"]["code"]
            with self.lock:
                self.refusals.append((res.status, code, res.headers.get("Retry-After")))
            assert res.status == 503 and code == CODE, (res.status, res.raw)
            time.sleep(min(float(res.headers["Retry-After"]), 0.5))  # honoured, shortened for the test
        raise AssertionError(f"{key} was never accepted")

    def burst(self, count: int, threads: int = 6):
        pool = ThreadPoolExecutor(threads)
        futures = [pool.submit(self.send, n) for n in range(count)]
        pool.shutdown(wait=False)
        return futures


def check_exactly_once(stack, accepted: dict[str, dict]) -> Counter:
    """Every accepted message is at its contact once (one inbox entry per WhatsApp id, with its text);
    returns the resends the contacts saw (duplicate_count: the same id again, never shown twice)."""
    by_phone: dict[str, list[dict]] = {}
    for body in accepted.values():
        by_phone.setdefault(body["phone_number"], []).append(body)
    resends: Counter = Counter()
    for phone, sent in by_phone.items():
        inbox = stack.emu("GET", f"/contacts/{phone}/messages").json()
        ids = [m["id"] for m in inbox]
        assert len(ids) == len(set(ids)), f"{phone}: an id twice in the inbox"
        got = {m["id"]: m for m in inbox}
        for body in sent:
            assert got[body["whatsapp_id"]]["text"] == body["text"]
            resends[phone] += got[body["whatsapp_id"]]["duplicate_count"]
        assert set(ids) == {b["whatsapp_id"] for b in sent}, f"{phone}: lost or extra messages"
    return resends


def at_contacts(stack, accepted: dict[str, dict]) -> bool:
    phones = {b["phone_number"] for b in accepted.values()}
    there = {m["id"] for p in phones for m in stack.emu("GET", f"/contacts/{p}/messages").json()}
    return {b["whatsapp_id"] for b in accepted.values()} <= there


def all_sent(stack, count: int) -> bool:
    messages = stack.all_pages("/messages?limit=200")
    return len(messages) == count and all(m["status"] in ("sent", "delivered", "read") for m in messages)


@pytest.fixture(scope="module")
def linked():
    secret = webhook_secret.generate()
    mode = {"hang": True}
    receiver = Receiver(secret, lambda r: HANG if mode["hang"] else 200).start()
    stack = Stack({**STACK_ENV, "WA_WEBHOOK_URL": receiver.url, "WA_WEBHOOK_SECRET": secret}, sandbox=True)
    try:
        stack.start()
        pair(stack)
        yield stack, receiver, mode
    finally:
        stack.cleanup()
        receiver.stop()


@pytest.mark.system
def test_sigterm_to_the_gateway_mid_burst_refuses_new_requests_and_loses_nothing(linked):
    stack, receiver, mode = linked
    wait_for(lambda: any(r.status is None for r in receiver.snapshot()), 15, "a webhook attempt hanging")
    old = stack.process_info("gateway")["pid"]
    sender = Sender(stack, "burst", BURST_CONTACTS)
    futures = sender.burst(30)
    wait_for(lambda: len(sender.accepted) >= 8, 20, "the burst under way")
    signalled = time.monotonic()
    os.kill(old, signal.SIGTERM)
    # While it drains (held open by the webhook attempts in flight): 503 with Retry-After, probes included.
    refused = wait_for(lambda: (r := stack.get("/status", timeout=5)).status == 503 and r, 5, "a 503")
    assert refused.json()["error"]["code"] == CODE and int(refused.headers["Retry-After"]) >= 1
    ready = stack.get("/health/ready", timeout=5)
    assert ready.status == 503 and ready.json()["error"]["code"] == CODE and "Retry-After" in ready.headers
    assert stack.get("/health/live", timeout=5).status == 200
    assert stack.get("/status", headers={"X-API-Key": None}, timeout=5).status == 503  # no 401 first
    wait_for(lambda: any(r.get("event") == "gateway.drained" for r in stack.log_events()), 10, "the drain's end",
             interval=0.02)
    mode["hang"] = False  # the webhook receiver answers from now on (before the next gateway's first attempt)
    new = wait_for(lambda: (i := stack.process_info("gateway"))["statename"] == "RUNNING" and i["pid"] != old
                   and i["pid"], 30, "the gateway restarted by supervisord")
    print(f"\ngateway SIGTERM -> restarted (pid {old} -> {new}): {time.monotonic() - signalled:.2f} s")
    for future in futures:
        future.result(60)
    wait_for(lambda: all_sent(stack, 30), 30, "every message sent")
    wait_for(lambda: at_contacts(stack, sender.accepted), 15, "every message at its contact")
    resends = check_exactly_once(stack, sender.accepted)
    assert len(sender.accepted) == 30
    assert sum(resends.values()) == 0, resends  # the sends in flight finished: none went twice
    assert {(s, c) for s, c, _ in sender.refusals} <= {(503, CODE)}

    records = stack.log_events()
    drained = [r for r in records if r.get("event") == "gateway.drained"]
    assert len(drained) == 1, drained
    print(f"gateway drain: {drained[0]}")
    assert drained[0]["dispatch"]["sends_requeued"] == 0
    assert drained[0]["webhooks"]["deliveries_cut_off"] >= 1  # the hung attempts, released
    # Nothing was left `sending` for the next start to recover, nor any webhook attempt leased.
    assert not [r for r in records if r.get("event") == "outbox.recovered"]
    starts = [r for r in records if r.get("event") == "webhook.endpoints"]
    assert len(starts) == 2 and starts[1]["interrupted_attempts"] == 0

    # Webhooks: every event is delivered after the restart; none marked delivered unless answered 2xx;
    # every attempt counted (the gateway's count is the requests the receiver saw, cut-off ones included).
    def deliveries():
        rows = stack.all_pages("/webhooks/deliveries?limit=200", key="deliveries")
        return rows if rows and all(d["status"] == "delivered" for d in rows) else None
    rows = wait_for(deliveries, 30, "every webhook delivered")
    for row in rows:
        seen = receiver.by_id(row["event_id"])
        assert any(r.status == 200 for r in seen), row
        assert row["attempts"] == len(seen), (row, [(r.n, r.status) for r in seen])
    assert {e["event_id"] for e in stack.events()} <= {r["event_id"] for r in rows}


@pytest.mark.system
def test_sigterm_to_the_whole_stack_with_sends_in_flight_then_back_connected_without_a_qr(linked):
    stack, receiver, _ = linked
    limit = max(stopwaitsecs(p) for p in ("gateway", "worker"))
    before = len(stack.all_pages("/messages?limit=200"))
    mark = max((e["seq"] for e in stack.events()), default=0)
    sender = Sender(stack, "stop", STOP_CONTACTS)
    futures = sender.burst(12, threads=4)
    wait_for(lambda: len(sender.accepted) >= 4, 20, "sends under way")
    began = time.monotonic()
    code = stack.stop(timeout=limit + 10)
    busy = time.monotonic() - began
    assert code == 0
    assert busy < limit, busy  # a hard bound of the design: supervisord never needs SIGKILL
    logs = stack.logs()
    for program in ("gateway", "worker-0", "emulator", "watchdog"):
        assert f"stopped: {program} (exit status 0)" in logs, program
    drained = [r for r in stack.log_events() if r.get("event") == "gateway.drained"][-1]
    worker = [r for r in stack.log_events() if r.get("program") == "worker"]
    assert any(r["event"] == "worker.stopped" for r in worker)  # creds saved, sockets closed, exit 0
    assert not [r for r in worker if r["event"] == "session.state" and r.get("state") == "logged_out"]

    stack.start()
    stack.wait_state("connected", 30)
    after = [e for e in stack.events(mark) if e["type"] == "session.status"]
    assert not [e for e in after if e.get("state") == "qr"], after  # logged straight back in: no QR
    for future in futures:
        future.result(60)  # the refused ones were retried against the new stack
    total = before + len(sender.accepted)
    wait_for(lambda: all_sent(stack, total), 30, "every message sent after the restart")
    wait_for(lambda: at_contacts(stack, sender.accepted), 15, "every message at its contact")
    check_exactly_once(stack, sender.accepted)
    assert stack.status()["phone_number"] == PHONE
    devices = [d for a in stack.emu("GET", "/").json()["accounts"] if a["phone_number"] == PHONE for d in a["devices"]]
    assert len(devices) == 1  # the same linked device, not a new one

    began = time.monotonic()
    assert stack.stop(timeout=limit + 10) == 0
    idle = time.monotonic() - began
    assert idle < limit, idle
    print(f"\nwhole stack SIGTERM -> supervisord exit: {busy:.2f} s during a burst of {len(futures)} sends "
          f"(gateway drain {drained['duration_ms']} ms, {drained['dispatch']}), {idle:.2f} s idle "
          f"(stopwaitsecs {limit})")
