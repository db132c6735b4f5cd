"""Inbound messages and live events through the whole stack: ``GET /events/stream`` (SSE) resumes
with ``Last-Event-ID`` from the durable log and misses nothing, across its own disconnects and a
gateway SIGKILL; ``GET /events`` and ``GET /messages?direction=in`` agree with it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading

import pytest

from tests.helpers.sandbox import PHONE, pair
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

CONTACT = "+15550006101"


class SseClient(threading.Thread):
    """Reads one SSE connection into ``events`` (id, event, data) until closed."""

    def __init__(self, stack, last_event_id: str | None = None, query: str = ""):
        super().__init__(daemon=True)
        headers = {"X-API-Key": stack.api_key, "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
        self.conn.request("GET", "/events/stream" + query, headers=headers)
        self.response = self.conn.getresponse()
        self.events: list[dict] = []

    def run(self):
        current: dict = {}
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if "data" in current:
                        self.events.append(current)
                    current = {}
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    current[field] = value[1:] if value.startswith(" ") else value
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # closed under us (the test, or a gateway kill)

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except OSError:
            pass
        self.conn.close()
        self.join(5)


def contact_says(stack, text: str) -> str:
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": text})
    assert res.status == 200, res.raw
    return res.json()["id"]


def test_sse_resumes_with_last_event_id_and_misses_nothing(make_stack):
    stack = make_stack(sandbox=True)
    pair(stack)
    unauthorised = stack.get("/events/stream", headers={"X-API-Key": None})
    assert unauthorised.status == 401
    assert stack.get("/events/stream", headers={"Last-Event-ID": "x1"}).status == 400

    first = SseClient(stack)
    assert first.response.status == 200
    assert first.response.getheader("Content-Type").startswith("text/event-stream")
    first.start()
    sent = [contact_says(stack, f"live {n}") for n in range(5)]
    wait_for(lambda: {json.loads(e["data"])["data"].get("whatsapp_id") for e in first.events} >= set(sent),
             20, "the live messages on the stream")
    first.close()
    last = first.events[-1]["id"]

    # Away: messages in, a message out with its statuses, and the gateway killed and restarted.
    sent += [contact_says(stack, f"while away {n}") for n in range(5)]
    out = stack.post("/send", {"phone_number": CONTACT, "message": "from us"}).json()
    wait_for(lambda: len(stack.get("/messages?direction=in&limit=200").json()["messages"]) >= 10, 20, "stored")
    os.kill(stack.process_info("gateway")["pid"], signal.SIGKILL)
    wait_for(lambda: stack.get("/health/live").status == 200, 30, "the gateway back")
    sent += [contact_says(stack, f"after restart {n}") for n in range(3)]

    resumed = SseClient(stack, last_event_id=last)
    resumed.start()
    wait_for(lambda: {json.loads(e["data"])["data"].get("whatsapp_id") for e in resumed.events} >= set(sent[5:]),
             30, "the missed messages on the resumed stream")
    wait_for(lambda: any(json.loads(e["data"])["type"] == "message.status"
                         and json.loads(e["data"])["data"]["id"] == out["id"] for e in resumed.events), 20,
             "our message's status on the resumed stream")
    resumed.close()

    # Nothing missed, nothing twice: the stream equals the durable log after the resume point.
    log = [e for e in stack.events(int(last))]
    streamed = resumed.events
    assert [int(e["id"]) for e in streamed] == [e["seq"] for e in log][: len(streamed)]
    assert all(e["event"] == json.loads(e["data"])["type"] for e in streamed)
    both = first.events + resumed.events
    assert len({e["id"] for e in both}) == len(both)
    received = [json.loads(e["data"])["data"] for e in both if e["event"] == "message.received"]
    # Each inbound message once. (In the order the worker decrypted them, which within a burst from a
    # new contact can differ from the send order: see docs/webhooks.md, "Inbound".)
    assert sorted(r["whatsapp_id"] for r in received) == sorted(sent)
    assert all(r["phone_number"] == CONTACT for r in received)
    listed = stack.get("/messages?direction=in&limit=200").json()["messages"]
    assert sorted(m["whatsapp_id"] for m in listed) == sorted(sent)  # one row per message
    assert [m["whatsapp_id"] for m in reversed(listed)] == [r["whatsapp_id"] for r in received]  # log order

    # Only new events without a resume point; a type filter holds.
    fresh = SseClient(stack, query="?types=session.status")
    fresh.start()
    contact_says(stack, "not a session event")
    assert stack.emu("POST", "/faults", {"kind": "disconnect"}).status == 200
    wait_for(lambda: any(json.loads(e["data"])["data"]["state"] == "connected" for e in fresh.events), 30,
             "the reconnect on the filtered stream")
    fresh.close()
    assert {e["event"] for e in fresh.events} == {"session.status"}
