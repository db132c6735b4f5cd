"""Webhooks through the whole stack (supervisord, the worker against the emulator, the gateway): a contact's
message and a send's status arrive signed with the secret `wa-gateway webhook-secret` prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import API_KEY, wait_for
from tests.helpers.webhook_receiver import Receiver

# --- the whole stack ---------------------------------------------------------------------------------

@pytest.mark.system
def test_through_the_stack_a_contacts_message_and_a_send_status_arrive_signed(make_stack):
    receiver = Receiver("", lambda r: 500 if r.n == 1 else 200)  # every event's first attempt fails
    receiver.start()
    try:
        stack = make_stack({"WA_WEBHOOK_RETRY_BASE": "0.2", "WA_WEBHOOK_RETRY_MAX": "0.5"}, sandbox=True,
                           start=False)
        stack.env["WA_WEBHOOK_URL"] = receiver.url
        # The operator's path: no WA_WEBHOOK_SECRET, so the gateway signs with the generated secret that
        # `wa-gateway webhook-secret` prints (created here first, read by the gateway at start).
        printed = subprocess.run([str(Path(sys.executable).parent / "wa-gateway"), "webhook-secret"],
                                 env=stack.env, capture_output=True, text=True, timeout=30, check=True)
        receiver.secret = printed.stdout.strip()
        assert receiver.secret.startswith("whsec_")
        stack.start()
        pair(stack)

        incoming = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "Webhook me ✓"})
        assert incoming.status == 200, incoming.raw
        wa_in = incoming.json()["id"]

        def received():
            return [r for r in receiver.delivered() if r.event and r.event["type"] == "message.received"
                    and r.event["data"]["whatsapp_id"] == wa_in]
        [got] = wait_for(received, 30, "the signed message.received at the receiver")
        assert got.event["data"]["phone_number"] == CONTACT and got.event["data"]["text"] == "Webhook me ✓"
        assert got.event["account"] and got.event["id"] == got.id
        assert [r.status for r in receiver.by_id(got.id)] == [500, 200]  # retried, same webhook-id

        sent = stack.post("/send", {"phone_number": CONTACT, "message": "status please"}).json()
        wait_for(lambda: [r for r in receiver.delivered() if r.event["type"] == "message.status"
                          and r.event["data"].get("id") == sent["id"]], 30, "a message.status event for the send")
        assert any(r.event["type"] == "session.status" for r in receiver.delivered())

        records = receiver.snapshot()
        assert records and all(r.event is not None for r in records), [r.error for r in records]
        for r in records:  # the API key never reaches the receiver
            assert API_KEY not in json.dumps(r.headers) and API_KEY.encode() not in r.body
        listed = stack.get("/webhooks/deliveries?status=delivered&limit=200").json()["deliveries"]
        assert got.id in {d["event_id"] for d in listed}
        assert stack.health()["webhooks"][receiver.url]["failed"] == 0
        assert receiver.secret not in stack.logs() and "Webhook me" not in stack.logs()
    finally:
        receiver.stop()
