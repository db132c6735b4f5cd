"""Issue 26's acceptance through one real sandbox stack (gateway, worker with the real Baileys, the emulator as
WhatsApp's server and three contacts' phones): the account creates a group with three contacts; each contact's phone
decrypts the account's group messages (sender keys distributed by Baileys, fanned out by the server); each contact's
group message reaches a signed webhook with the group's id and the participant; a participant added later decrypts
the messages after it joined, and one removed no longer receives any."""

from __future__ import annotations

import pytest

from service.webhooks import secret as webhook_secret
from tests.helpers.sandbox import pair
from tests.helpers.stack import Stack, wait_for
from tests.helpers.webhook_receiver import Receiver

pytestmark = pytest.mark.system

MEMBERS = ["+15550002201", "+15550002202", "+15550002203"]
LATER = "+15550002204"
SENT = ("sent", "delivered", "read")


@pytest.fixture(scope="module")
def receiver():
    running = Receiver(webhook_secret.generate()).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stack(receiver):
    env = {"WA_WEBHOOK_URL": receiver.url, "WA_WEBHOOK_SECRET": receiver.secret, "WA_GROUP_SEND_BURST": "100",
           "WA_GROUP_SEND_RATE_PER_MINUTE": "6000"}
    with Stack(env, sandbox=True) as running:
        pair(running)
        yield running


def send_to_group(stack, group: str, text: str, **more) -> dict:
    res = stack.post("/send", {"group_id": group, "message": text, **more})
    assert res.status in (200, 202), res.raw
    message_id = res.json()["id"]
    return wait_for(lambda: (m := stack.get(f"/messages/{message_id}").json())["status"] in SENT and m, 60,
                    f"{text} sent")


def received(stack, phone: str, whatsapp_id: str) -> dict | None:
    """The contact's inbox entry of our group message, once its phone decrypted it."""
    inbox = stack.emu("GET", f"/contacts/{phone}/messages").json()
    return next((e for e in inbox if e["id"] == whatsapp_id and e.get("text") is not None), None)


def test_a_group_both_ways_with_members_joining_and_leaving(stack, receiver):
    created = stack.post("/groups", {"subject": "Support crew", "participants": MEMBERS})
    assert created.status in (200, 201), created.raw
    group = created.json()["id"]
    assert group.endswith("@g.us")
    listed = stack.get("/groups").json()["groups"]
    assert any(g["id"] == group and g["participants_count"] == 4 for g in listed), listed

    first = send_to_group(stack, group, f"welcome, all; @{MEMBERS[0][1:]} leads", mentions=[MEMBERS[0]])
    for phone in MEMBERS:
        entry = wait_for(lambda phone=phone: received(stack, phone, first["whatsapp_id"]), 60, f"{phone} decrypts")
        assert (entry["text"], entry["group_id"]) == (f"welcome, all; @{MEMBERS[0][1:]} leads", group)
        assert entry["mentions"] == [MEMBERS[0]], entry

    def receipts() -> dict[str, set[str]]:  # per member, the steps its receipts of `first` reached
        events = stack.get("/events?types=message.status&limit=500").json()["events"]
        got: dict[str, set[str]] = {}
        for e in events:
            if e["data"]["id"] == first["id"] and e["data"].get("participant"):
                got.setdefault(e["data"]["participant"]["phone_number"], set()).add(e["data"]["status"])
        return got
    wait_for(lambda: all("delivered" in receipts().get(p, set()) for p in MEMBERS), 60, "a receipt per member")
    aggregate = [e["data"] for e in stack.get("/events?types=message.status&limit=500").json()["events"]
                 if e["data"]["id"] == first["id"] and not e["data"].get("participant")]
    assert aggregate and all((d["group_id"], d["phone_number"]) == (group, None) for d in aggregate), aggregate

    for phone in MEMBERS:
        res = stack.emu("POST", f"/contacts/{phone}/messages", {"to": group, "text": f"hello from {phone}"})
        assert res.status == 200, res.raw
        wa_id = res.json()["id"]

        def delivered(wa_id=wa_id) -> dict | None:
            return next((r.event["data"] for r in receiver.delivered() if r.event is not None
                         and r.event["type"] == "message.received" and r.event["data"]["whatsapp_id"] == wa_id), None)
        data = wait_for(delivered, 60, f"the webhook of {phone}'s group message")
        assert (data["group_id"], data["participant"]["phone_number"], data["text"]) == (
            group, phone, f"hello from {phone}")
        assert data["participant"]["lid"] is None or data["participant"]["lid"].endswith("@lid")

    # a reaction to a member's group message lands on that message at the member's phone (named with its sender)
    theirs = next(m for m in stack.get("/messages?direction=in&limit=50").json()["messages"]
                  if m.get("group_id") == group and m["participant"]["phone_number"] == MEMBERS[1])
    assert stack.post(f"/messages/{theirs['id']}/reaction", {"emoji": "🙌"}).status in (200, 202)

    def reacted() -> bool:
        sent = stack.emu("GET", f"/contacts/{MEMBERS[1]}/sent").json()
        return any(e["id"] == theirs["whatsapp_id"] and "🙌" in e["reactions"].values() for e in sent)
    wait_for(reacted, 60, "the reaction on the member's group message")

    added = stack.post(f"/groups/{group}/participants", {"add": [LATER]})
    assert added.status == 200 and [r["status"] for r in added.json()["results"]] == [200], added.raw
    removed = stack.post(f"/groups/{group}/participants", {"remove": [MEMBERS[0]]})
    assert removed.status == 200 and [r["status"] for r in removed.json()["results"]] == [200], removed.raw
    later = send_to_group(stack, group, "after the changes")
    for phone in (LATER, *MEMBERS[1:]):
        wait_for(lambda phone=phone: received(stack, phone, later["whatsapp_id"]), 60, f"{phone} decrypts later")
    gone = stack.emu("GET", f"/contacts/{MEMBERS[0]}/messages").json()
    assert all(e["id"] != later["whatsapp_id"] for e in gone), "a removed participant still got the message"
    info = stack.get(f"/groups/{group}").json()
    assert sorted(p["phone_number"] for p in info["participants"] if p["phone_number"] != "+15550001111") == sorted(
        [LATER, *MEMBERS[1:]])


def test_a_send_to_a_group_the_account_is_not_in_fails_clearly(stack):
    res = stack.post("/send", {"group_id": "120363999999999999@g.us", "message": "anyone?"})
    assert res.status == 422, res.raw
    error = res.json()["error"]
    assert error["code"] == "group_not_found" and error["id"], error
    assert stack.get(f"/messages/{error['id']}").json()["reason"] == "group_not_found"


def test_removed_from_a_group_by_a_member_admin_is_an_event_and_sends_there_fail(stack):
    group = stack.post("/groups", {"subject": "short-lived", "participants": [MEMBERS[1]]}).json()["id"]
    promoted = stack.post(f"/groups/{group}/participants", {"promote": [MEMBERS[1]]})
    assert promoted.status == 200 and promoted.json()["results"][0]["status"] == 200, promoted.raw
    res = stack.emu("POST", f"/contacts/{MEMBERS[1]}/groups/{group}/participants", {"remove": ["+15550001111"]})
    assert res.status == 200 and res.json()["results"][0]["error"] is None, res.raw

    def removed() -> dict | None:
        events = stack.get("/events?types=group.participants&limit=500").json()["events"]
        return next((e["data"] for e in events if e["data"]["group_id"] == group and e["data"]["action"] == "remove"
                     and any(p["phone_number"] == "+15550001111" for p in e["data"]["participants"])), None)
    data = wait_for(removed, 60, "the event of our removal")
    assert data["by"]["phone_number"] == MEMBERS[1], data
    gone = stack.post("/send", {"group_id": group, "message": "still here?"})
    assert gone.status == 422 and gone.json()["error"]["code"] == "group_not_found", gone.raw
    assert stack.get(f"/groups/{group}").status == 404
