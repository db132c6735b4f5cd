"""Retry receipts through the whole sandbox stack: a contact's device that cannot decrypt a message asks
for it again, and the worker answers through Baileys' getMessage from its durable store of sent
messages, even when the worker was SIGKILLed between the send and the retry receipt.

Messages go in through the worker's POST /send with an id, as the gateway's outbox sends them."""

import json
import os
import signal

import pytest

from tests.helpers.sandbox import PHONE, pair
from tests.helpers.stack import _UnixHTTPConnection, wait_for

pytestmark = pytest.mark.system


def worker_send(stack, phone: str, text: str, message_id: str) -> dict:
    conn = _UnixHTTPConnection(str(stack.run_dir / "worker-0.sock"))
    try:
        body = json.dumps({"phone_number": phone, "text": text, "id": message_id})
        conn.request("POST", "/send", body=body, headers={"content-type": "application/json"})
        res = conn.getresponse()
        answer = json.loads(res.read())
        assert res.status == 200, answer
        return answer
    finally:
        conn.close()


def decrypted(stack, phone: str, message_id: str, timeout: float = 20) -> dict:
    return wait_for(
        lambda: next((m for m in stack.emu("GET", f"/contacts/{phone}/messages").json()
                      if m["id"] == message_id and m["text"] is not None), None),
        timeout, f"{message_id} decrypted at {phone}",
    )


def retries_sent(stack, phone: str) -> int:
    contact = next(c for c in stack.emu("GET", "/").json()["contacts"] if c["phone_number"] == phone)
    return contact["retry_receipts_sent"]


@pytest.fixture
def sandbox(make_stack):
    stack = make_stack(sandbox=True)
    pair(stack)
    return stack


def test_retry_receipt_gets_the_message_resent_and_decrypted(sandbox):
    stack = sandbox
    contact = "+15550007771"
    res = stack.emu("POST", "/contacts", {"phone_number": contact, "fail_decrypt_once": True})
    assert res.status == 200 and res.json()["fail_decrypt_once"] is True, res.raw
    text = "retry body 7771 🔁"
    answer = worker_send(stack, contact, text, "RETRYSYS0000001")
    assert answer["id"] == "RETRYSYS0000001"

    message = decrypted(stack, contact, "RETRYSYS0000001")
    assert message["text"] == text
    assert message["retries"] == 1
    assert message["duplicate_count"] == 0
    assert retries_sent(stack, contact) == 1
    worker_status(stack, "RETRYSYS0000001", "delivered")
    assert text not in stack.logs()


def worker_status(stack, wa_id: str, status: str) -> None:
    """The worker reported the status (its log): a message sent straight through the worker, with
    an id of the test's choosing, is not in the gateway's outbox, so no public event names it."""
    wait_for(lambda: any(e.get("event") == "message.status" and e.get("program") == "worker"
                         and e.get("message_id") == wa_id and e.get("status") == status
                         for e in stack.log_events()), 15, f"{status} for {wa_id}")


def test_retry_receipt_after_a_worker_kill_is_answered_from_the_durable_store(sandbox):
    stack = sandbox
    contact = "+15550007772"
    # The retry receipt waits at the server for the device's next login, so the worker that sent the
    # message never sees it: only its successor, whose Baileys has no memory of the message.
    res = stack.emu("POST", "/contacts", {"phone_number": contact, "fail_decrypt_once": True,
                                          "retry_receipt": "next_login"})
    assert res.status == 200, res.raw
    text = "retry body 7772 after kill -9"
    worker_send(stack, contact, text, "RETRYSYS0000002")
    wait_for(lambda: retries_sent(stack, contact) == 1, 15, "the contact's retry receipt")
    assert stack.emu("GET", f"/contacts/{contact}/messages").json() == []

    old = stack.health()["worker"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: stack.health()["worker"]["pid"] not in (None, old), 30, "a new worker")

    message = decrypted(stack, contact, "RETRYSYS0000002", 30)
    assert message["text"] == text
    assert message["retries"] == 1
    assert message["duplicate_count"] == 0
    worker_status(stack, "RETRYSYS0000002", "delivered")
    # The log line passes through supervisord, maybe after the receipt reached the API: wait for it.
    wait_for(lambda: any(e.get("event") == "message.retry_resent" and e.get("message_id") == "RETRYSYS0000002"
                         for e in stack.log_events()), 15, "the worker's message.retry_resent line")
    assert text not in stack.logs()


def test_a_message_no_copy_of_which_decrypts_is_a_message_undecryptable_event(make_stack):
    """Never silent: a contact's message whose every copy (the retry receipts' resends included) fails to
    decrypt ends as one durable ``message.undecryptable`` event in the log, and the next one is read."""
    stack = make_stack({"WA_UNDECRYPTABLE_AFTER_MS": "1500"}, sandbox=True)
    pair(stack)
    contact = "+15550007773"
    first = stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONE, "text": "first"}).json()["id"]
    wait_for(lambda: any(e["type"] == "message.received" and e["whatsapp_id"] == first
                         for e in stack.events()), 20, "the first message")
    assert stack.emu("POST", "/faults", {"kind": "garble", "phone_number": contact, "messages": 1}).status == 200
    bad = stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONE, "text": "garbled body"}).json()["id"]
    event = wait_for(lambda: next((e for e in stack.events() if e["type"] == "message.undecryptable"), None), 40,
                     "message.undecryptable")
    assert event["whatsapp_id"] == bad
    assert event["phone_number"] == contact
    assert event["attempts"] >= 2 and event["error"]
    after = stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONE, "text": "after"}).json()["id"]
    wait_for(lambda: any(e["type"] == "message.received" and e["whatsapp_id"] == after
                         for e in stack.events()), 20, "the next message")
    assert not any(e["type"] == "message.received" and e["whatsapp_id"] == bad for e in stack.events())
    assert len([e for e in stack.events() if e["type"] == "message.undecryptable"]) == 1
    assert "garbled body" not in stack.logs()
