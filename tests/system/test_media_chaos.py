"""Issue 24's chaos acceptance through supervisord against the emulator: media messages go out and come in
while the worker and the gateway are SIGKILLed every few seconds. None is lost, none doubled at a contact, every
file identical in both directions (the sha256 of what the contact decrypted, and of what GET /media serves);
then media that expired on the media host before the gateway downloaded it is recovered through the media-retry
flow (the phone uploads it again).

Outbound sends are a careful client's: base64 JSON with an Idempotency-Key, retried until accepted
(tests/helpers/chaos.py). Inbound media is sent by emulator contacts, which the test never kills: a message for a
device that is down is queued there and delivered at its next login.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import media_samples as samples
from tests.helpers.chaos import FAST, Killer, inbox
from tests.helpers.sandbox import PHONE, pair
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

OUT_CONTACTS = [f"+1555000730{n}" for n in range(1, 6)]
IN_CONTACTS = [f"+1555000740{n}" for n in range(1, 6)]
COUNT = int(os.environ.get("WA_MEDIA_CHAOS_COUNT", "50"))  # per direction: the 50 out and 50 in
SPREAD = float(os.environ.get("WA_MEDIA_CHAOS_SECONDS", "24"))  # the traffic spans this long: several kills each
MEDIA_ENV = {"WA_MEDIA_DOWNLOAD_RETRY_BASE": "0.2", "WA_MEDIA_DOWNLOAD_RETRY_MAX": "2",
             "WA_MEDIA_DOWNLOAD_ATTEMPTS": "1000", "WA_MEDIA_SEND_TIMEOUT": "20", "WA_KEEPALIVE_MS": "1000"}


def picture(tag: str, n: int) -> bytes:
    """A distinct PNG per message (its size varies too: some span several AES blocks and chunks)."""
    return samples.png(4 + n % 7, 3 + n % 5) + f"{tag}-{n}".encode() * (1 + 400 * (n % 3))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def send_until_accepted(stack, phone: str, data: bytes, key: str, deadline: float = 90.0) -> dict:
    """POST /send with media and an Idempotency-Key, retried until 200/202 (a gateway that died under the request
    may or may not have committed it: the key makes the retry safe)."""
    body = {"phone_number": phone, "image": {"base64": base64.b64encode(data).decode()}, "caption": key}
    give_up = time.monotonic() + deadline
    while True:
        try:
            res = stack.post("/send?wait=0", body, headers={"Idempotency-Key": key}, timeout=20)
            if res.status in (200, 202):
                return res.json()
            assert res.status >= 500, (res.status, res.raw)  # a 4xx would be our bug
        except OSError:
            pass  # the gateway is restarting
        assert time.monotonic() < give_up, f"{key} never accepted"
        time.sleep(0.2)


def contact_sends(stack, phone: str, data: bytes) -> str:
    res = stack.emu("POST", f"/contacts/{phone}/messages",
                    {"to": PHONE, "media": {"kind": "image", "base64": base64.b64encode(data).decode(),
                                            "mimetype": "image/png"}})
    assert res.status == 200, res.raw
    return res.json()["id"]


def gateway_answers(stack, what):
    """``what()``, retried while the gateway restarts."""
    def attempt():
        try:
            return what()
        except OSError:
            return None
    return wait_for(attempt, 60, "the gateway answering")


def inbound_media(stack) -> dict[str, dict]:
    """The gateway's inbound messages by WhatsApp id (each must be there once)."""
    listing = gateway_answers(stack, lambda: stack.all_pages("/messages?direction=in&limit=200"))
    ids = [m["whatsapp_id"] for m in listing]
    assert len(ids) == len(set(ids)), "an inbound message is stored twice"
    return {m["whatsapp_id"]: m for m in listing}


def check_outbound(stack, sent: dict[str, list[bytes]]) -> None:
    for phone, files in sent.items():
        got = [m for m in inbox(stack, phone) if m.get("media")]
        ids = [m["id"] for m in got]
        assert len(ids) == len(set(ids)), f"{phone}: a message twice in the inbox"
        assert sorted(m["media"].get("sha256") or repr(m["media"].get("error")) for m in got) == \
            sorted(sha(f) for f in files), f"{phone}: lost, doubled or damaged media"


def check_inbound(stack, sent: dict[str, bytes]) -> None:
    stored = inbound_media(stack)
    for wa_id, data in sent.items():
        media = stored[wa_id]["media"]
        assert media["state"] == "stored" and media["sha256"] == sha(data), media
        served = gateway_answers(stack, lambda media=media: stack.get(media["url"]))
        assert served.status == 200 and sha(served.raw) == sha(data)


def test_media_both_ways_under_kills_none_lost_none_doubled_and_expired_media_recovered(make_stack):
    stack = make_stack({**FAST, **MEDIA_ENV}, sandbox=True)
    pair(stack)
    out_sent: dict[str, list[bytes]] = {p: [] for p in OUT_CONTACTS}
    in_sent: dict[str, bytes] = {}
    lock = threading.Lock()
    per_contact = max(1, COUNT // len(OUT_CONTACTS))
    pace = SPREAD / per_contact

    def outbound(phone: str) -> None:
        for n in range(per_contact):
            data = picture(phone[-2:], n)
            send_until_accepted(stack, phone, data, key=f"media-chaos-{phone}-{n}")
            with lock:
                out_sent[phone].append(data)
            time.sleep(pace)

    def incoming(phone: str) -> None:
        for n in range(per_contact):
            data = picture("in" + phone[-2:], n)
            wa_id = contact_sends(stack, phone, data)
            with lock:
                in_sent[wa_id] = data
            time.sleep(pace)

    killers = [Killer(stack, "worker:worker-0", 3.0), Killer(stack, "gateway", 7.0)]
    for killer in killers:
        killer.start()
    try:
        with ThreadPoolExecutor(len(OUT_CONTACTS) + len(IN_CONTACTS)) as pool:
            futures = [pool.submit(outbound, p) for p in OUT_CONTACTS] + [pool.submit(incoming, p) for p in IN_CONTACTS]
            for future in futures:
                future.result()
    finally:
        for killer in killers:
            killer.stop()
    assert killers[0].kills >= 3 and killers[1].kills >= 2, [k.kills for k in killers]

    wait_for(lambda: all(m["status"] in ("sent", "delivered", "read") for m in gateway_answers(
        stack, lambda: stack.all_pages("/messages?limit=200"))), 120, "every media message sent")
    wait_for(lambda: sum(len([m for m in inbox(stack, p) if m.get("media")]) for p in OUT_CONTACTS)
             >= sum(map(len, out_sent.values())), 60, "every media message at its contact")
    check_outbound(stack, out_sent)
    wait_for(lambda: (stored := inbound_media(stack)).keys() >= in_sent.keys() and all(
        stored[i]["media"]["state"] == "stored" for i in in_sent), 120, "every inbound file stored")
    check_inbound(stack, in_sent)

    # Expired before the gateway got to it: sent while the worker is down, expired on the media host, then
    # downloaded after the worker's login: 410, the phone re-uploads on the media-retry request, stored whole.
    assert stack.ctl("stop", "worker:worker-0").returncode == 0
    late = {contact_sends(stack, IN_CONTACTS[n % len(IN_CONTACTS)], data): data
            for n, data in enumerate(picture("late", n) for n in range(3))}
    assert stack.emu("POST", "/faults", {"kind": "media_expire"}).status == 200
    assert stack.ctl("start", "worker:worker-0").returncode == 0
    wait_for(lambda: (stored := inbound_media(stack)).keys() >= late.keys() and all(
        stored[i]["media"]["state"] == "stored" for i in late), 90, "the expired media recovered")
    check_inbound(stack, late)
    assert any(e.get("event") == "media.reuploaded" for e in stack.log_events()), "no media retry was needed"
