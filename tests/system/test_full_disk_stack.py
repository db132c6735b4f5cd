"""Issue 20, item 6, through supervisord against the emulator: the data dir's file system fills up (a tmpfs or
an ext4 image on a loop device, mounted by the test and filled with a file until ENOSPC) while messages flow
both ways, then space comes back.

While full: POST /send (and per account) answers 507 insufficient_storage and stores nothing, account creation
too; the worker does not run read-only but stops (it exits, supervisord and the watchdog start it again, it
exits again at its start-up probe) and readiness says not ready; contacts' messages wait at WhatsApp (nothing
is acknowledged that was not stored). Once the filler is removed everything resumes by itself: the same
session (no QR), every message accepted before the disk filled and every 507'd one sent again with its key
reaches its contact once, every contact's message is stored once and readable, and both ways work at once.
"""

from __future__ import annotations

import time

import pytest

from tests.helpers.chaos import FAST, inbox
from tests.helpers.full_disk import KINDS, fill, free, mounted
from tests.helpers.sandbox import PHONE, pair
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

CONTACTS = ["+15550006201", "+15550006202"]
QUICK_WATCHDOG = {"WA_WATCHDOG_INITIAL_DELAY": "1", "WA_WATCHDOG_MAX_DELAY": "2", "WA_STORAGE_PROBE_MS": "500"}


def send(stack, phone, text, key, path="/send"):
    return stack.post(f"{path}?wait=0", {"phone_number": phone, "message": text}, headers={"Idempotency-Key": key},
                      timeout=15)


def contact_writes(stack, phone, text) -> str:
    res = stack.emu("POST", f"/contacts/{phone}/messages", {"to": PHONE, "text": text})
    assert res.status == 200, res.raw
    return res.json()["id"]


def inbound(stack) -> list[dict]:
    return stack.all_pages("/messages?direction=in&limit=200")


def worker_records(stack, events: set[str]) -> list[dict]:
    return [e for e in stack.log_events() if e.get("event") in events]


@pytest.mark.parametrize("kind", KINDS)
def test_a_full_data_dir_refuses_writes_stops_the_worker_and_everything_resumes_once(make_stack, tmp_path, kind):
    with mounted(tmp_path / "volume", 32, kind) as volume:
        stack = make_stack({**FAST, **QUICK_WATCHDOG, "WA_DATA_DIR": str(volume / "data"),
                            "WA_EMULATOR_STATE_FILE": str(tmp_path / "emulator" / "state.json"),
                            "WA_EMULATOR_ROOT_KEY_FILE": str(tmp_path / "emulator" / "root-key.json")}, sandbox=True)
        try:
            run_scenario(stack, volume)
        finally:
            stack.cleanup()  # before the unmount: nothing may hold a file there


def fill_during_a_burst(stack, volume, out: dict[str, tuple[str, str]]):
    """A burst of sends is accepted (into ``out``), and the disk fills while it goes out: returns the filler."""
    # A burst is accepted, and the disk fills while it goes out.
    for n in range(10):
        phone = CONTACTS[n % 2]
        res = send(stack, phone, f"burst {n}", f"burst-{n}")
        assert res.status in (200, 202), res.raw
        out[f"burst {n}"] = (phone, res.json()["id"])
    return fill(volume)


def check_while_full(stack, out: dict[str, tuple[str, str]], contacts_sent: dict[str, str], worker_before: int,
                     filled_at: float) -> list[int]:
    """Sends refused with 507 (or accepted, into ``out``), contacts writing on, the worker stopped, not ready;
    returns the numbers of the refused sends."""
    # Full: sends and account creation are 507 with nothing stored; the client keeps its key for later.
    refused = []
    for n in range(6):
        phone = CONTACTS[n % 2]
        res = send(stack, phone, f"while full {n}", f"full-{n}", path="/send" if n % 2 else "/accounts/default/send")
        assert res.status in (202, 507), (res.status, res.raw)  # a write may still fit now and then, never a 500
        if res.status == 507:
            assert res.json()["error"]["code"] == "insufficient_storage" and int(res.headers["Retry-After"]) > 0
            refused.append(n)
        else:
            out[f"while full {n}"] = (phone, res.json()["id"])
    assert refused, "no send was refused on a full disk"
    created = stack.post("/accounts", {"name": "support"})
    assert created.status == 507, created.raw
    for n in range(4):  # contacts keep writing: WhatsApp holds what the worker did not acknowledge
        text = f"{CONTACTS[n % 2]} while full {n}"
        contacts_sent[contact_writes(stack, CONTACTS[n % 2], text)] = text

    # The worker stops instead of running on a read-only store, and is not ready while the disk stays full.
    wait_for(lambda: worker_records(stack, {"worker.storage_unwritable", "worker.storage_write_failed"}), 15,
             "the worker stopping on the full disk")
    ready = []
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        ready.append(stack.get("/health/ready", timeout=5).status)
        time.sleep(0.3)
    assert set(ready) == {503}, ready
    info = stack.process_info("worker:worker-0")
    assert info["statename"] != "RUNNING" or info["pid"] != worker_before, info
    assert stack.health()["status"] == "degraded"
    print(f"\nfull for {time.monotonic() - filled_at:.1f}s: {len(refused)} of 6 sends refused (507), worker starts "
          f"refused: {len(worker_records(stack, {'worker.storage_unwritable'}))}")
    return refused


def resume_once_space_is_back(stack, filler, refused: list[int], out: dict[str, tuple[str, str]],
                              contacts_sent: dict[str, str]) -> float:
    """Frees the disk, sends the refused messages again with their keys: returns the seconds ready took."""
    # Space is back: everything resumes by itself, on the same session (no QR).
    free(filler)
    freed_at = time.monotonic()
    wait_for(lambda: stack.get("/health/ready", timeout=5).status == 200, 30, "ready again")
    resumed_in = time.monotonic() - freed_at
    for n in refused:  # the client sends what was refused again, with the same key
        res = send(stack, CONTACTS[n % 2], f"while full {n}", f"full-{n}")
        assert res.status in (200, 202) and "Idempotent-Replayed" not in res.headers, res.raw
        out[f"while full {n}"] = (CONTACTS[n % 2], res.json()["id"])
    for phone in CONTACTS:  # and both ways work at once
        out[f"after {phone}"] = (phone, send(stack, phone, f"after {phone}", f"after-{phone}").json()["id"])
        contacts_sent[contact_writes(stack, phone, f"{phone} after")] = f"{phone} after"
    return resumed_in


def check_everything_arrived_once(stack, out: dict[str, tuple[str, str]], contacts_sent: dict[str, str]) -> int:
    """Every message sent delivered once and readable, every contact's message stored once: returns the resends
    the contacts saw."""
    messages = wait_for(lambda: (m := stack.all_pages("/messages?limit=200")) and
                        all(x["status"] == "delivered" for x in m) and len(m) == len(out) and m, 60,
                        "every message sent delivered")
    assert {m["id"] for m in messages} == {i for _, i in out.values()}  # nothing stored twice, nothing refused
    by_id = {m["id"]: m["whatsapp_id"] for m in messages}
    resends = 0
    for phone in CONTACTS:
        got = inbox(stack, phone)
        assert len({m["id"] for m in got}) == len(got)
        wanted = {by_id[i]: text for text, (to, i) in out.items() if to == phone}
        assert {m["id"]: m["text"] for m in got} == wanted, phone  # each once, readable
        resends += sum(m["duplicate_count"] for m in got)
    received = wait_for(lambda: (r := inbound(stack)) and len(r) >= len(contacts_sent) and r, 30,
                        "every contact's message stored")
    assert sorted(m["whatsapp_id"] for m in received) == sorted(contacts_sent)  # each once
    assert {m["whatsapp_id"]: m["text"] for m in received} == contacts_sent  # and readable
    assert stack.status()["state"] == "connected"
    assert not worker_records(stack, {"http.unhandled"})
    assert not [e for e in stack.events() if e["type"] == "message.undecryptable"]
    return resends


def run_scenario(stack, volume):
    pair(stack)
    out: dict[str, tuple[str, str]] = {}  # text -> (contact, the accepted message's id), every message we sent
    contacts_sent: dict[str, str] = {}  # whatsapp id -> text, every message a contact sent
    for phone in CONTACTS:  # both ways work before: the sessions exist
        out[f"hello {phone}"] = (phone, send(stack, phone, f"hello {phone}", f"hello-{phone}").json()["id"])
        contacts_sent[contact_writes(stack, phone, f"hi from {phone}")] = f"hi from {phone}"
    wait_for(lambda: len(inbound(stack)) == 2, 20, "the first inbound messages")
    worker_before = stack.process_info("worker:worker-0")["pid"]

    filler = fill_during_a_burst(stack, volume, out)
    filled_at = time.monotonic()
    refused = check_while_full(stack, out, contacts_sent, worker_before, filled_at)
    resumed_in = resume_once_space_is_back(stack, filler, refused, out, contacts_sent)
    resends = check_everything_arrived_once(stack, out, contacts_sent)
    print(f"resumed {resumed_in:.1f}s after space returned; {len(out)} sent, {len(contacts_sent)} received, "
          f"{resends} same-id resends seen by the contacts")
