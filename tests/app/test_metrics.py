"""GET /metrics (service/http/metrics.py): who may read it, that it is valid Prometheus text with bounded labels,
and, against a real sandbox stack, that its numbers agree with what the API says.

In-process (no worker, as in test_app.py): the key rules and WA_METRICS_PUBLIC, the exposition parsed with
prometheus_client's own parser, HTTP latency labelled by route pattern, one registry per app, the outbox
numbers read from the store, and a webhook dead-lettered against a closed port (the endpoint's label hides
its credentials). The stack test pairs, sends and receives for real, then compares the scrape with the API.

(The whole-stack part is in tests/system/test_metrics_stack.py.)
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

import pytest

from service.http.app import create_app
from service.http.metrics import Metrics
from service.runtime.dispatch import Dispatcher
from service.runtime.governor import Governor, GovernorPolicy
from service.settings import SettingsError
from service.store import inbound, outbox
from service.store.db import Database
from service.webhooks import secret as webhook_secret
from tests.helpers.inprocess import AUTH, KEY, settings
from tests.helpers.metrics import parse, scrape, value
from tests.helpers.stack import free_port


async def scoped_key(client) -> dict:
    res = await client.post("/accounts/default/keys", json={}, headers=AUTH)
    assert res.status == 201
    return {"X-API-Key": (await res.json())["key"]}


# --- who may read it -------------------------------------------------------------------------------

async def test_metrics_need_the_admin_key(client):
    res = await client.get("/metrics")
    assert res.status == 401
    assert (await res.json())["error"]["code"] == "unauthorized"
    assert (await client.get("/metrics", headers={"X-API-Key": "wrong"})).status == 401
    res = await client.get("/metrics", headers=await scoped_key(client))
    assert res.status == 403  # a key of one account must not see every account's numbers
    assert (await res.json())["error"]["code"] == "forbidden"
    res = await client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert res.status == 200
    assert res.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"


async def test_wa_metrics_public_opens_only_metrics(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(settings(tmp_path, WA_METRICS_PUBLIC="true")))
    assert (await client.get("/metrics")).status == 200
    assert (await client.get("/metrics", headers=await scoped_key(client))).status == 200
    assert (await client.get("/metrics", headers={"X-API-Key": "wrong"})).status == 401  # still refused
    assert (await client.get("/messages")).status == 401  # nothing else opens
    with pytest.raises(SettingsError, match="WA_METRICS_PUBLIC"):
        settings(tmp_path, WA_METRICS_PUBLIC="sometimes")
    assert settings(tmp_path).metrics_public is False


# --- the exposition -----------------------------------------------------------------------------------

async def test_the_exposition_parses_and_http_latency_is_labelled_by_route_pattern(client, aiohttp_client, tmp_path):
    assert (await client.get("/accounts/default/messages/msg_123", headers=AUTH)).status == 404
    assert (await client.get("/accounts/default/messages/msg_456", headers=AUTH)).status == 404
    assert (await client.get("/nowhere/+15550009999", headers=AUTH)).status == 404
    assert (await client.post("/messages", headers=AUTH)).status == 405
    res = await client.get("/metrics", headers=AUTH)
    text = await res.text()
    families = parse(text)
    assert "+15550009999" not in text and "msg_123" not in text  # never a raw path
    for name, samples in families.items():
        assert name.startswith(("wa_gateway_", "process_")), name
        assert not any(s.name.endswith("_created") for s in samples), name
    routes = {s.labels["route"] for s in families["wa_gateway_http_request_duration_seconds"]}
    patterns = {r.canonical for r in client.app.router.resources()}
    assert routes <= patterns | {"other"}, routes - patterns
    seconds = "wa_gateway_http_request_duration_seconds_count"
    assert value(families, seconds, route="/accounts/{account}/messages/{id}", method="GET", status="404") == 2
    assert value(families, seconds, route="other", method="GET", status="404") == 1
    assert value(families, seconds, route="other", method="POST", status="405") == 1
    assert value(families, seconds, route="/accounts/{account}/keys", method="GET", status="200") is None
    # Counters carry _total, durations are seconds, every account shows every state and status.
    assert value(families, "wa_gateway_whatsapp_connection_state", account="default", state="unknown") == 1
    assert value(families, "wa_gateway_whatsapp_reconnects_total", account="default") == 0
    assert value(families, "wa_gateway_worker_restarts_total", process="worker:worker-0") == 0
    assert value(families, "wa_gateway_watchdog_restarts_total", process="worker:worker-0") == 0
    assert value(families, "wa_gateway_store_up") == 1
    # One registry per app: another app in this process has none of these requests.
    other = await aiohttp_client(create_app(settings(tmp_path / "other")))
    assert value(await scrape(other), seconds, route="other", method="GET", status="404") is None


async def test_outbox_numbers_come_from_the_store(client):
    ids = []
    for n in range(3):  # no worker: accepted and left queued
        res = await client.post("/send?wait=0", json={"phone_number": "+15550003333", "message": f"m{n}"},
                                headers=AUTH)
        assert res.status == 202, await res.text()
        ids.append((await res.json())["id"])
    assert (await client.delete(f"/messages/{ids[0]}", headers=AUTH)).status == 200
    await asyncio.sleep(0.05)  # the oldest waiting message has an age
    families = await scrape(client)
    counts = {s.labels["status"]: s.value for s in families["wa_gateway_outbox_messages"]
              if s.labels["account"] == "default"}
    assert counts == {"queued": 2, "sending": 0, "sent": 0, "delivered": 0, "read": 0, "failed": 1}
    assert value(families, "wa_gateway_outbox_queue_depth", account="default") == 2
    age = value(families, "wa_gateway_outbox_oldest_queued_age_seconds", account="default")
    assert 0.05 <= age < 30


async def test_a_dead_letter_is_counted_and_held_under_the_endpoint_without_its_credentials(aiohttp_client, tmp_path):
    url = f"http://user:pw@127.0.0.1:{free_port()}/hook?token=t0k3n"  # nothing listens there
    client = await aiohttp_client(create_app(settings(
        tmp_path, WA_WEBHOOK_URL=url, WA_WEBHOOK_SECRET=webhook_secret.generate(), WA_WEBHOOK_MAX_ATTEMPTS="1")))
    res = await client.post("/send?wait=0", json={"phone_number": "+15550003333", "message": "x"}, headers=AUTH)
    assert res.status == 202
    # Cancelling commits a message.status event: its delivery fails to connect, and one attempt is the limit.
    assert (await client.delete(f"/messages/{(await res.json())['id']}", headers=AUTH)).status == 200
    label = f"http://***@127.0.0.1:{url.split(':')[3].split('/')[0]}/hook?***"
    deadline = time.monotonic() + 10
    while True:
        res = await client.get("/metrics", headers=AUTH)
        text = await res.text()
        families = parse(text)
        if value(families, "wa_gateway_webhook_dead_letters", endpoint=label) == 1:
            break
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.1)
    assert "pw" not in text and "t0k3n" not in text
    deliveries = "wa_gateway_webhook_deliveries_total"
    assert value(families, deliveries, endpoint=label, result="dead_lettered") == 1
    assert value(families, deliveries, endpoint=label, result="delivered") is None
    assert value(families, "wa_gateway_webhook_pending_deliveries", endpoint=label) == 0


# --- what the dispatcher reports ---------------------------------------------------------------------------

@pytest.fixture
def dispatcher(tmp_path):
    db = Database(tmp_path / "gateway.db").open()
    yield Dispatcher(db, None, Governor(GovernorPolicy()))
    db.close()


async def test_each_step_is_observed_once_whichever_path_reaches_it_first(dispatcher):
    metrics = Metrics()
    dispatcher.on_advance.append(partial(metrics.message_advanced, "default"))
    db, now = dispatcher.db, time.time()
    row, _ = db.call(lambda c: outbox.accept(c, account="default", phone_number="+15550004444", body="x",
                                             idempotency_key=None, now=now - 2, ttl=60, max_outbox=10))

    def receipt(status: str) -> None:
        event = {"type": "message.status", "id": row["wa_id"], "status": status}
        dispatcher.on_event(event, db.call(inbound.store_worker_event, "default", event, now))

    receipt("delivered")  # before the worker's ack came back: sent and delivered are reached together
    receipt("delivered")  # the hand-over repeats itself
    receipt("read")
    assert db.call(outbox.advance, "default", row["id"], "sent", now + 1) == (None, ())  # the late ack: nothing
    families = parse(metrics.render().decode())
    assert value(families, "wa_gateway_message_accepted_to_sent_seconds_count", account="default") == 1
    assert 2 <= value(families, "wa_gateway_message_accepted_to_sent_seconds_sum", account="default") < 10
    assert value(families, "wa_gateway_message_sent_to_delivered_seconds_count", account="default") == 1
    assert value(families, "wa_gateway_message_sent_to_delivered_seconds_sum", account="default") == 0


async def test_reconnects_are_returns_to_connected_in_the_session_events(dispatcher):
    def event(state: str, stored: bool = True) -> None:
        dispatcher.link.on_event({"type": "session.status", "state": state},
                            {"event": {"seq": 1} if stored else None, "message": None})

    dispatcher.link.set("connected")  # the first poll: it was connected before this gateway started
    event("connecting")
    event("connected")
    assert dispatcher.link.reconnects == 1
    event("connecting", stored=False)  # the hand-over repeated itself: not stored again, not counted again
    event("connected", stored=False)
    dispatcher.link.set(None)  # the worker did not answer a poll, then did: no reconnect
    dispatcher.link.set("connected")
    assert dispatcher.link.reconnects == 1
    for state in ("logged_out", "qr", "connecting", "connected"):  # a new pairing is not a reconnect
        event(state)
    assert dispatcher.link.reconnects == 1
    event("connecting")
    event("qr")  # unlinked meanwhile: its QR, then the pairing
    dispatcher.link.set("connected")  # the poll saw the pairing finish before its events came
    event("connecting")
    event("connected")
    assert dispatcher.link.reconnects == 1
    event("connecting")
    event("connected")
    assert dispatcher.link.reconnects == 2


async def test_broken_conversations_show_in_the_metrics_and_in_health(client):
    from service.http.appkeys import DATABASE
    db, now = client.app[DATABASE], time.time()
    report = {"type": "message.undecryptable", "event_id": "undecryptable:x:WA9", "id": "WA9", "from": "+15550003334",
              "lid": None, "from_jid": "15550003334@s.whatsapp.net", "timestamp": now, "attempts": 5,
              "error": "Bad MAC"}
    await db.run(inbound.store_worker_event, "default", report, now)
    row, _ = await db.run(lambda c: outbox.accept(c, account="default", phone_number="+15550003335", body="x",
                                                  idempotency_key=None, now=now - 900, ttl=3600, max_outbox=10))
    await db.run(outbox.advance, "default", row["id"], "sent", now - 800)
    await db.run(outbox.flag_undelivered, "default", now - 600, now)
    families = await scrape(client)
    assert value(families, "wa_gateway_messages_undecryptable_last_hour", account="default") == 1
    assert value(families, "wa_gateway_outbox_sent_without_receipt", account="default") == 1
    detailed = await (await client.get("/health", headers=AUTH)).json()
    assert detailed["conversations"] == {"default": {"undecryptable_last_hour": 1, "sent_without_receipt": 1}}
    assert any("could not be decrypted" in r and "default" in r for r in detailed["reasons"])
    anonymous = await (await client.get("/health")).json()
    assert "conversations" not in anonymous and anonymous["status"] == "degraded"
    assert any("could not be decrypted" in r and "default" not in r for r in anonymous["reasons"])
    message = await (await client.get(f"/messages/{row['id']}", headers=AUTH)).json()
    assert (message["status"], message["reason"]) == ("sent", "no_delivery_receipt")


async def test_the_dispatcher_flags_a_sent_message_without_a_receipt_past_the_bound(dispatcher):
    db, now = dispatcher.db, time.time()
    dispatcher.receipt_bound = 60.0
    notified = []
    dispatcher.on_change.append(lambda: notified.append(1))
    row, _ = db.call(lambda c: outbox.accept(c, account="default", phone_number="+15550004445", body="x",
                                             idempotency_key=None, now=now - 100, ttl=3600, max_outbox=10))
    db.call(outbox.advance, "default", row["id"], "sent", now - 90)
    await dispatcher._round()
    assert db.call(outbox.get, "default", row["id"])["reason"] == "no_delivery_receipt"
    assert notified == [1]  # its message.status event is in the log: the readers (SSE, webhooks) wake up


async def test_waiting_callers_are_counted_until_their_message_is_done(dispatcher):
    db, now = dispatcher.db, time.time()
    row, _ = db.call(lambda c: outbox.accept(c, account="default", phone_number="+15550004446", body="x",
                                             idempotency_key=None, now=now, ttl=3600, max_outbox=10))
    first, second = dispatcher.waiter(row["id"]), dispatcher.waiter(row["id"])
    assert dispatcher.waiting_callers == 2
    dispatcher.changed(db.call(outbox.advance, "default", row["id"], "sent", now)[0])
    assert first.done() and second.done() and dispatcher.waiting_callers == 0
