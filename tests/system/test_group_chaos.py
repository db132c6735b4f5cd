"""Issue 26's chaos acceptance, through supervisord against the emulator: group traffic both ways (our messages to a
group of two contacts, and theirs to it) while the worker is SIGKILLed every 2 s and the gateway once. None lost,
none doubled, nothing left undecryptable: each contact's phone has each of our group messages once, decrypted (a
resend after a crash carries the same id and the same stored content; a new sender key distribution reaches every
member), and each of their messages is one `message.received` event naming the group and the participant."""

from __future__ import annotations

import os
import time

import pytest

from tests.helpers.chaos import FAST, Killer, inbox, kill_gateway
from tests.helpers.sandbox import pair
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

MEMBERS = ["+15550003301", "+15550003302"]
SENT = ("sent", "delivered", "read")


def post(stack, path: str, body: dict, key: str | None = None, deadline: float = 90.0) -> dict:
    """POST as a careful client (an Idempotency-Key, retried until the gateway answers 2xx)."""
    give_up = time.monotonic() + deadline
    while True:
        try:
            res = stack.post(path, body, headers={"Idempotency-Key": key} if key else None, timeout=15)
            if res.status in (200, 201, 202):
                return res.json()
            assert res.status >= 500 or res.status == 409, (path, res.status, res.raw)  # 409: not connected yet
        except OSError:
            pass  # the gateway is restarting
        assert time.monotonic() < give_up, f"{path} {key} never accepted"
        time.sleep(0.2)


def events_of(stack, type_: str) -> list[dict]:
    out, after = [], 0
    while True:
        page = stack.get(f"/events?types={type_}&limit=200&after={after}").json()
        if not page["events"]:
            return out
        out += page["events"]
        after = page["next_after"]


def test_group_traffic_both_ways_under_worker_and_gateway_kills(make_stack):
    ours_count = int(os.environ.get("WA_CHAOS_GROUP_SENDS", "30"))
    theirs_count = int(os.environ.get("WA_CHAOS_GROUP_INBOUND", "12"))
    stack = make_stack({**FAST, "WA_KEEPALIVE_MS": "1000", "WA_GROUP_SEND_BURST": "1000",
                        "WA_GROUP_SEND_RATE_PER_MINUTE": "600000"}, sandbox=True)
    pair(stack)
    group = post(stack, "/groups", {"subject": "chaos", "participants": MEMBERS})["id"]
    killer = Killer(stack, "worker:worker-0", 2.0)
    killer.start()
    accepted: list[dict] = []
    theirs: list[tuple[str, str]] = []
    try:
        for n in range(max(ours_count, theirs_count)):
            if n == ours_count // 2:
                kill_gateway(stack)
            if n < ours_count:
                body = post(stack, "/send?wait=0", {"group_id": group, "message": f"g{n:03d}"}, f"g{n}")
                accepted.append({**body, "text": f"g{n:03d}"})
            if n < theirs_count:
                sender = MEMBERS[n % len(MEMBERS)]
                res = stack.emu("POST", f"/contacts/{sender}/messages", {"to": group, "text": f"c{n:03d}"})
                assert res.status == 200, res.raw
                theirs.append((res.json()["id"], f"c{n:03d}"))
            time.sleep(0.2)
        wait_for(lambda: killer.kills >= 3, 60, "a few worker kills")
    finally:
        killer.stop()

    def all_sent() -> bool:
        return all(stack.get(f"/messages/{m['id']}").json()["status"] in SENT for m in accepted)
    wait_for(all_sent, 180, "every group message sent")
    wanted = [m["whatsapp_id"] for m in accepted]
    for phone in MEMBERS:
        def decrypted(phone=phone) -> bool:
            got = [e for e in inbox(stack, phone) if e.get("group_id") == group and e["id"] in wanted]
            return len(got) == len(wanted) and all(e["text"] is not None and not e["error"] for e in got)
        wait_for(decrypted, 120, f"{phone} decrypts every group message")
        got = [e for e in inbox(stack, phone) if e.get("group_id") == group]
        ids = [e["id"] for e in got if e["id"] in wanted]
        assert sorted(ids) == sorted(wanted) and len(ids) == len(set(ids)), f"{phone}: lost or doubled"
        by_id = {e["id"]: e for e in got}
        assert [by_id[w]["text"] for w in wanted] == [m["text"] for m in accepted]

    their_ids = {wa: text for wa, text in theirs}
    wait_for(lambda: set(their_ids) <= {e["data"]["whatsapp_id"] for e in events_of(stack, "message.received")}, 120,
             "every contact's group message as an event")
    seen = [e["data"] for e in events_of(stack, "message.received") if e["data"]["whatsapp_id"] in their_ids]
    assert len(seen) == len(their_ids), "a contact's group message stored twice"
    for data in seen:  # decrypted (its text), in its group, from its participant
        assert (data["group_id"], data["text"]) == (group, their_ids[data["whatsapp_id"]]), data
        assert data["participant"]["phone_number"] in MEMBERS, data
