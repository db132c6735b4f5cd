"""Two gateway instances (each a whole supervisord stack: gateway and worker) on one PostgreSQL and one
emulator: accounts spread across them by lease, any instance answers any account, and an instance that
dies, stops or freezes loses its accounts to the other without a QR and without losing or doubling a
message (issue 14).

The two instances and their four accounts: tests/helpers/cluster.py (bench/failover.py uses the same).

The TTL is long (issue 28) so that the two ways of losing an instance tell apart: a killed one loses its
PostgreSQL session, and its advisory lock with it, at once, and its accounts move in a fraction of the TTL;
a frozen one keeps its session, and its accounts wait for the TTL. Both bounds are relative to the TTL.
"""

from __future__ import annotations

import base64
import hashlib
import signal
import time
from collections import Counter

import pytest

from service.store import leases
from service.store.pg import PostgresDatabase
from tests.helpers import media_samples as samples
from tests.helpers.cluster import ACCOUNTS, CONTACT, connected, devices, freeze, path, serving, start_cluster
from tests.helpers.stack import Stack, wait_for

TTL = 20.0


def inbox_texts(emu_stack: Stack) -> Counter:
    return Counter(m["text"] for m in emu_stack.emu("GET", f"/contacts/{CONTACT}/messages").json())


def send_all(via: Stack, tag: str, per_account: int = 3) -> dict[str, list[str]]:
    """POST /send?wait=0 for every account through ``via``: accepted (202) means durable in the shared store."""
    sent: dict[str, list[str]] = {}
    for name in ACCOUNTS:
        for i in range(per_account):
            text = f"{tag} {name} {i}"
            res = via.post(path(name, "/send") + "?wait=0", {"phone_number": CONTACT, "message": text},
                           headers={"Idempotency-Key": f"{tag}-{name}-{i}"})
            assert res.status in (200, 202), (name, res.status, res.raw)
            sent.setdefault(name, []).append(text)
    return sent


def wait_delivered_once(emu_stack: Stack, texts: list[str], timeout: float) -> None:
    wait_for(lambda: all(inbox_texts(emu_stack)[t] >= 1 for t in texts), timeout,
             f"{len(texts)} messages at the contact")
    counts = inbox_texts(emu_stack)
    assert all(counts[t] == 1 for t in texts), {t: counts[t] for t in texts if counts[t] != 1}


@pytest.fixture
def cluster(postgres_server, make_stack):
    return start_cluster(make_stack, postgres_server.create_database(), TTL)


def test_spread_any_instance_answers_and_a_killed_instance_fails_over_without_qr_or_loss(cluster):
    a, b = cluster["a"], cluster["b"]
    on_a, on_b = serving(a), serving(b)
    assert len(on_a) == 2 and len(on_b) == 2
    # Any instance answers any account: sends through B for A's accounts and the other way round.
    first = send_all(b, "one")
    first_b = send_all(a, "two")
    wait_delivered_once(a, [t for texts in (*first.values(), *first_b.values()) for t in texts], 40)
    health = b.get("/health").json()
    assert {i["id"] for i in health["cluster"]["instances"]} == set(cluster["ids"])

    # kill -9 of B, the whole instance (supervisord and its programs): its session ends, and with it its lock:
    # A takes B's accounts at once, not after the TTL.
    killed = time.monotonic()
    freeze(b, signal.SIGKILL)
    during = send_all(a, "during")  # accepted by A for every account while B's are between owners
    wait_for(lambda: serving(a) == set(ACCOUNTS), TTL * 3 + 10, "A serves every account")
    for name in on_b:
        wait_for(lambda name=name: connected(a, name), 40, f"{name} connected on A")
    failover = time.monotonic() - killed
    print(f"failover (kill -9 to every account connected elsewhere): {failover:.2f} s (TTL {TTL:.0f} s)")
    assert failover < TTL / 3  # far below the TTL: the leases did not have to expire
    # /health's cluster view says so at once too, not a TTL later
    b_id = cluster["ids"][1]
    assert [i["live"] for i in a.get("/health").json()["cluster"]["instances"] if i["id"] == b_id] == [False]
    wait_delivered_once(a, [t for texts in during.values() for t in texts], 40)
    # No QR was needed: every phone still has the one linked device it was paired with.
    assert devices(a) == {phone: 1 for phone in ACCOUNTS.values()}


def test_media_received_on_one_instance_is_served_by_the_other_and_sent_from_either(cluster):
    """Issue 24: the instance serving an account downloads its contact's media into the shared store, and the
    other instance serves it byte-identical; media sent through the instance that does not serve the account
    (stored there) reaches the contact byte-identical through its owner."""
    a, b = cluster["a"], cluster["b"]
    for owner, other in ((a, b), (b, a)):
        name = sorted(serving(owner))[0]
        data = samples.png(3 + len(name), 4) + name.encode() * 50
        res = a.emu("POST", f"/contacts/{CONTACT}/messages", {
            "to": ACCOUNTS[name], "media": {"kind": "image", "base64": base64.b64encode(data).decode()}})
        assert res.status == 200, res.raw
        sha = hashlib.sha256(data).hexdigest()

        def stored(name=name, sha=sha, other=other):
            listing = other.get(path(name, "/messages") + "?direction=in&limit=50").json()["messages"]
            return next((m for m in listing if (m.get("media") or {}).get("sha256") == sha
                         and m["media"]["state"] == "stored"), None)
        message = wait_for(stored, 40, f"{name}'s media stored (asked through the other instance)")
        served = other.get(message["media"]["url"])
        assert served.status == 200 and served.raw == data

        sent_data = samples.pdf() + f"% sent for {name} through the other instance\n".encode()
        res = other.post(path(name, "/send") + "?wait=0", {
            "phone_number": CONTACT, "document": {"base64": base64.b64encode(sent_data).decode(),
                                                  "filename": f"{name}.pdf"}})
        assert res.status in (200, 202), res.raw
        wait_for(lambda sent_data=sent_data: any(
            (m.get("media") or {}).get("sha256") == hashlib.sha256(sent_data).hexdigest()
            for m in a.emu("GET", f"/contacts/{CONTACT}/messages").json()), 40, f"{name}'s document at the contact")


def test_a_sigtermed_instance_hands_off_within_seconds(cluster):
    a, b = cluster["a"], cluster["b"]
    on_b = serving(b)
    started = time.monotonic()
    b.stop()  # SIGTERM: its sessions close, its leases are released at once
    wait_for(lambda: serving(a) == set(ACCOUNTS), TTL * 3, "A serves every account")
    for name in on_b:
        wait_for(lambda name=name: connected(a, name), 40, f"{name} connected on A")
    handoff = time.monotonic() - started
    print(f"handoff after SIGTERM: {handoff:.2f} s")
    assert handoff < TTL  # released at once: no wait for the leases to expire
    after = send_all(a, "after")
    wait_delivered_once(a, [t for texts in after.values() for t in texts], 40)


def test_a_frozen_former_owner_sends_nothing_and_writes_no_keys_after_it_resumes(cluster, postgres_server):
    a, b = cluster["a"], cluster["b"]
    a_id, b_id = cluster["ids"]
    on_b = serving(b)
    store = PostgresDatabase(b.env["WA_DATABASE_URL"]).open()
    try:
        before = {r["account"]: r["generation"] for r in store.call(leases.all_leases)}
        stopped = time.monotonic()
        freeze(b, signal.SIGSTOP)  # paused: its leases run out while it cannot renew them
        frozen_at = store.call(leases.now)
        wait_for(lambda: serving(a) == set(ACCOUNTS), TTL * 3 + 10, "A serves every account")
        moved = time.monotonic() - stopped
        for name in on_b:
            wait_for(lambda name=name: connected(a, name), 40, f"{name} connected on A")
        print(f"SIGSTOP to every account served elsewhere: {moved:.2f} s (TTL {TTL:.0f} s)")
        # A paused instance keeps its PostgreSQL session (its kernel answers for it), so its lock: no early
        # takeover, its leases had to expire (renewed at most one round before the stop).
        assert moved >= TTL * 0.8
        taken = {r["account"]: r for r in store.call(leases.all_leases)}
        for name in on_b:
            assert taken[name]["owner"] == a_id and taken[name]["generation"] > before[name]
        sent = send_all(a, "while-frozen", per_account=2)
        freeze(b, signal.SIGCONT)  # B resumes believing, for a moment, that it still serves on_b
        wait_for(lambda: not serving(b) & on_b, TTL * 3, "B dropped the accounts it lost")
        time.sleep(2)  # anything B would still do, it does now
        wait_delivered_once(a, [t for texts in sent.values() for t in texts], 40)
        # In the store: every key row of the lost accounts written after the freeze carries A's generation.
        rows = store.call(lambda c: [dict(r) for r in c.execute(
            "SELECT account, generation, updated_at FROM wa_auth WHERE updated_at > ?", (frozen_at,))])
        stale = [r for r in rows if r["account"] in on_b and r["generation"] <= before[r["account"]]]
        assert not stale, stale
        # At the emulator: still one device per phone, nothing arrived twice, and what was accepted while B
        # was frozen went out once: B, resumed, did not send it too (a second send of one id shows as a
        # duplicate at the contact).
        assert devices(a) == {phone: 1 for phone in ACCOUNTS.values()}
        assert all(n == 1 for n in inbox_texts(a).values()), inbox_texts(a)
        frozen_texts = {t for texts in sent.values() for t in texts}
        doubled = [m for m in a.emu("GET", f"/contacts/{CONTACT}/messages").json()
                   if m["text"] in frozen_texts and m["duplicate_count"]]
        assert not doubled, doubled
    finally:
        freeze(b, signal.SIGCONT)
        store.close()
