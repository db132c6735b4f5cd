"""Issue 9's acceptance for the way in, through supervisord against the emulator: whatever crashes,
every message a contact sends reaches the webhook receiver (verified with the ``standardwebhooks``
reference package, as a receiver would), none lost, each with its phone number, repeats only with
the same ``webhook-id``, per contact in the order of the event log; the store holds each message once.

The contacts talk to the emulator, which is never killed: a message for a device that is down is
queued there (``queued_for``) and redelivered at its next login marked offline (Baileys' ``append``),
and one that reached a worker that died before its receipt is sent again (see the emulator README,
"Delivery guarantee"). The way out is tests/system/test_outbox_chaos.py, whose ``Killer`` (tests/helpers/chaos.py)
is reused here.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from service.webhooks import secret as webhook_secret
from tests.helpers.chaos import Killer, ack_lost, freeze_and_kill, gateway_hand_overs, kill_gateway
from tests.helpers.sandbox import PHONE, pair
from tests.helpers.stack import wait_for
from tests.helpers.webhook_receiver import Receiver

pytestmark = pytest.mark.system

CONTACTS = [f"+1555000710{n}" for n in range(1, 6)]
LID_CONTACTS = {CONTACTS[1], CONTACTS[3]}  # these write by LID (from=<lid>@lid, sender_pn=<phone>)
WEBHOOKS = {  # quick retries, and never dead-lettered while the receiver answers 500
    "WA_WEBHOOK_RETRY_BASE": "0.2", "WA_WEBHOOK_RETRY_MAX": "1", "WA_WEBHOOK_MAX_ATTEMPTS": "1000",
}
FAILING_WINDOW = 10.0  # the receiver answers 500 this long from the start of the burst
WORKER_STOP = 10.0  # `supervisorctl stop worker` this long, once, during the burst


class Contacts:
    """Five client threads, one per contact, each sending its messages at a steady pace through the
    emulator's control API; ``sent[phone]`` is the WhatsApp ids in send order."""

    def __init__(self, stack, per_contact: int, pace: float):
        self.stack, self.per_contact, self.pace = stack, per_contact, pace
        self.sent: dict[str, list[str]] = {p: [] for p in CONTACTS}
        self.texts: dict[str, str] = {}
        self.queued = 0  # answered with queued_for: the device was down
        self.halt = threading.Event()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(len(CONTACTS), thread_name_prefix="contact")
        self._futures = []

    def start(self) -> Contacts:
        started = time.monotonic()
        self._futures = [self._pool.submit(self._client, p, started) for p in CONTACTS]
        return self

    def _client(self, phone: str, started: float) -> None:
        for n in range(self.per_contact):
            if self.halt.wait(max(0.0, started + n * self.pace - time.monotonic())):
                return
            text = f"{phone[-4:]} says {n:03d}"
            res = self.stack.emu("POST", f"/contacts/{phone}/messages", {"to": PHONE, "text": text})
            assert res.status == 200, res.raw
            body = res.json()
            with self._lock:
                self.sent[phone].append(body["id"])
                self.texts[body["id"]] = text
                self.queued += bool(body.get("queued_for"))

    def count(self) -> int:
        with self._lock:
            return sum(map(len, self.sent.values()))

    def wait_count(self, n: float) -> None:
        wait_for(lambda: self.count() >= n or any(f.done() for f in self._futures), 120, f"{n} messages sent")
        for f in self._futures:  # a client that failed: fail now
            if f.done():
                f.result()

    def finish(self, timeout: float = 120) -> None:
        try:
            for f in self._futures:
                f.result(timeout)
        finally:
            self.halt.set()
            self._pool.shutdown(wait=True, cancel_futures=True)

    def ids(self) -> set[str]:
        return {i for ids in self.sent.values() for i in ids}


def received_records(receiver: Receiver) -> list:
    return [r for r in receiver.snapshot() if r.event is not None and r.event["type"] == "message.received"]


def inbound_listing(stack) -> list[dict]:
    return stack.all_pages("/messages?direction=in&limit=200")


def where_are(stack, receiver: Receiver, ids: set[str]) -> str:
    """For a failure message: how far the missing messages got."""
    try:
        logged = {e.get("whatsapp_id") for e in stack.events() if e["type"] == "message.received"}
        stored = {m["whatsapp_id"] for m in inbound_listing(stack)}
    except Exception as exc:  # the gateway may be the thing that is broken
        return f"(gateway unreadable: {exc!r})"
    seen = {r.event["data"]["whatsapp_id"] for r in received_records(receiver)}
    missing = sorted(ids - {r.event["data"]["whatsapp_id"] for r in received_records(receiver)
                            if r.status is not None and 200 <= r.status < 300})
    emulator = stack.emu("GET", "/").json()["accounts"]
    kept = keep_log(stack)
    lines = [line for line in stack.logs().splitlines() if any(i in line for i in missing[:3])]
    return (f"whole log kept in {kept}; lines naming the first missing ids:\n" + "\n".join(lines[:40]) + "\n"
            f"{len(missing)} not delivered to the receiver: {missing[:10]}; of those in GET /events: "
            f"{len(set(missing) & logged)}, in GET /messages?direction=in: {len(set(missing) & stored)}, "
            f"attempted at the receiver: {len(set(missing) & seen)}; emulator devices: "
            f"{[d for a in emulator for d in a['devices']]}")


def keep_log(stack) -> Path:
    """The stack's dir goes with the fixture; on a failure its log stays for a look."""
    kept = Path(tempfile.mkstemp(prefix="inbound-chaos-", suffix=".log")[1])
    kept.write_text(stack.logs())
    return kept


def order_table(stack, receiver: Receiver, contacts: Contacts) -> str:
    """For a failure message: per contact whose order differs, each message's send index, event-log
    seq, offline mark and first arrival index at the receiver."""
    seq = {e.get("whatsapp_id"): e["seq"] for e in stack.events() if e["type"] == "message.received"}
    arrived: dict[str, int] = {}
    offline: dict[str, bool] = {}
    for r in received_records(receiver):
        arrived.setdefault(r.event["data"]["whatsapp_id"], r.index)
        offline[r.event["data"]["whatsapp_id"]] = r.event["data"]["offline"]
    out = [f"whole log kept in {keep_log(stack)}"]
    for phone, sent in contacts.sent.items():
        by_arrival = sorted(sent, key=lambda i: arrived.get(i, 10**9))
        by_seq = sorted(sent, key=lambda i: seq.get(i, 10**9))
        if by_arrival != sent or by_seq != sent:
            out.append(f"{phone}: (send index, id, log seq, offline, receiver index) in send order:")
            out += [f"  {n} {i} {seq.get(i)} {offline.get(i)} {arrived.get(i)}" for n, i in enumerate(sent)]
    return "\n".join(out)


def run_inbound_chaos(make_stack, *, per_contact: int, pace: float, gateway_kills: tuple[float, ...] = ()):
    """The burst: contacts send while the worker is SIGKILLed every ~2 s and stopped once for 10 s,
    the gateway is SIGKILLed at the given fractions of the burst, and the receiver answers 500 for the
    first 10 s; then everything must arrive. Returns what the checks need."""
    secret = webhook_secret.generate()
    window = {"ok_after": math.inf}  # 500 until FAILING_WINDOW after the burst starts
    receiver = Receiver(secret, lambda r: 500 if time.monotonic() < window["ok_after"] else 200).start()
    killer = None
    contacts = None
    try:
        stack = make_stack({**WEBHOOKS, "WA_WEBHOOK_URL": receiver.url, "WA_WEBHOOK_SECRET": secret}, sandbox=True)
        pair(stack)
        lids = {}
        for phone in CONTACTS:
            res = stack.emu("POST", "/contacts", {"phone_number": phone,
                                                  "addressing": "lid" if phone in LID_CONTACTS else "pn"})
            assert res.status == 200, res.raw
            lids[phone] = res.json()["lid"].split("@")[0]  # the emulator answers <lid>@lid
        total = per_contact * len(CONTACTS)
        started = time.monotonic()
        window["ok_after"] = started + FAILING_WINDOW
        killer = Killer(stack, "worker:worker-0", 2.0)
        killer.start()
        contacts = Contacts(stack, per_contact, pace).start()

        # The script of the burst, in order: each step waits for its share of the messages sent.
        steps = [(0.25, "stop_worker")] + [(f, "kill_gateway") for f in gateway_kills]
        done_kills = 0
        for fraction, step in sorted(steps):
            contacts.wait_count(total * fraction)
            if step == "kill_gateway":
                kill_gateway(stack)
                done_kills += 1
                continue
            operator_stop_and_start(stack, killer, contacts)
        contacts.finish()
        killer.stop()
        sent_for = time.monotonic() - started
        ids = contacts.ids()
        assert len(ids) == total

        def all_delivered():
            got = {r.event["data"]["whatsapp_id"] for r in received_records(receiver)
                   if r.status is not None and 200 <= r.status < 300}
            return got >= ids
        try:
            wait_for(all_delivered, 90, "every message delivered to the receiver", interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{where_are(stack, receiver, ids)}") from None
        # Late repeats (an attempt whose answer was lost to a gateway kill) come within a retry or two.
        wait_for(lambda: stack.get("/webhooks/deliveries?status=pending").json()["deliveries"] == [], 30,
                 "no delivery pending")
        elapsed = time.monotonic() - started
        records = receiver.snapshot()
        print(f"\ninbound chaos: {total} messages ({contacts.queued} queued at the emulator for a device that "
              f"was down), {killer.kills} worker SIGKILLs, 1 worker stop of {WORKER_STOP:.0f}s, {done_kills} "
              f"gateway SIGKILLs; {len(records)} webhook requests ({sum(r.status == 500 for r in records)} "
              f"answered 500); sent in {sent_for:.1f}s, all delivered after {elapsed:.1f}s")
        try:
            check(stack, receiver, contacts, lids, total)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{order_table(stack, receiver, contacts)}") from None
        assert killer.kills >= 3 and done_kills == len(gateway_kills)
        assert contacts.queued > 0  # some were written while the device was down: the offline path ran
    finally:
        if contacts is not None:
            contacts.halt.set()
            contacts._pool.shutdown(wait=True, cancel_futures=True)
        if killer is not None:
            killer.stop()
        receiver.stop()


def check(stack, receiver: Receiver, contacts: Contacts, lids: dict[str, str], total: int) -> None:
    records = receiver.snapshot()
    bad = [r.error for r in records if r.event is None]
    assert not bad, f"{len(bad)} requests failed signature verification: {bad[:3]}"
    assert any(r.status == 500 for r in records)  # the failing window did bite
    owner = {i: p for p, ids in contacts.sent.items() for i in ids}
    ids = set(owner)

    got = received_records(receiver)
    assert {r.event["data"]["whatsapp_id"] for r in got} == ids  # nothing lost, nothing made up
    hook_ids: dict[str, set[str]] = defaultdict(set)
    for r in got:
        data = r.event["data"]
        wa_id = data["whatsapp_id"]
        hook_ids[wa_id].add(r.id)
        assert r.event["id"] == r.id
        phone = owner[wa_id]
        assert data["phone_number"] == phone, (wa_id, data)
        assert data["text"] == contacts.texts[wa_id]
        if phone in LID_CONTACTS:
            assert data["lid"] == f"{lids[phone]}@lid", (wa_id, data)
    repeated = {w: h for w, h in hook_ids.items() if len(h) != 1}
    assert not repeated, f"a message under more than one webhook-id: {list(repeated.items())[:3]}"
    delivered = Counter(r.event["data"]["whatsapp_id"] for r in got if 200 <= (r.status or 0) < 300)
    assert set(delivered) == ids

    listed = inbound_listing(stack)
    listed_ids = Counter(m["whatsapp_id"] for m in listed)
    twice = {i: n for i, n in listed_ids.items() if n > 1}
    assert not twice, f"GET /messages?direction=in lists {len(twice)} messages more than once: {list(twice)[:5]}"
    assert set(listed_ids) == ids and len(listed) == total
    for m in listed:
        assert m["phone_number"] == owner[m["whatsapp_id"]] and m["direction"] == "in"

    log = [e for e in stack.events() if e["type"] == "message.received"]
    logged = Counter(e["whatsapp_id"] for e in log)
    assert logged == Counter(ids), f"GET /events: {sum(logged.values())} message.received for {total} messages"
    offline = sum(m["offline"] for m in listed)
    print(f"\n  repeats at the receiver: {sum(len(receiver.by_id(r.id)) > 1 for r in got if r.status == 200)} "
          f"messages attempted more than once; offline-marked: {offline}")
    assert offline > 0  # the worker was down (stopped, killed) while contacts wrote: those came as offline

    # Per contact, the receiver first sees each message in the order of the event log (webhooks keep a
    # contact's order). That is the order the worker received them: after a reconnect a live message can
    # overtake the offline backlog (Baileys works it off in a queue), so it is not always the send order;
    # the sender's `timestamp` tells that order.
    seq_of = {e["whatsapp_id"]: e["seq"] for e in log}
    first: dict[str, list[str]] = defaultdict(list)
    for r in got:  # arrival order
        wa_id = r.event["data"]["whatsapp_id"]
        if wa_id not in first[owner[wa_id]]:
            first[owner[wa_id]].append(wa_id)
    for phone in contacts.sent:
        assert first[phone] == sorted(first[phone], key=seq_of.__getitem__), f"{phone}: arrivals out of log order"


def test_inbound_200_messages_survive_worker_kills_a_worker_stop_and_a_failing_receiver(make_stack):
    run_inbound_chaos(make_stack, per_contact=40, pace=0.6)


def operator_stop_and_start(stack, killer, contacts) -> None:
    """The operator stops the worker for a while and starts it again. The killer holds off meanwhile: a kill
    as the worker reaches RUNNING makes supervisorctl's start report a spawn error, which is the killer's
    doing, not the worker's; it resumes once the start is through (and may kill at once)."""
    killer.pause()
    stopped = stack.ctl("stop", "worker:worker-0")
    assert "worker:worker-0: stopped" in stopped.stdout, (stopped.stdout, stopped.stderr)
    # Down for a while (the scenario, not a wait for a condition): contacts keep writing.
    assert not contacts.halt.wait(WORKER_STOP)
    restarted = stack.ctl("start", "worker:worker-0")
    assert "worker:worker-0: started" in restarted.stdout, (restarted.stdout, restarted.stderr)
    killer.resume()


def test_inbound_messages_survive_the_same_run_with_the_gateway_killed_twice(make_stack):
    run_inbound_chaos(make_stack, per_contact=28, pace=1.0, gateway_kills=(0.15, 0.8))


def test_a_dead_lettered_delivery_is_redriven_through_the_api_and_arrives(make_stack):
    secret = webhook_secret.generate()
    contact = CONTACTS[0]

    def script(r):  # the first attempt of the first message is rejected: 400 is not retried
        data = r.event["data"] if r.event else {}
        return 400 if data.get("text") == "reject me" and r.n == 1 else 200
    receiver = Receiver(secret, script).start()
    try:
        stack = make_stack({**WEBHOOKS, "WA_WEBHOOK_URL": receiver.url, "WA_WEBHOOK_SECRET": secret}, sandbox=True)
        pair(stack)
        res = stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONE, "text": "reject me"})
        assert res.status == 200, res.raw
        wa_id = res.json()["id"]
        [dead] = wait_for(lambda: stack.get("/webhooks/deliveries?status=failed").json()["deliveries"], 30,
                          "the delivery dead-lettered")
        assert dead["last_error"] == "rejected: HTTP 400" and dead["attempts"] == 1
        [rejected] = received_records(receiver)
        assert rejected.status == 400 and rejected.id == dead["event_id"]
        assert rejected.event["data"]["whatsapp_id"] == wa_id

        # The contact's next message is not held back by the dead letter.
        res = stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONE, "text": "after"})
        after = res.json()["id"]
        wait_for(lambda: [r for r in received_records(receiver) if r.status == 200
                          and r.event["data"]["whatsapp_id"] == after], 30, "the next message delivered")
        # The dead letter is durable: still there after a gateway SIGKILL, and never retried by itself.
        kill_gateway(stack)
        wait_for(lambda: stack.get("/health/live").status == 200, 30, "the gateway back")
        assert stack.get(f"/webhooks/deliveries/{dead['id']}").json()["status"] == "failed"

        res = stack.post(f"/webhooks/deliveries/{dead['id']}/retry")
        assert res.status == 200 and res.json()["status"] == "pending", res.raw
        wait_for(lambda: stack.get(f"/webhooks/deliveries/{dead['id']}").json()["status"] == "delivered", 30,
                 "the redriven delivery delivered")
        attempts = receiver.by_id(dead["event_id"])
        assert [r.status for r in attempts] == [400, 200]  # the same webhook-id, signed afresh
        assert all(r.event is not None for r in receiver.snapshot())
        assert attempts[1].event["data"]["whatsapp_id"] == wa_id
        assert stack.get("/webhooks/deliveries?status=failed").json()["deliveries"] == []
    finally:
        receiver.stop()


def test_a_hand_over_repeated_after_a_lost_ack_is_stored_once(make_stack):
    """The gateway stores a batch whose acknowledgement cannot reach the worker (the worker died
    meanwhile): the next worker boot hands the same events over again, and the store keeps one.
    The gateway is frozen (SIGSTOP) with its long poll open, the worker answers it into the socket
    buffer and is SIGKILLed, then the gateway thaws. The poll is open once the gateway has logged the
    previous hand-over (after its ack; the next poll follows at once). That the message is stored is not
    enough: the ack (a round trip and an fsync at the worker) comes after the commit, and a gateway frozen
    before it reads the message from the next boot only, once. A round whose ack was not lost is redone."""
    secret = webhook_secret.generate()
    receiver = Receiver(secret).start()
    try:
        stack = make_stack({**WEBHOOKS, "WA_WEBHOOK_URL": receiver.url, "WA_WEBHOOK_SECRET": secret}, sandbox=True)
        pair(stack)
        contact = CONTACTS[2]
        first = stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONE, "text": "before"}).json()["id"]
        wa_id = first
        for attempt in range(3):
            wait_for(lambda p=wa_id: gateway_hand_overs(stack, p), 60, "the previous message handed over")
            wa_id = freeze_and_kill(stack, contact, f"handed over twice ({attempt})")
            if ack_lost(stack, wa_id):
                break
        assert ack_lost(stack, wa_id), "in 3 rounds the gateway was never frozen with its long poll open"
        print(f"\nthe ack lost in round {attempt + 1} of 3")
        wait_for(lambda: len(gateway_hand_overs(stack, wa_id)) >= 2, 60, "the same event handed over by the next boot")
        wait_for(lambda: [r for r in received_records(receiver) if r.event["data"]["whatsapp_id"] == wa_id
                          and r.status == 200], 30, "delivered to the receiver")
        listed = [m["whatsapp_id"] for m in inbound_listing(stack)]
        assert listed.count(wa_id) == 1 and listed.count(first) == 1, listed
        logged = [e for e in stack.events() if e["type"] == "message.received" and e["whatsapp_id"] == wa_id]
        assert len(logged) == 1
        assert len({r.id for r in received_records(receiver) if r.event["data"]["whatsapp_id"] == wa_id}) == 1
    finally:
        receiver.stop()
