"""Worker shards (issue 10): accounts spread over supervisord's worker processes; a crash of one shard
touches only its accounts, which come back by themselves without a QR, and loses no accepted message."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.helpers.chaos import FAST, inbox, post_until_accepted
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

PHONES = {"default": "+15550008100", "sales": "+15550008200"}
CONTACT = {"default": "+15550008101", "sales": "+15550008201"}


def pair(stack, account: str) -> None:
    prefix = "" if account == "default" else f"/accounts/{account}"
    status = stack.post(f"{prefix}/connect").json()
    if status["state"] != "qr":
        status = wait_for(lambda: (s := stack.get(f"{prefix}/status").json())["state"] == "qr" and s, 20, "qr")
    assert stack.emu("POST", "/phone/scan", {"phone_number": PHONES[account], "qr": status["qr"]}).status == 200
    wait_for(lambda: stack.get(f"{prefix}/status").json()["state"] == "connected", 30, f"{account} connected")


def states_since(stack, account: str, seq: int) -> list[str]:
    events = stack.get(f"/accounts/{account}/events?after={seq}&limit=500").json()["events"]
    return [e["data"]["state"] for e in events if e["type"] == "session.status"]


def test_a_killed_shard_takes_down_only_its_accounts_and_loses_no_message(make_stack):
    stack = make_stack({**FAST, "WA_WORKER_SHARDS": "2", "WA_KEEPALIVE_MS": "1000"}, sandbox=True)
    created = stack.post("/accounts", {"name": "sales"})
    assert created.status == 201 and created.json()["shard"] == 1, created.raw  # spread: default holds shard 0
    for account in PHONES:
        pair(stack, account)
    status = stack.ctl("status").stdout
    assert "worker:worker-0" in status and "worker:worker-1" in status, status
    shards = stack.health()["shards"]
    assert [(s["name"], s["state"], s["accounts"]) for s in shards] == [
        ("worker:worker-0", "RUNNING", ["default"]), ("worker:worker-1", "RUNNING", ["sales"])]
    wait_for(lambda: "connected" in states_since(stack, "sales", 0), 10, "the log has caught up")
    mark = max(e["seq"] for a in PHONES for e in stack.get(f"/accounts/{a}/events?limit=500").json()["events"])

    accepted: dict[str, list[dict]] = {a: [] for a in PHONES}
    halt = threading.Event()

    def client(account: str) -> None:
        prefix = "" if account == "default" else f"/accounts/{account}"
        for n in range(40):
            if halt.is_set():
                return
            body = post_until_accepted(stack, CONTACT[account], f"{account}-{n:02d}", key=f"shard-{account}-{n}",
                                       path=f"{prefix}/send")
            accepted[account].append(body)
            time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(a,), daemon=True) for a in PHONES]
    for t in threads:
        t.start()
    kills = 0
    try:
        for _ in range(2):  # shard 1 dies twice in the middle of the sends
            time.sleep(2.5)
            pid = wait_for(lambda: (i := stack.process_info("worker:worker-1"))["statename"] == "RUNNING" and i["pid"],
                           30, "shard 1 RUNNING")
            os.kill(pid, signal.SIGKILL)
            kills += 1
    finally:
        for t in threads:
            t.join(120)
        halt.set()

    # sales came back by itself, without a QR; default never left "connected".
    wait_for(lambda: stack.get("/accounts/sales/status").json()["state"] == "connected", 30, "sales back")
    assert "qr" not in states_since(stack, "sales", mark)
    assert "connecting" in states_since(stack, "sales", mark)  # it did go down
    assert states_since(stack, "default", mark) == []  # no change at all: never disconnected
    assert stack.process_info("worker:worker-0")["start"] < time.time() - 10  # shard 0 never restarted

    # Every accepted message reached its contact once, from the right account, in order.
    for account, sent in accepted.items():
        prefix = "" if account == "default" else f"/accounts/{account}"
        wait_for(lambda prefix=prefix, sent=sent: all(
            stack.get(f"{prefix}/messages/{m['id']}").json()["status"] in ("delivered", "read") for m in sent),
            60, f"{account}: every message delivered")
        got = inbox(stack, CONTACT[account])
        assert [m["id"] for m in got] == [m["whatsapp_id"] for m in sent]
        assert {m["from"] for m in got} == {PHONES[account]}
    assert kills == 2 and len(accepted["sales"]) == 40 and len(accepted["default"]) == 40
