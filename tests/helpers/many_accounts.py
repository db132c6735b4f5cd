"""Many accounts on one sandbox stack, linked in parallel (issue 28: tests/system/test_scale_stack.py and
bench/scale.py): their names and phones, creating and linking them through the API and the emulator's QR scan,
and which of them are connected, when, and on which worker shard.

Linking is parallel because one link costs the worker about a second of CPU (a new Signal identity, 812
pre-keys uploaded on the first connection) and a test or bench that links hundreds one after the other waits
for each QR, scan and first connection in turn; a pool of 8 keeps both cores busy without swamping them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from tests.helpers.stack import Stack, wait_for

LINKERS = 8


def name(n: int) -> str:
    return f"s{n:04d}"


def phone(n: int) -> str:
    """The emulated phone that links account ``n``."""
    return f"+1555{7000000 + n}"


def contact(n: int) -> str:
    """The emulator contact that account ``n`` talks to (its own, so that every inbox tells one account's story)."""
    return f"+1555{8000000 + n}"


def state(stack: Stack, account: str) -> dict:
    res = stack.get(f"/accounts/{account}/status", timeout=30)
    assert res.status == 200, res.raw
    return res.json()


def link_one(stack: Stack, n: int, timeout: float = 120) -> None:
    """Create account ``n`` (unless it exists), show its QR, scan it with its phone, wait until connected."""
    account = name(n)
    res = stack.post("/accounts", {"name": account}, timeout=60)
    assert res.status in (201, 409), res.raw
    res = stack.post(f"/accounts/{account}/connect", timeout=60)
    assert res.status == 200, res.raw
    status = res.json()
    if status["state"] != "qr":
        status = wait_for(lambda: (s := state(stack, account))["state"] == "qr" and s, timeout, f"{account}'s QR")
    res = stack.emu("POST", "/phone/scan", {"phone_number": phone(n), "qr": status["qr"]})
    assert res.status == 200, res.raw
    wait_for(lambda: state(stack, account)["state"] == "connected", timeout, f"{account} connected", interval=0.5)


def link_many(stack: Stack, numbers: Iterable[int], linkers: int = LINKERS, timeout: float = 120) -> float:
    """Link every account of ``numbers`` (``linkers`` at a time); the seconds it took. Raises the first failure."""
    started = time.monotonic()
    with ThreadPoolExecutor(linkers) as pool:
        for done in [pool.submit(link_one, stack, n, timeout) for n in numbers]:
            done.result()
    return time.monotonic() - started


def add_contacts(stack: Stack, numbers: Iterable[int]) -> None:
    """Each account's contact exists at the emulator (on WhatsApp), so that sends to it and from it work at once."""
    for n in numbers:
        res = stack.emu("POST", "/contacts", {"phone_number": contact(n)})
        assert res.status == 200, res.raw


def accounts(stack: Stack) -> dict[str, str]:
    """Every account but ``default`` (which these stacks never link) -> its state."""
    res = stack.get("/accounts", timeout=30)
    assert res.status == 200, res.raw
    return {a["name"]: a["state"] for a in res.json()["accounts"] if a["name"] != "default"}


def shard_accounts(stack: Stack) -> dict[str, list[str]]:
    """supervisord's name of each worker shard (``worker:worker-1``) -> the accounts it holds (``/health``)."""
    return {s["name"]: [a for a in s["accounts"] if a != "default"] for s in stack.health()["shards"]}


def epoch(timestamp: str) -> float:
    """An event's ``timestamp`` (ISO 8601 with milliseconds, ``Z``) as seconds since the epoch."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def connected_at(stack: Stack, account: str, since: float) -> float | None:
    """When the gateway recorded ``account``'s first ``session.status`` ``connected`` event at or after ``since``
    (epoch seconds, from its event log), or None."""
    after = 0
    while True:
        res = stack.get(f"/accounts/{account}/events?after={after}&limit=500&types=session.status", timeout=30)
        assert res.status == 200, res.raw
        page = res.json()["events"]
        for event in page:
            if event["data"].get("state") == "connected" and (at := epoch(event["timestamp"])) >= since:
                return at
        if len(page) < 500:
            return None
        after = page[-1]["seq"]


def connected_since(stack: Stack, names: Iterable[str], since: float) -> dict[str, float]:
    """``connected_at`` of each account of ``names`` that has one (read ``LINKERS`` accounts at a time)."""
    names = list(names)
    with ThreadPoolExecutor(LINKERS) as pool:
        found = dict(zip(names, pool.map(lambda a: connected_at(stack, a, since), names), strict=True))
    return {a: at for a, at in found.items() if at is not None}


def inbox(stack: Stack, phone_number: str) -> list[dict]:
    """What the emulator contact ``phone_number`` received: ``[{"id", "from", "text", ...}]``."""
    res = stack.emu("GET", f"/contacts/{phone_number}/messages")
    assert res.status == 200, res.raw
    return res.json()
