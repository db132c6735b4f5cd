"""A hundred accounts on one stack with two worker shards (issue 28): all linked and connected, each sends one
message to its own emulator contact and receives one from it (checked at both ends), and a kill -9 of one shard
brings every one of its accounts back by itself. No clock is asserted: bench/scale.py measures how fast.

One stack for the module, its accounts linked 8 at a time (tests/helpers/many_accounts.py): linking is most of
this file's time.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import many_accounts
from tests.helpers.many_accounts import contact, name, phone
from tests.helpers.stack import Stack, wait_for

pytestmark = pytest.mark.system

N = 100
NUMBERS = range(1, N + 1)


@pytest.fixture(scope="module")
def stack():
    with Stack({"WA_MAX_ACCOUNTS": str(N + 1), "WA_WORKER_SHARDS": "2"}, sandbox=True) as running:
        many_accounts.link_many(running, NUMBERS)
        many_accounts.add_contacts(running, NUMBERS)
        yield running


def each(call, numbers=NUMBERS) -> list:
    """``call(n)`` for every account number, 8 at a time, in order of ``numbers``."""
    with ThreadPoolExecutor(many_accounts.LINKERS) as pool:
        return list(pool.map(call, numbers))


def test_every_account_is_connected_and_both_shards_hold_some(stack):
    listed = many_accounts.accounts(stack)
    assert listed == {name(n): "connected" for n in NUMBERS}
    held = many_accounts.shard_accounts(stack)
    assert sorted(a for accounts in held.values() for a in accounts) == sorted(listed)
    assert all(len(accounts) >= N // 4 for accounts in held.values()), {s: len(a) for s, a in held.items()}


def test_each_account_sends_once_and_receives_once(stack):
    def send(n: int) -> str:
        res = stack.post(f"/accounts/{name(n)}/send", {"phone_number": contact(n), "message": f"out {n}"}, timeout=60)
        assert res.status in (200, 202), res.raw
        return res.json()["id"]

    def sent_id(n: int, message_id: str) -> str:
        return wait_for(lambda: (m := stack.get(f"/accounts/{name(n)}/messages/{message_id}").json())["status"]
                        in ("sent", "delivered", "read") and m["whatsapp_id"], 60, f"{name(n)}'s message sent")

    ours = each(send)
    whatsapp_ids = each(lambda n: sent_id(n, ours[n - 1]))

    def at_contact(n: int) -> None:
        got = wait_for(lambda: many_accounts.inbox(stack, contact(n)), 60, f"{contact(n)}'s inbox")
        assert [(m["id"], m["from"], m["text"]) for m in got] == [(whatsapp_ids[n - 1], phone(n), f"out {n}")]

    each(at_contact)

    def receive(n: int) -> str:
        res = stack.emu("POST", f"/contacts/{contact(n)}/messages", {"to": phone(n), "text": f"in {n}"})
        assert res.status == 200, res.raw
        return res.json()["id"]

    theirs = each(receive)

    def at_account(n: int) -> None:
        def stored() -> list[dict]:
            res = stack.get(f"/accounts/{name(n)}/messages?direction=in&limit=100")
            assert res.status == 200, res.raw
            return res.json()["messages"]
        got = wait_for(stored, 60, f"{name(n)} stored its contact's message")
        assert [(m["whatsapp_id"], m["text"]) for m in got] == [(theirs[n - 1], f"in {n}")]

    each(at_account)


def test_a_killed_shard_reconnects_every_one_of_its_accounts(stack):
    held = many_accounts.shard_accounts(stack)
    killed, spared = held["worker:worker-1"], held["worker:worker-0"]
    assert len(killed) >= N // 4 and len(spared) >= N // 4, {s: len(a) for s, a in held.items()}
    pid = stack.process_info("worker:worker-1")["pid"]
    since = time.time()
    os.kill(pid, signal.SIGKILL)

    missing = set(killed)

    def all_back() -> bool:
        missing.difference_update(many_accounts.connected_since(stack, sorted(missing), since))
        return not missing
    try:
        wait_for(all_back, 180, "every account of the killed shard connected again", interval=2)
    except AssertionError:
        pytest.fail(f"not connected again after the kill: {sorted(missing)} of {len(killed)}")
    assert stack.process_info("worker:worker-1")["pid"] != pid
    assert many_accounts.accounts(stack) == {name(n): "connected" for n in NUMBERS}
    # The other shard's accounts never went down.
    assert many_accounts.connected_since(stack, spared, since) == {}
    assert stack.process_info("worker:worker-0")["start"] < since
