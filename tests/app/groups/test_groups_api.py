"""The group management API (issue 26 item 3) in-process, against the stand-in worker's group routes
(tests/helpers/fake_groups.py): what each call forwards, bad input refused before the worker is asked (400 with the
field's code, naming the bad participant), WhatsApp's per-participant results passed on whole, the worker's refusals
passed on with the API's error shape, group ids plain or URL-encoded, and which keys may call it."""

from __future__ import annotations

import re

import pytest

from tests.helpers.fake_groups import ME, NOT_ON_WHATSAPP, PRIVATE
from tests.helpers.fake_worker import AUTH, P1, P2, error_of
from tests.helpers.openapi import conforms


async def test_create_list_read_and_update_forward_to_the_worker(api):
    client = await api()
    res = await client.post("/groups", json={"subject": "Team", "participants": [P1, "+1 555 000 3333", P1]},
                            headers=AUTH)
    created = await res.json()
    assert res.status == 201, created
    assert client.worker.groups.requests[-1] == ("POST", "/accounts/default/groups",
                                                 {"subject": "Team", "participants": [P1, P2]})  # normalised, once
    gid = created["id"]
    assert [r["status"] for r in created["results"]] == [200, 200]
    assert created["created_at"] == "2023-11-14T22:13:20.000Z"  # WhatsApp's seconds, shown as every API time
    listed = await (await client.get("/groups", headers=AUTH)).json()
    assert listed == {"groups": [{"id": gid, "subject": "Team", "participants_count": 3, "role": "superadmin"}]}
    one = await (await client.get(f"/groups/{gid}", headers=AUTH)).json()
    assert [(p["phone_number"], p["admin"]) for p in one["participants"]] == [(ME, "superadmin"), (P1, None),
                                                                             (P2, None)]
    res = await client.patch(f"/groups/{gid}", json={"description": "Our team"}, headers=AUTH)
    assert res.status == 200 and (await res.json())["description"] == "Our team"
    assert client.worker.groups.requests[-1] == ("PATCH", f"/accounts/default/groups/{gid}",
                                                 {"description": "Our team"})
    chats = (await (await client.get("/chats", headers=AUTH)).json())["chats"]
    assert [(c["id"], c["name"]) for c in chats] == [(gid, "Team")]  # our new group is a chat, named at once
    await client.patch(f"/groups/{gid}", json={"subject": "Team B"}, headers=AUTH)
    chats = (await (await client.get("/chats", headers=AUTH)).json())["chats"]
    assert [(c["id"], c["name"]) for c in chats] == [(gid, "Team B")]


async def test_a_group_id_in_the_path_works_plain_and_url_encoded_and_under_an_account(api):
    client = await api()
    gid = client.worker.groups.add("Plain", {P1: None})
    for path in (f"/groups/{gid}", f"/groups/{gid.replace('@', '%40')}", f"/accounts/default/groups/{gid}",
                 f"/accounts/default/groups/{gid.replace('@', '%40')}"):
        res = await client.get(path, headers=AUTH)
        assert res.status == 200 and (await res.json())["id"] == gid, path
    for bad in ("12345", "12345@s.whatsapp.net", "abc@g.us", "1" * 70 + "@g.us", "123%2F45@g.us"):
        before = len(client.worker.groups.requests)
        await error_of(await client.get(f"/groups/{bad}", headers=AUTH), 400, "invalid_group_id")
        await error_of(await client.post(f"/groups/{bad}/leave", headers=AUTH), 400, "invalid_group_id")
        assert len(client.worker.groups.requests) == before, bad  # the worker was never asked


async def test_participants_results_are_per_number_and_no_failure_of_the_call(api):
    client = await api()
    gid = client.worker.groups.add("Team", {P1: None})
    res = await client.post(f"/groups/{gid}/participants", json={"add": [P1, P2, PRIVATE, NOT_ON_WHATSAPP]},
                            headers=AUTH)
    assert res.status == 200
    assert (await res.json())["results"] == [
        {"phone_number": P1, "status": 409},
        {"phone_number": P2, "status": 200},
        {"phone_number": PRIVATE, "status": 403, "code": "privacy"},
        {"phone_number": NOT_ON_WHATSAPP, "status": 404, "code": "not_on_whatsapp"}]
    for action in ("promote", "demote", "remove"):
        res = await client.post(f"/groups/{gid}/participants", json={action: [P2]}, headers=AUTH)
        assert (await res.json())["results"] == [{"phone_number": P2, "status": 200}], action
        assert client.worker.groups.requests[-1][2] == {action: [P2]}


@pytest.mark.parametrize("body, message", [
    ({"subject": "T", "participants": []}, "1 to 1024"),
    ({"subject": "T", "participants": [f"+1555{n:07d}" for n in range(1025)]}, "1 to 1024"),
    ({"subject": "T", "participants": [P1, "+1555", P2]}, "participants[1]"),
    ({"subject": "T", "participants": [P1, 15550002222]}, "participants[1]"),
    ({"subject": "T", "participants": "+15550002222"}, "participants must be a list"),
])
async def test_bad_participants_are_400_naming_which_before_the_worker_is_asked(api, body, message):
    client = await api()
    error = await error_of(await client.post("/groups", json=body, headers=AUTH), 400, "invalid_participants")
    assert message in error["message"]
    gid = client.worker.groups.add("Team", {})
    error = await error_of(await client.post(f"/groups/{gid}/participants", json={"add": body["participants"]},
                                             headers=AUTH), 400, "invalid_participants")
    assert message.replace("participants", "add") in error["message"] or message in error["message"]
    assert client.worker.groups.requests == []


async def test_bad_bodies_are_refused_with_their_field_code(api):
    client = await api()
    gid = client.worker.groups.add("Team", {P1: None})
    cases = [
        ("POST", "/groups", {"subject": "", "participants": [P1]}, "invalid_subject"),
        ("POST", "/groups", {"subject": "x" * 101, "participants": [P1]}, "invalid_subject"),
        ("POST", "/groups", {"subject": "T", "participants": [P1], "announce": True}, "unknown_field"),
        ("PATCH", f"/groups/{gid}", {}, "invalid_request"),
        ("PATCH", f"/groups/{gid}", {"description": "x" * 2049}, "invalid_description"),
        ("PATCH", f"/groups/{gid}", {"subject": "   "}, "invalid_subject"),
        ("POST", f"/groups/{gid}/participants", {"add": [P1], "remove": [P2]}, "invalid_participants"),
        ("POST", f"/groups/{gid}/participants", {}, "invalid_participants"),
        ("POST", f"/groups/{gid}/participants", {"kick": [P1]}, "unknown_field"),
        ("POST", "/groups/join", {"code": "no spaces here"}, "invalid_invite_code"),
        ("POST", f"/groups/{gid}/leave", {"now": True}, "unknown_field"),
    ]
    for method, path, body, code in cases:
        await error_of(await client.request(method, path, json=body, headers=AUTH), 400, code)
    assert client.worker.groups.requests == []
    res = await client.patch(f"/groups/{gid}", json={"description": "x" * 2048, "subject": "y" * 100},
                             headers=AUTH)
    assert res.status == 200


async def test_invite_revoke_join_and_leave(api):
    client = await api()
    gid = client.worker.groups.add("Team", {P1: None})
    first = await (await client.get(f"/groups/{gid}/invite", headers=AUTH)).json()
    assert first["link"] == "https://chat.whatsapp.com/" + first["code"]
    second = await (await client.delete(f"/groups/{gid}/invite", headers=AUTH)).json()
    assert second["code"] != first["code"]
    assert await (await client.post(f"/groups/{gid}/leave", headers=AUTH)).json() == {"id": gid}
    await error_of(await client.get(f"/groups/{gid}", headers=AUTH), 404, "group_not_found")
    joined = await client.post("/groups/join", json={"code": second["link"]}, headers=AUTH)  # the link works too
    assert await joined.json() == {"id": gid}
    assert client.worker.groups.requests[-1] == ("POST", "/accounts/default/groups/join", {"code": second["code"]})


async def test_the_workers_refusals_pass_through_with_the_apis_error_shape(api):
    client = await api()
    member_only = client.worker.groups.add("Theirs", {P1: "superadmin"}, role=None)
    await error_of(await client.patch(f"/groups/{member_only}", json={"subject": "Mine"}, headers=AUTH), 403,
                   "not_admin")
    await error_of(await client.post(f"/groups/{member_only}/participants", json={"remove": [P1]}, headers=AUTH),
                   403, "not_admin")
    await error_of(await client.get(f"/groups/{member_only}/invite", headers=AUTH), 403, "not_admin")
    await error_of(await client.get("/groups/120363999999999999@g.us", headers=AUTH), 404, "group_not_found")
    await error_of(await client.post("/groups/join", json={"code": "Unknown123"}, headers=AUTH), 404,
                   "group_not_found")
    client.worker.state = "disconnected"
    await error_of(await client.get("/groups", headers=AUTH), 409, "not_connected")
    await error_of(await client.post("/groups", json={"subject": "T", "participants": [P1]}, headers=AUTH), 409,
                   "not_connected")


async def test_a_key_scoped_to_default_may_manage_its_groups_and_no_other_accounts(api):
    client = await api()
    gid = client.worker.groups.add("Team", {P1: None})
    keys = {}
    for account in ("default", "sales"):
        if account != "default":
            assert (await client.post("/accounts", json={"name": account}, headers=AUTH)).status == 201
        keys[account] = {"X-API-Key": (await (await client.post(f"/accounts/{account}/keys", json={},
                                                                headers=AUTH)).json())["key"]}
    for path in ("/groups", f"/groups/{gid}", "/accounts/default/groups", f"/accounts/default/groups/{gid}/invite"):
        assert (await client.get(path, headers=keys["default"])).status == 200, path
        await error_of(await client.get(path, headers=keys["sales"]), 403, "forbidden")
    res = await client.post("/groups/join", json={"code": "Unknown123"}, headers=keys["default"])
    assert res.status == 404  # through to the worker: the key may call it
    assert (await client.get("/accounts/sales/groups", headers=keys["sales"])).status == 200
    await error_of(await client.get("/accounts/sales/groups", headers=keys["default"]), 403, "forbidden")


async def test_every_answer_and_refusal_conforms_to_the_document(api):
    client = await api()
    doc = await (await client.get("/openapi.json", headers=AUTH)).json()
    gid = client.worker.groups.add("Team", {P1: None})
    theirs = client.worker.groups.add("Theirs", {P1: "superadmin"}, role=None)
    calls = [
        ("GET", "/groups", None, "/groups"),
        ("POST", "/groups", {"subject": "New", "participants": [P1, PRIVATE]}, "/groups"),
        ("GET", f"/groups/{gid}", None, "/groups/{id}"),
        ("PATCH", f"/groups/{gid}", {"subject": "Renamed"}, "/groups/{id}"),
        ("POST", f"/groups/{gid}/participants", {"add": [P2, NOT_ON_WHATSAPP]}, "/groups/{id}/participants"),
        ("GET", f"/groups/{gid}/invite", None, "/groups/{id}/invite"),
        ("DELETE", f"/accounts/default/groups/{gid}/invite", None, "/accounts/{account}/groups/{id}/invite"),
        ("POST", f"/groups/{gid}/leave", None, "/groups/{id}/leave"),
        ("POST", "/groups/join", {"code": "100000et1vnI"}, "/groups/join"),  # the new code
        ("PATCH", f"/groups/{theirs}", {"subject": "Mine"}, "/groups/{id}"),
        ("GET", "/groups/1@g.us", None, "/groups/{id}"),
        ("POST", "/groups", {"subject": "New", "participants": []}, "/groups"),
        ("GET", "/groups/120363999999999999@g.us/invite", None, "/groups/{id}/invite"),
    ]
    statuses = []
    for method, path, body, pattern in calls:
        res = await client.request(method, path, json=body, headers=AUTH)
        await conforms(doc, res, method, pattern)
        statuses.append(res.status)
    assert statuses == [200, 201, 200, 200, 200, 200, 200, 200, 200, 403, 400, 400, 404]
    client.worker.state = "connecting"
    await conforms(doc, await client.get("/groups", headers=AUTH), "GET", "/groups")
    schemas = doc["components"]["schemas"]
    for model, field in (("GroupCreateRequest", "participants"), ("ParticipantsRequest", "promote")):
        shown = schemas[model]["properties"][field]
        assert (shown["type"], shown["minItems"], shown["maxItems"], shown["items"]["type"]) == ("array", 1, 1024,
                                                                                              "string"), model
    param = next(p for p in doc["paths"]["/groups/{id}"]["get"]["parameters"] if p.get("name") == "id")
    assert re.fullmatch(param["schema"]["pattern"].strip("^$"), gid)
