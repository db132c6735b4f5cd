"""One lifecycle at a time: connect, disconnect, send and pairing fired concurrently, in random order, never
give a 500 and never leave the session half-way.

After every round the stack must be in one of two states:
- linked: a registered session on disk, exactly one device at the emulator, and a restarted worker logs back
  in without showing a QR;
- unlinked: no registered session on disk and no device left at the emulator.
"""

from __future__ import annotations

import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.session_store import is_registered
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

PHONE = "+15550001111"
CONTACT = "+15550002222"
SEED = int(os.environ.get("WA_TEST_SEED", random.randrange(1 << 30)))
SETTLED = {"connected", "qr", "logged_out", "stopped", "failed"}


@pytest.fixture
def sandbox(make_stack):
    return make_stack({"WA_CONNECT_QR_WAIT": "2"}, sandbox=True)


def devices(stack) -> list[dict]:
    return [d for a in stack.emu("GET", "/").json()["accounts"] if a["phone_number"] == PHONE
            for d in a["devices"]]


def scan_when_shown(stack, rng: random.Random) -> int:
    """The emulator's phone scans whatever QR the gateway shows (if one shows up soon)."""
    time.sleep(rng.uniform(0, 0.8))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        qr = stack.get("/status").json().get("qr")
        if qr:
            return stack.emu("POST", "/phone/scan", {"phone_number": PHONE, "qr": qr}).status
        time.sleep(0.05)
    return 0


def fire(stack, ops: list[str], rng: random.Random) -> list[tuple[str, int, bytes]]:
    delays = [rng.uniform(0, 0.4) for _ in ops]

    def one(op: str, delay: float) -> tuple[str, int, bytes]:
        time.sleep(delay)
        if op == "scan":
            return op, scan_when_shown(stack, random.Random(delay)), b""
        if op == "send":
            res = stack.post("/send", {"phone_number": CONTACT, "message": "lifecycle race"})
        else:
            res = stack.post(f"/{op}")
        return op, res.status, res.raw

    with ThreadPoolExecutor(len(ops)) as pool:
        return list(pool.map(one, ops, delays))


def settle(stack) -> dict:
    """Wait until the session stops moving (no connect, no 515 restart, no reconnect under way)."""
    def stable():
        first = stack.status()
        if first["state"] not in SETTLED or first["reconnect"]["scheduled"]:
            return None
        time.sleep(0.3)
        second = stack.status()
        return second if second["state"] == first["state"] else None
    return wait_for(stable, 30, "the session to settle")


def pair(stack) -> None:
    status = stack.post("/connect").json()
    if status["state"] == "connected":
        return
    if status["state"] != "qr":
        status = stack.wait_state("qr", 20)
    res = stack.emu("POST", "/phone/scan", {"phone_number": PHONE, "qr": status["qr"]})
    assert res.status == 200, res.raw
    stack.wait_state("connected", 30)


def restart_worker(stack) -> None:
    old = stack.health()["worker"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: stack.health()["worker"]["pid"] not in (None, old), 30, "a new worker")


def check_invariant(stack, round_no: int) -> str:
    status = settle(stack)
    assert status["state"] != "failed", (f"seed {SEED}", round_no, status)
    session_dir = stack.data_dir / "session"
    linked = is_registered(session_dir)
    found = devices(stack)
    if linked:
        assert len(found) == 1, (f"seed {SEED}", round_no, status, found)
        assert status["state"] == "connected", (f"seed {SEED}", round_no, status)
        return "linked"
    assert found == [], (f"seed {SEED}", round_no, status, found)
    assert status["state"] != "connected", (f"seed {SEED}", round_no, status)
    return "unlinked"


def test_concurrent_connects_disconnects_sends_and_scans_keep_the_invariant(sandbox):
    stack = sandbox
    rng = random.Random(SEED)
    started = time.monotonic()
    outcomes = []
    # (pair first?, scans among the 20 requests, share of disconnects): some rounds end linked, some not
    rounds = [(False, 1, 0.3), (True, 0, 0.15), (False, 2, 0.1), (True, 1, 0.05), (False, 1, 0.0), (True, 0, 0.3)]
    for round_no, (pair_first, scans, p_disconnect) in enumerate(rounds):
        if pair_first:
            pair(stack)
        ops = ["scan"] * scans + [
            "disconnect" if rng.random() < p_disconnect else rng.choice(["connect", "send"]) for _ in range(20 - scans)
        ]
        rng.shuffle(ops)
        answers = fire(stack, ops, rng)
        failures = [(op, status, raw[:300]) for op, status, raw in answers if op != "scan" and status >= 500]
        assert not failures, f"seed {SEED} round {round_no}: {failures}"
        outcomes.append(check_invariant(stack, round_no))
        if outcomes[-1] == "linked":
            # The linked session survives a restart: it logs in again, with no QR and the same device.
            mark = stack.events()[-1]["seq"]
            restart_worker(stack)
            stack.wait_state("connected", 30)
            assert not [e for e in stack.events(mark) if e["type"] == "session.status" and e["state"] == "qr"]
            assert len(devices(stack)) == 1
    # An unlinked end state also survives a restart: nothing comes back to life.
    stack.post("/disconnect")
    restart_worker(stack)
    assert stack.wait_state("stopped", 30)["phone_number"] is None
    assert devices(stack) == []
    assert not is_registered(stack.data_dir / "session")
    print(f"seed {SEED}: {outcomes} in {time.monotonic() - started:.1f} s")


def test_disconnect_while_reconnecting_unlinks_over_a_short_connection(make_stack):
    """Registered but not connected (a reconnect is scheduled): the disconnect still unlinks at the server.
    On the way, two answers a user meets: "not on WhatsApp" is only cached briefly, and a send while
    reconnecting says so."""
    stack = make_stack({"WA_RECONNECT_BASE_MS": "4000", "WA_RECONNECT_MAX_MS": "8000",
                        "WA_NOT_ON_WHATSAPP_TTL_MS": "1500"}, sandbox=True)
    pair(stack)
    assert len(devices(stack)) == 1

    # A number that joins WhatsApp is reachable once the short negative cache has expired.
    newcomer = "+15550009999"
    assert stack.emu("POST", "/contacts", {"phone_number": newcomer, "on_whatsapp": False}).status == 200
    res = stack.post("/send", {"phone_number": newcomer, "message": "hello?"})
    assert res.status == 422 and res.json()["error"]["code"] == "not_on_whatsapp"
    assert stack.emu("POST", "/contacts", {"phone_number": newcomer, "on_whatsapp": True}).status == 200
    wait_for(lambda: stack.post("/send", {"phone_number": newcomer, "message": "hello!"}).status == 200,
             6, "the not-on-WhatsApp answer to expire")
    assert stack.emu("POST", "/faults", {"kind": "disconnect"}).status == 200
    waiting = wait_for(lambda: (s := stack.status())["reconnect"]["scheduled"] and s, 15, "a scheduled reconnect")
    assert waiting["state"] == "connecting"

    # While it waits, a send is queued (the outbox), and the message says why it waits.
    res = stack.post("/send?wait=0", {"phone_number": CONTACT, "message": "while reconnecting"})
    assert res.status == 202, res.raw
    message_id = res.json()["id"]
    wait_for(lambda: stack.get(f"/messages/{message_id}").json()["wait_reason"] == "not_connected"
             or stack.status()["state"] == "connected", 10, "the queued message to say it waits for WhatsApp")

    res = stack.post("/disconnect")
    assert res.status == 200, res.raw
    assert res.json()["unlinked"] is True
    assert devices(stack) == []
    assert not is_registered(stack.data_dir / "session")
    assert stack.status()["reconnect"]["scheduled"] is False
