"""Managing groups through one real sandbox stack (gateway, worker with the real Baileys, the emulator as WhatsApp's
server and its contacts), issue 26 item 3: the account creates a group with emulator contacts (one refusing group
adds, one not on WhatsApp: per-participant results), lists and reads it, renames and describes it, adds, promotes,
demotes and removes participants, gets and revokes the invite link, leaves and joins again by the link as a plain
member, who is then refused an admin's work (403 not_admin) but may rename the unrestricted group. The emulator's
own view of the group agrees at each step, and the group's changes come back as group.participants / group.updated
events, each once."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.helpers.sandbox import PHONE, pair
from tests.helpers.stack import Stack, http, wait_for

pytestmark = pytest.mark.system

MEMBERS = ["+15550002611", "+15550002612"]
PRIVATE = "+15550002613"  # groups_add: nobody
NOBODY = "+15550002614"  # not on WhatsApp
LATER = "+15550002615"


@pytest.fixture(scope="module", params=["pn", "lid"])
def stack(request):
    """WhatsApp's server addressing groups' members by phone number, and by LID as it makes new groups now."""
    with Stack({"WA_EMULATOR_GROUP_ADDRESSING": request.param}, sandbox=True) as running:
        pair(running)
        for phone in (*MEMBERS, PRIVATE, LATER):
            assert running.emu("POST", "/contacts", {"phone_number": phone}).status == 200
        assert running.emu("POST", "/contacts", {"phone_number": NOBODY, "on_whatsapp": False}).status == 200
        assert running.emu("POST", f"/contacts/{PRIVATE}/privacy", {"groups_add": "nobody"}).status == 200
        yield running


def at_server(stack, group: str) -> dict:
    """The emulator's (WhatsApp's) view of the group."""
    return next(g for g in stack.emu("GET", "/groups").json() if g["id"] == group)


def patch(stack, path: str, body: dict):
    return http("PATCH", stack.base + path, body, headers=stack.auth(None))


def ok(res, status: int = 200) -> dict:
    assert res.status == status, res.raw
    body: dict = res.json()
    return body


def group_events(stack, group: str) -> list[dict]:
    page = stack.get("/events?types=group.participants,group.updated&limit=500").json()["events"]
    return [e for e in page if e["data"]["group_id"] == group]


def test_a_group_managed_end_to_end_as_whatsapp_answers(stack):
    created = ok(stack.post("/groups", {"subject": "Depot crew", "participants": [*MEMBERS, PRIVATE, NOBODY]}), 201)
    group = created["id"]
    assert {r["phone_number"]: (r["status"], r.get("code")) for r in created["results"]} == {
        MEMBERS[0]: (200, None), MEMBERS[1]: (200, None), PRIVATE: (403, "privacy"), NOBODY: (404, "not_on_whatsapp")}
    server = at_server(stack, group)
    assert sorted(p["phone_number"] for p in server["participants"]) == sorted([PHONE, *MEMBERS])
    listed = ok(stack.get("/groups"))["groups"]
    assert {"id": group, "subject": "Depot crew", "participants_count": 3, "role": "superadmin"} in listed

    shown = ok(stack.get(f"/groups/{quote(group)}"))  # URL-encoded: the same group
    assert shown["owner"] == PHONE and shown["subject"] == "Depot crew"
    lids = {p["phone_number"]: p["lid"] for p in server["participants"]}
    assert {p["phone_number"]: (p["lid"], p["admin"]) for p in shown["participants"]} == {
        PHONE: (lids[PHONE], "superadmin"), MEMBERS[0]: (lids[MEMBERS[0]], None), MEMBERS[1]: (lids[MEMBERS[1]], None)}

    renamed = ok(patch(stack, f"/groups/{group}", {"subject": "Depot crew (EU)", "description": "Shifts and parcels"}))
    assert (renamed["subject"], renamed["description"]) == ("Depot crew (EU)", "Shifts and parcels")
    assert (at_server(stack, group)["subject"], at_server(stack, group)["description"]) == (
        "Depot crew (EU)", "Shifts and parcels")

    added = ok(stack.post(f"/groups/{group}/participants", {"add": [LATER, MEMBERS[0]]}))["results"]
    assert [(r["phone_number"], r["status"]) for r in added] == [(LATER, 200), (MEMBERS[0], 409)]
    ok(stack.post(f"/groups/{group}/participants", {"promote": [MEMBERS[0]]}))
    assert {p["phone_number"]: p["admin"] for p in at_server(stack, group)["participants"]}[MEMBERS[0]] == "admin"
    ok(stack.post(f"/groups/{group}/participants", {"demote": [MEMBERS[0]]}))
    removed = ok(stack.post(f"/groups/{group}/participants", {"remove": [MEMBERS[1]]}))["results"]
    assert removed == [{"phone_number": MEMBERS[1], "status": 200}]
    assert sorted(p["phone_number"] for p in at_server(stack, group)["participants"]) == sorted(
        [PHONE, MEMBERS[0], LATER])

    invite = ok(stack.get(f"/groups/{group}/invite"))
    assert invite["code"] == at_server(stack, group)["invite_code"]
    fresh = ok(stack.delete(f"/groups/{group}/invite"))
    assert fresh["code"] != invite["code"] and fresh["link"] == "https://chat.whatsapp.com/" + fresh["code"]

    assert ok(stack.post(f"/groups/{group}/leave")) == {"id": group}
    assert ok(stack.get(f"/groups/{group}"), 404)["error"]["code"] == "group_not_found"
    assert ok(stack.post("/groups/join", {"code": invite["link"]}), 404)["error"]["code"] == "group_not_found"
    assert ok(stack.post("/groups/join", {"code": fresh["link"]})) == {"id": group}
    # A member may rename a group that is not restricted (WhatsApp's default), but only admins change who is in it.
    assert ok(patch(stack, f"/groups/{group}", {"subject": "Ours"}))["subject"] == "Ours"
    assert ok(stack.get(f"/groups/{group}/invite"), 403)["error"]["code"] == "not_admin"
    refused = ok(stack.post(f"/groups/{group}/participants", {"add": [MEMBERS[1]]}), 403)
    assert refused["error"]["code"] == "not_admin"
    assert any(g["id"] == group and g["role"] == "member" for g in ok(stack.get("/groups"))["groups"])

    # What WhatsApp told the account's device, stored once each (the worker journals them before the ack).
    def changes() -> list[tuple[str, str | None]] | None:
        seen = [(e["type"], e["data"].get("action")) for e in group_events(stack, group)]
        return seen if ("group.participants", "remove") in seen and ("group.updated", None) in seen else None
    seen = wait_for(changes, 30, "the group's events")
    events = group_events(stack, group)
    assert len({e["id"] for e in events}) == len(events)
    removal = next(e["data"] for e in events if e["data"].get("action") == "remove")
    assert removal["participants"] == [{"phone_number": MEMBERS[1], "lid": lids[MEMBERS[1]]}]
    assert removal["by"]["phone_number"] == PHONE
    assert ("group.participants", "promote") in seen and ("group.participants", "demote") in seen


def test_bad_input_is_refused_before_whatsapp_is_asked(stack):
    too_many = [f"+1555100{n:04d}" for n in range(1025)]
    for body, code in (({"subject": "x", "participants": []}, "invalid_participants"),
                       ({"subject": "x", "participants": too_many}, "invalid_participants"),
                       ({"subject": "", "participants": MEMBERS}, "invalid_subject")):
        assert ok(stack.post("/groups", body), 400)["error"]["code"] == code
    assert ok(stack.get("/groups/15550002611@s.whatsapp.net"), 400)["error"]["code"] == "invalid_group_id"
    assert ok(stack.get("/groups/120363999999999999@g.us"), 404)["error"]["code"] == "group_not_found"
    assert ok(stack.get("/accounts/default/groups/120363999999999999%40g.us"), 404)["error"]["code"] == \
        "group_not_found"
