"""Issue 25's chaos acceptance, through supervisord against the emulator: a stream of our messages and actions on
them (reactions, removals, edits, revokes) and of a contact's reactions and edits, while the worker is SIGKILLed
every 2 s and the gateway twice. Nothing is lost and nothing is applied twice: at the contact each of our messages
is there once with exactly the edit we made (an edit resent after a crash is the stored first one, never a second
version), the reaction we left last and the revokes we made; at the gateway each of the contact's actions is one
event."""

from __future__ import annotations

import os
import time

import pytest

from tests.helpers.chaos import FAST, Killer, inbox, kill_gateway
from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

SENT = ("sent", "delivered", "read")
EMOJIS = ("👍", "❤️", "😂", "🎉", "🙏")


def post(stack, path: str, body: dict, key: str, deadline: float = 90.0) -> dict:
    """POST as a careful client: with an Idempotency-Key, retried until the gateway answers 200/202."""
    give_up = time.monotonic() + deadline
    while True:
        try:
            res = stack.post(f"{path}?wait=0", body, headers={"Idempotency-Key": key}, timeout=10)
            if res.status in (200, 202):
                return res.json()
            assert res.status >= 500, (path, res.status, res.raw)  # a 4xx would be our bug
        except OSError:
            pass  # the gateway is restarting
        assert time.monotonic() < give_up, f"{key} never accepted"
        time.sleep(0.1)


def settled(stack, message_id: str, deadline: float = 120.0) -> dict:
    """The message once sent, read through gateway restarts."""
    def sent() -> dict | None:
        try:
            got = stack.get(f"/messages/{message_id}", timeout=10)
        except OSError:
            return None
        return got.json() if got.status == 200 and got.json()["status"] in SENT else None
    return wait_for(sent, deadline, f"{message_id} sent")


def contact_does(stack, body: dict) -> str:
    """The contact acts (held by the server for the account's device while the worker is down)."""
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, **body})
    assert res.status == 200, res.raw
    return str(res.json()["id"])


def test_actions_both_ways_under_worker_and_gateway_kills_none_lost_none_twice(make_stack):
    steps = int(os.environ.get("WA_CHAOS_ACTION_STEPS", "18"))
    stack = make_stack({**FAST, "WA_KEEPALIVE_MS": "1000"}, sandbox=True)
    pair(stack)
    killer = Killer(stack, "worker:worker-0", 2.0)
    killer.start()
    ours: list[dict] = []  # per step: our message and what we did to it
    theirs: list[tuple[str, str]] = []  # (event type, the contact's action's WhatsApp id)
    n = 0
    try:
        while n < steps or (killer.kills < 4 and n < 3 * steps):  # long enough for several worker kills
            if n in (steps // 3, 2 * steps // 3):
                kill_gateway(stack)
            sent = settled(stack, post(stack, "/send", {"phone_number": CONTACT, "message": f"m{n}"}, f"m{n}")["id"])
            done = {"message": sent, "emoji": EMOJIS[n % len(EMOJIS)], "edit": None, "revoked": False}
            post(stack, f"/messages/{sent['id']}/reaction", {"emoji": done["emoji"]}, f"react{n}")
            if n % 3 == 0:
                done["edit"] = f"m{n} (edited)"
                post(stack, f"/messages/{sent['id']}/edit", {"message": done["edit"]}, f"edit{n}")
            if n % 4 == 1:
                post(stack, f"/messages/{sent['id']}/reaction", {"emoji": ""}, f"unreact{n}")
                done["emoji"] = ""
            if n % 5 == 2:
                post(stack, f"/messages/{sent['id']}/revoke", {}, f"revoke{n}")
                done["revoked"] = True
            ours.append(done)
            theirs.append(("message.reaction", contact_does(stack, {"reaction": {"id": sent["whatsapp_id"],
                                                                                 "emoji": "👀"}})))
            if n % 2 == 0:
                own = contact_does(stack, {"text": f"c{n}"})
                theirs.append(("message.edited", contact_does(stack, {"edit": {"id": own, "text": f"c{n}!"}})))
            n += 1
    finally:
        killer.stop()

    def all_sent() -> bool:
        rows = stack.all_pages("/messages?limit=200")
        return all(m["status"] in SENT for m in rows if m["type"] != "presence")
    wait_for(all_sent, 120, "every message and action sent")
    by_id = {e["id"]: e for e in wait_for(lambda: inbox(stack, CONTACT), 10, "the inbox")}

    def at_contact_as_done() -> bool:
        got = {e["id"]: e for e in inbox(stack, CONTACT)}
        by_id.update(got)
        for done in ours:
            entry = got.get(done["message"]["whatsapp_id"])
            if entry is None or entry["revoked"] != done["revoked"]:
                return False
            if (entry["reactions"].get(PHONE) or "") != done["emoji"]:
                return False
            if entry["edits"] != ([done["message"]["message"], done["edit"]] if done["edit"] else []):
                return False
        return True
    try:
        wait_for(at_contact_as_done, 120, "the contact shows what we did, once")
    except AssertionError:
        for done in ours:  # say which message differs, and how
            entry = by_id.get(done["message"]["whatsapp_id"])
            assert entry is not None, f"{done['message']['message']} lost"
            assert (entry["revoked"], entry["reactions"].get(PHONE) or "", entry["edits"]) == (
                done["revoked"], done["emoji"], [done["message"]["message"], done["edit"]] if done["edit"] else [])
        raise
    ids = [e["id"] for e in inbox(stack, CONTACT)]
    assert len(ids) == len(set(ids))  # no message or action twice in the contact's inbox

    def events_of_theirs() -> list[dict]:
        out, after = [], 0
        while page := stack.get(f"/events?types=message.reaction,message.edited&limit=200&after={after}").json():
            if not page["events"]:
                return out
            out += page["events"]
            after = page["next_after"]
        return out
    wait_for(lambda: {wa for _, wa in theirs} <= {e["data"]["whatsapp_id"] for e in events_of_theirs()}, 120,
             "every action of the contact's as an event")
    seen = [(e["type"], e["data"]["whatsapp_id"]) for e in events_of_theirs()]
    assert sorted(seen) == sorted(theirs), "an action of the contact's lost or stored twice"
    assert killer.kills >= 4, killer.kills
