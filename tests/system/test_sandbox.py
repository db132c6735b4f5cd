"""The whole stack against the WhatsApp network emulator: supervisord runs the emulator, the real
worker with the real Baileys, and the gateway (`wa-gateway sandbox`, as `make sandbox` does)."""

import os
import signal
import time

import pytest

from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

@pytest.fixture
def sandbox(make_stack):
    return make_stack(sandbox=True)


def test_pair_send_receive_and_receipts(sandbox):
    stack = sandbox
    status = stack.post("/connect").json()
    assert status["state"] == "qr", status
    assert status["qr"].startswith("https://wa.me/settings/linked_devices#")
    assert status["qr_image"].startswith("data:image/png;base64,")
    assert stack.health()["whatsapp"]["state"] == "qr"

    res = stack.emu("POST", "/phone/scan", {"phone_number": PHONE, "qr": status["qr"]})
    assert res.status == 200, res.raw
    connected = stack.wait_state("connected", 30)
    assert connected["phone_number"] == PHONE
    assert connected["qr"] is None
    health = stack.health()
    assert health["status"] == "ok" and health["whatsapp"]["state"] == "connected"
    assert stack.get("/health/ready").status == 200

    # Send: non-ASCII and emoji arrive decrypted and exact at the contact.
    text = "Olá, Zoë! Grüße aus Köln — 你好 👋🏽🎉"
    sent = stack.post("/send", {"phone_number": CONTACT, "message": text})
    assert sent.status == 200, sent.raw
    body = sent.json()
    assert body["phone_number"] == CONTACT and body["id"] and body["status"] == "sent"
    wa_id = body["whatsapp_id"]  # the id WhatsApp (the emulator, the worker's events) knows it by
    inbox = wait_for(
        lambda: [m for m in stack.emu("GET", f"/contacts/{CONTACT}/messages").json() if m["id"] == wa_id],
        15, "the message at the contact",
    )
    assert inbox[0]["text"] == text
    assert inbox[0]["from"] == PHONE
    assert inbox[0]["duplicate_count"] == 0

    # Receipts: delivered (sent by the contact's device on receipt), then read on request.
    stack.wait_event(lambda e: e["type"] == "message.status" and e["whatsapp_id"] == wa_id
                     and e["status"] in ("delivered", "read"), 15, "delivered receipt")
    res = stack.emu("POST", f"/contacts/{CONTACT}/receipts", {"id": wa_id, "type": "read"})
    assert res.status == 200, res.raw
    stack.wait_event(lambda e: e["type"] == "message.status" and e["whatsapp_id"] == wa_id
                     and e["status"] == "read", 15, "read receipt")
    wait_for(lambda: stack.get(f"/messages/{body['id']}").json()["status"] == "read", 15, "status read at the gateway")

    # Receive: a contact's message reaches the worker and the gateway, logged with its id.
    incoming = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "Hi back 🙂"})
    assert incoming.status == 200, incoming.raw
    in_id = incoming.json()["id"]
    event = stack.wait_event(lambda e: e["type"] == "message.received" and e["whatsapp_id"] == in_id, 15,
                             "inbound message")
    assert event["text"] == "Hi back 🙂"
    assert event["phone_number"] == CONTACT
    assert event["kind"] == "text" and event["offline"] is False
    # The app reads it back: GET /messages?direction=in (newest first) and GET /messages/{id}.
    listed = stack.get("/messages?direction=in").json()["messages"]
    assert [m["whatsapp_id"] for m in listed].count(in_id) == 1
    mine = next(m for m in listed if m["whatsapp_id"] == in_id)
    assert mine["direction"] == "in" and mine == event["data"]  # the event carries the message as listed
    assert stack.get(f"/messages/{mine['id']}").json()["text"] == "Hi back 🙂"
    wait_for(
        lambda: any(e.get("event") == "whatsapp.message" and e.get("message_id") == in_id
                    for e in stack.log_events()),
        15, "the gateway's log line for the inbound message",
    )
    # Message bodies and QR secrets never reach the info-level logs.
    assert status["qr"].split("#")[1] not in stack.logs()
    assert "Hi back" not in stack.logs()
    assert "Grüße" not in stack.logs()

    # A number that is not on WhatsApp fails clearly, and nothing is sent.
    assert stack.emu("POST", "/contacts", {"phone_number": "+15550009999", "on_whatsapp": False}).status == 200
    res = stack.post("/send", {"phone_number": "+15550009999", "message": "anyone?"})
    assert res.status == 422 and res.json()["error"]["code"] == "not_on_whatsapp"


def test_restarts_come_back_connected_without_a_qr(sandbox):
    stack = sandbox
    pair(stack)
    old_pid = stack.health()["worker"]["pid"]
    mark = stack.events()[-1]["seq"]
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: stack.health()["worker"]["pid"] not in (None, old_pid), 30, "new worker")
    stack.wait_state("connected", 30)
    # The new worker never showed a QR: it logged straight in with the stored session.
    after_kill = stack.wait_event(lambda e: e["seq"] > mark and e["type"] == "session.status"
                                  and e["state"] == "connected", 15, "the new worker's connected in the log")
    assert not [e for e in stack.events(mark) if e["type"] == "session.status" and e["state"] == "qr"]
    # The gateway's event reader followed the new worker boot (a new boot id: it read from the start
    # of what the new worker had not been acknowledged).
    # (The log line passes through supervisord, maybe after the event reached the API: wait for it.)
    wait_for(lambda: any(r.get("event") == "worker.new_boot" for r in stack.log_events()), 15,
             "the gateway's worker.new_boot line")
    assert after_kill["phone_number"] == PHONE

    # A whole supervisord restart (emulator included, which keeps its state file) likewise.
    mark = stack.events()[-1]["seq"]
    assert stack.stop() == 0
    stack.start()
    status = stack.wait_state("connected", 30)
    assert status["phone_number"] == PHONE
    assert not [e for e in stack.events(mark) if e["type"] == "session.status" and e["state"] == "qr"]
    sent = stack.post("/send", {"phone_number": CONTACT, "message": "after restart"})
    assert sent.status == 200, sent.raw


def reconnected_after(stack, kind: str, **extra) -> dict:
    before = len(stack.events())
    res = stack.emu("POST", "/faults", {"kind": kind, **extra})
    assert res.status == 200, res.raw
    assert res.json()["applied_to"] >= 1
    # The worker noticed (left "connected") and came back by itself.
    noticed = wait_for(
        lambda: next((e for e in stack.events()[before:]
                      if e["type"] == "session.status" and e["state"] == "connecting"), None),
        30, f"the worker to notice {kind}",
    )
    return {**stack.wait_state("connected", 30), "noticed": noticed}


@pytest.mark.parametrize("kind", ["disconnect", "restart_required", "conflict"])
def test_faults_that_reconnect(sandbox, kind):
    pair(sandbox)
    status = reconnected_after(sandbox, kind)
    assert status["phone_number"] == PHONE
    if kind == "restart_required":
        # 515 means "reconnect now": no backoff delay was used, before or after pairing.
        assert status["reconnect"]["delays_ms"] == []
    else:
        assert len(status["reconnect"]["delays_ms"]) == 1
        # A connection that stays up (WA_RECONNECT_STABLE_MS) resets the backoff.
        wait_for(lambda: sandbox.status()["reconnect"]["attempt"] == 0, 10, "backoff reset")


def test_keepalive_timeout_is_detected_and_recovered(make_stack):
    # Baileys ends a socket that heard nothing for keep-alive + 5 s, so 9 s of silence is noticed.
    stack = make_stack({"WA_KEEPALIVE_MS": "1000"}, sandbox=True)
    pair(stack)
    status = reconnected_after(stack, "blackhole", seconds=9)
    assert status["connected"]
    assert status["noticed"]["last_error"].startswith("Connection was lost"), status["noticed"]


def test_unlink_from_the_phone_ends_logged_out_and_removes_the_session(sandbox):
    stack = sandbox
    pair(stack)
    session_dir = stack.data_dir / "session"
    assert any(session_dir.iterdir())
    assert stack.emu("POST", "/faults", {"kind": "logout"}).status == 200
    status = stack.wait_state("logged_out", 30)
    assert status["phone_number"] is None
    assert not session_dir.exists() or not any(session_dir.iterdir())
    # No reconnect storm: it stays logged out.
    assert stack.status()["reconnect"]["scheduled"] is False
    # A later connect starts a fresh QR flow.
    assert stack.post("/connect").json()["state"] == "qr"


def test_unscanned_qr_codes_run_out_without_a_reconnect_storm(make_stack):
    stack = make_stack({"WA_QR_TIMEOUT_MS": "700", "WA_EMULATOR_QR_REFS": "2"}, sandbox=True)
    first = stack.post("/connect").json()
    assert first["state"] == "qr"
    stopped = stack.wait_state("stopped", 20)
    assert "qr_expired" in stopped["last_error"]
    assert stopped["reconnect"]["scheduled"] is False
    connecting = [e for e in stack.events() if e["type"] == "session.status" and e["state"] == "connecting"]
    assert len(connecting) == 1
    # The next connect shows a new QR.
    second = stack.post("/connect").json()
    assert second["state"] == "qr" and second["qr"] != first["qr"]
    stale = stack.emu("POST", "/phone/scan", {"phone_number": PHONE, "qr": first["qr"]})
    assert stale.status == 410 and stale.json()["error"]["code"] == "qr_expired", stale.raw


def test_disconnect_unlinks_at_the_emulator_and_removes_session_data(sandbox):
    stack = sandbox
    pair(stack)

    def devices():
        return [d for a in stack.emu("GET", "/").json()["accounts"] if a["phone_number"] == PHONE for d in a["devices"]]

    assert len(devices()) == 1
    res = stack.post("/disconnect")
    assert res.status == 200, res.raw
    body = res.json()
    assert body["state"] == "logged_out" and body["unlinked"] is True
    assert devices() == []
    session_dir = stack.data_dir / "session"
    assert not session_dir.exists() or not any(session_dir.iterdir())
    again = stack.post("/connect").json()
    assert again["state"] == "qr"


def test_api_key_sandbox_and_scanning_the_qr_the_gateway_shows(make_stack):
    """`make sandbox` with WA_API_KEY: the phone may scan without being given the QR string, as a
    camera pointed at the screen would; the emulator reads it from the gateway with the key."""
    stack = make_stack({"WA_API_KEY": "sandbox-key"}, sandbox=True)
    key = {"X-API-Key": "sandbox-key"}
    assert stack.post("/connect", headers={"X-API-Key": None}).status == 401
    assert stack.post("/connect", headers=key).json()["state"] == "qr"
    res = stack.emu("POST", "/phone/scan", {"phone_number": PHONE})
    assert res.status == 200, res.raw
    connected = wait_for(
        lambda: (s := stack.get("/status", headers=key).json())["state"] == "connected" and s,
        30, "connected",
    )
    assert connected["phone_number"] == PHONE


def test_concurrent_connects_open_one_whatsapp_connection(sandbox):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: sandbox.post("/connect").json(), range(5)))
    assert {a["state"] for a in answers} == {"qr"}
    assert len({a["qr"] for a in answers}) == 1
    connections = sandbox.emu("GET", "/").json()["connections"]
    assert len(connections) == 1, connections


@pytest.mark.parametrize("kind,code", [("forbidden", 403), ("multidevice_mismatch", 411)])
def test_whatsapp_refusing_the_session_ends_failed_without_reconnecting(sandbox, kind, code):
    stack = sandbox
    pair(stack)
    res = stack.emu("POST", "/faults", {"kind": kind})
    assert res.status == 200 and res.json()["applied_to"] == 1, res.raw
    failed = stack.wait_state("failed", 30)
    assert f"({code})" in failed["last_error"]
    assert failed["reconnect"]["scheduled"] is False
    # No reconnect storm: the emulator sees no new connection while we watch a few keep-alive periods.
    handshakes = stack.emu("GET", "/").json()["handshakes"]["started"]
    time.sleep(3)
    assert stack.status()["state"] == "failed"
    assert stack.emu("GET", "/").json()["handshakes"]["started"] == handshakes


def test_a_lookup_that_times_out_is_retried_not_failed_as_not_on_whatsapp(make_stack):
    """Baileys answers a timed-out "is this number on WhatsApp" query with nothing: that is not a "no"."""
    stack = make_stack({"WA_CONNECT_TIMEOUT_MS": "1500", "WA_SEND_RETRY_BASE": "0.5"}, sandbox=True)
    pair(stack)
    assert stack.emu("POST", "/faults", {"kind": "blackhole", "seconds": 2.5}).status == 200
    res = stack.post("/send?wait=0", {"phone_number": CONTACT, "message": "through the silence"})
    assert res.status == 202, res.raw
    message_id = res.json()["id"]
    done = wait_for(lambda: (m := stack.get(f"/messages/{message_id}").json())["status"] in
                    ("sent", "delivered", "read", "failed") and m, 60, "the message to leave the outbox")
    assert done["status"] != "failed", done
