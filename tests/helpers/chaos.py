"""The chaos tests' tools: a settings set with the governor out of the way, a careful client's POST /send
(retried with its Idempotency-Key until accepted), a thread that SIGKILLs a supervisord program on a schedule,
the exactly-once-in-order check at the emulated recipients, and a worker killed under a frozen gateway (a lost ack)."""

from __future__ import annotations

import os
import signal
import threading
import time

from tests.helpers.sandbox import PHONE
from tests.helpers.stack import wait_for

FAST = {  # the governor out of the way: these tests are about crashes, not pacing
    "WA_SEND_BURST": "1000", "WA_SEND_RATE_PER_MINUTE": "600000", "WA_SEND_JITTER": "0",
    "WA_SEND_RETRY_BASE": "0.2", "WA_SEND_RETRY_MAX": "2", "WA_WORKER_TIMEOUT": "5",
}


def post_until_accepted(stack, phone, text, key, *, wait="0", deadline=60.0, path="/send"):
    """POST /send as a careful client does: with an Idempotency-Key, retried until a 200/202 answer
    (a gateway that died under the request may or may not have committed it: the key makes it safe)."""
    give_up = time.monotonic() + deadline
    while True:
        try:
            res = stack.post(f"{path}?wait={wait}", {"phone_number": phone, "message": text},
                             headers={"Idempotency-Key": key}, timeout=10)
            if res.status in (200, 202):
                return res.json()
            assert res.status >= 500, (res.status, res.raw)  # 4xx would be our bug
        except OSError:
            pass  # the gateway is restarting
        assert time.monotonic() < give_up, f"{key} never accepted"
        time.sleep(0.1)


def all_messages(stack) -> list[dict]:
    return stack.all_pages("/messages?limit=200")


def inbox(stack, phone) -> list[dict]:
    return stack.emu("GET", f"/contacts/{phone}/messages").json()


class Killer(threading.Thread):
    """SIGKILLs a supervisord program whenever it is RUNNING and `every` seconds have passed."""

    def __init__(self, stack, program, every):
        super().__init__(daemon=True)
        self.stack, self.program, self.every = stack, program, every
        self.kills = 0
        self.halt = threading.Event()
        self.paused = threading.Event()  # set: no kills (a step of the scenario stops and starts it itself)
        self.last = time.monotonic()

    def pause(self):
        self.paused.set()

    def resume(self):
        """Kills again, at once if `every` seconds passed since the last kill (as if never paused)."""
        self.paused.clear()

    def run(self):
        while not self.halt.wait(0.1):
            if self.paused.is_set() or time.monotonic() - self.last < self.every:
                continue
            try:
                info = self.stack.process_info(self.program)
            except Exception:
                continue
            if info["statename"] == "RUNNING" and info["pid"] and not self.paused.is_set():
                os.kill(info["pid"], signal.SIGKILL)
                self.kills += 1
                self.last = time.monotonic()

    def stop(self):
        self.halt.set()
        self.join(5)


def kill_gateway(stack):
    pid = wait_for(lambda: (i := stack.process_info("gateway"))["statename"] == "RUNNING" and i["pid"],
                   30, "gateway RUNNING")
    os.kill(pid, signal.SIGKILL)
    return pid


def check_exactly_once_in_order(stack, accepted: dict[str, list[dict]]) -> int:
    """Every accepted message is at its contact once, in acceptance order; returns the resends seen."""
    resends = 0
    for phone, sent in accepted.items():
        got = inbox(stack, phone)
        ids = [m["id"] for m in got]
        assert len(ids) == len(set(ids)), f"{phone}: an id appears twice in the inbox"
        wanted = [m["whatsapp_id"] for m in sent]
        assert ids == wanted, f"{phone}: lost, extra or out of order"  # the contact hears from this test only
        by_id = {m["id"]: m for m in got}
        assert [by_id[w]["text"] for w in wanted] == [m["text"] for m in sent]
        resends += sum(by_id[w]["duplicate_count"] for w in wanted)
    return resends


def gateway_hand_overs(stack, wa_id: str) -> list[dict]:
    """The gateway's log line per hand-over of ``wa_id``: written after the batch is stored and the ack tried."""
    return [e for e in stack.log_events() if e.get("program") == "gateway" and e.get("event") == "whatsapp.message"
            and e.get("message_id") == wa_id]


def ack_lost(stack, wa_id: str) -> bool:
    """Whether the first hand-over of ``wa_id`` was stored and its acknowledgement failed (the worker was gone)."""
    seq = gateway_hand_overs(stack, wa_id)[0]["seq"]
    return any(e.get("program") == "gateway" and e.get("event") == "events.ack_failed" and e.get("upto", 0) >= seq
               for e in stack.log_events())


def freeze_and_kill(stack, contact: str, text: str) -> str:
    """The gateway frozen (SIGSTOP), a contact's message journaled and receipted by the worker, the worker
    SIGKILLed, the gateway thawed; returns the message's id once the gateway has handed it over once."""
    gateway = stack.process_info("gateway")["pid"]
    worker = stack.process_info("worker:worker-0")["pid"]
    os.kill(gateway, signal.SIGSTOP)
    try:
        wa_id = stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONE, "text": text}).json()["id"]
        # Journaled and receipted by the worker (the receipt follows the journal write), i.e. the
        # long poll has been answered into the frozen gateway's socket.
        wait_for(lambda: any(e.get("event") == "receipt.received" and e.get("id") == wa_id
                             for e in stack.log_events()), 20, "the worker's receipt")
        os.kill(worker, signal.SIGKILL)
    finally:
        os.kill(gateway, signal.SIGCONT)
    wait_for(lambda: gateway_hand_overs(stack, wa_id), 60, "the message handed over")
    return wa_id
