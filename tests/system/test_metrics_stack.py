"""GET /metrics (service/http/metrics.py): who may read it, that it is valid Prometheus text with bounded labels,
and, against a real sandbox stack, that its numbers agree with what the API says.

In-process (no worker, as in test_app.py): the key rules and WA_METRICS_PUBLIC, the exposition parsed with
prometheus_client's own parser, HTTP latency labelled by route pattern, one registry per app, the outbox
numbers read from the store, and a webhook dead-lettered against a closed port (the endpoint's label hides
its credentials). The stack test pairs, sends and receives for real, then compares the scrape with the API.

(The part without a stack is in tests/app/test_metrics.py.)
"""

from __future__ import annotations

import os
import signal

import pytest

from service.webhooks import secret as webhook_secret
from tests.helpers.metrics import parse, value
from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import Stack, wait_for
from tests.helpers.webhook_receiver import Receiver

# --- against a real stack ------------------------------------------------------------------------------

SENDS = 3


def stack_scrape(stack: Stack) -> dict:
    res = stack.get("/metrics")
    assert res.status == 200, res.raw
    assert res.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(res.raw.decode())


@pytest.mark.system
def test_a_scrape_agrees_with_the_api_after_real_traffic():
    """Pair, send a few, receive one (delivered to a webhook receiver), then every number agrees with the API."""
    secret = webhook_secret.generate()
    receiver = Receiver(secret).start()
    try:
        with Stack({"WA_WEBHOOK_URL": receiver.url, "WA_WEBHOOK_SECRET": secret}, sandbox=True) as stack:
            pair(stack)
            for n in range(SENDS):
                sent = stack.post("/send", {"phone_number": CONTACT, "message": f"metrics {n}"})
                assert sent.status == 200, sent.raw
            inbound = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "metrics back"})
            assert inbound.status == 200, inbound.raw
            stack.wait_event(lambda e: e["type"] == "message.received", 15, "the inbound message")
            endpoint = receiver.url  # no credentials: its public form is itself

            def agreed():
                """The scrape once everything settled: every message delivered and every event delivered."""
                messages = stack.all_pages("/messages?limit=200")
                if [m for m in messages if m["status"] != "delivered"]:
                    return None
                families = stack_scrape(stack)
                delivered = stack.all_pages("/webhooks/deliveries?status=delivered&limit=200", key="deliveries")
                pending = stack.all_pages("/webhooks/deliveries?status=pending&limit=200", key="deliveries")
                counted = value(families, "wa_gateway_webhook_deliveries_total", endpoint=endpoint, result="delivered")
                if pending or counted != len(delivered):
                    return None
                return families, messages, delivered

            families, messages, delivered = wait_for(agreed, 15, "every message and webhook delivered")
            by_status = {s.labels["status"]: s.value for s in families["wa_gateway_outbox_messages"]
                         if s.labels["account"] == "default"}
            assert by_status == {s: sum(1 for m in messages if m["status"] == s)
                                 for s in ("queued", "sending", "sent", "delivered", "read", "failed")}
            assert by_status["delivered"] == SENDS
            assert value(families, "wa_gateway_message_accepted_to_sent_seconds_count", account="default") == SENDS
            assert value(families, "wa_gateway_message_sent_to_delivered_seconds_count", account="default") == SENDS
            assert len(receiver.delivered()) >= len(delivered) > SENDS  # statuses, the inbound, session changes
            assert any(r.event and r.event["type"] == "message.received" for r in receiver.delivered())
            assert value(families, "wa_gateway_webhook_dead_letters", endpoint=endpoint) == 0
            assert value(families, "wa_gateway_webhook_pending_deliveries", endpoint=endpoint) == 0
            assert value(families, "wa_gateway_whatsapp_connection_state", account="default", state="connected") == 1
            assert sum(s.value for s in families["wa_gateway_whatsapp_connection_state"]) == 1
            # The worker's in-memory queues, with their bounds: what it sent is remembered, nothing waits.
            assert value(families, "wa_gateway_worker_queue_size", account="default", queue="sent_ids") >= SENDS
            assert value(families, "wa_gateway_worker_queue_bound", account="default", queue="sent_ids") == 10000
            assert value(families, "wa_gateway_worker_queue_size", account="default", queue="acks_waiting") == 0
            assert value(families, "wa_gateway_send_waiting_callers", account="default") == 0
            assert value(families, "wa_gateway_worker_queue_bound", account="default",
                         queue="undecryptable_waiting") == 10000
            assert value(families, "wa_gateway_whatsapp_reconnects_total", account="default") == 0
            assert value(families, "wa_gateway_outbox_queue_depth", account="default") == 0
            assert value(families, "wa_gateway_outbox_oldest_queued_age_seconds", account="default") == 0
            assert value(families, "wa_gateway_worker_restarts_total", process="worker:worker-0") == 0
            assert value(families, "wa_gateway_http_request_duration_seconds_count",
                         route="/send", method="POST", status="200") == SENDS

            # The worker crashes: supervisord restarts it, the gateway sees a new pid, WhatsApp reconnects once.
            os.kill(stack.process_info("worker:worker-0")["pid"], signal.SIGKILL)

            def restarted():
                families = stack_scrape(stack)
                state = value(families, "wa_gateway_whatsapp_connection_state", account="default", state="connected")
                restarts = value(families, "wa_gateway_worker_restarts_total", process="worker:worker-0")
                reconnects = value(families, "wa_gateway_whatsapp_reconnects_total", account="default")
                # The state poll may see the new worker connected before its session events are read.
                return families if state == 1 and restarts == 1 and reconnects else None

            families = wait_for(restarted, 15, "the worker restarted and connected again")
            assert value(families, "wa_gateway_whatsapp_reconnects_total", account="default") == 1
    finally:
        receiver.stop()
