"""A group's changes as events (issue 26): the worker's journal events ``group.participants`` and ``group.updated``,
each stored once however often the worker hands it over (its ``event_id`` is the log's source_id), with the group id
and people as phone number + LID; then listed by GET /events (filtered by type), as documented, and subscribable by a
webhook. In-process, against the stand-in worker."""

from __future__ import annotations

import json
import time

from service.http.appkeys import DATABASE
from service.store import inbound
from tests.helpers.fake_worker import AUTH, P1, P2, error_of
from tests.helpers.openapi import conforms

GROUP = "120363000000000077@g.us"
ME = {"phone_number": "+15550001111", "lid": "90000000001111@lid"}
ONE = {"phone_number": P1, "lid": "90000000002222@lid"}
TWO = {"phone_number": None, "lid": "90000000003333@lid"}  # known only by its LID


def participants(action: str, people: list, notification: str = "N1", **more) -> dict:
    return {"type": "group.participants", "event_id": f"gp2:{GROUP}:{notification}:0", "group_id": GROUP,
            "action": action, "participants": people, "by": ME, "timestamp": 1764000100, **more}


def updated(notification: str, **fields) -> dict:
    return {"type": "group.updated", "event_id": f"gp2:{GROUP}:{notification}:0", "group_id": GROUP, "by": ME,
            "timestamp": 1764000200, **fields}


async def _store(client, event: dict) -> dict | None:
    result = await client.server.app[DATABASE].run(inbound.store_worker_event, "default", event, time.time())
    return json.loads(result["event"]["payload"]) if result["event"] is not None else None


async def test_each_change_is_stored_once_with_the_group_and_phone_plus_lid(api):
    client = await api()
    added = await _store(client, participants("add", [ONE, TWO, {"phone_number": 5}]))
    assert added["type"] == "group.participants"
    assert added["data"] == {"group_id": GROUP, "action": "add", "participants": [ONE, TWO], "by": ME,
                             "timestamp": "2025-11-24T16:01:40.000Z"}
    assert await _store(client, participants("add", [ONE, TWO])) is None  # handed over again: the same event
    created = await _store(client, participants("create", [ME, ONE], "N2", subject="Team"))
    assert (created["data"]["action"], created["data"]["subject"]) == ("create", "Team")
    left = await _store(client, participants("leave", [ONE], "N3", by=None))
    assert (left["data"]["action"], left["data"]["by"]) == ("leave", None)
    renamed = await _store(client, updated("N4", subject="Team B"))
    assert renamed["data"] == {"group_id": GROUP, "subject": "Team B", "by": ME,
                               "timestamp": "2025-11-24T16:03:20.000Z"}
    cleared = await _store(client, updated("N5", description=None))
    assert cleared["data"]["description"] is None and "subject" not in cleared["data"]  # removed: null, present
    locked = await _store(client, updated("N6", announce=True))
    assert locked["data"]["announce"] is True
    assert await _store(client, updated("N4", subject="Team B")) is None


async def test_unusable_group_events_are_not_stored(api):
    client = await api()
    for event in (participants("add", [ONE], group_id="15550002222@s.whatsapp.net"),
                  participants("add", [ONE], group_id=None),
                  participants("kick", [ONE]),
                  participants("add", "everyone"),
                  updated("N9"),  # nothing changed
                  updated("N10", announce="yes")):
        assert await _store(client, event) is None, event
    page = await (await client.get("/events", headers=AUTH)).json()
    assert page["events"] == []


async def test_listed_by_type_as_documented_and_a_webhook_may_take_them(api):
    client = await api(WA_WEBHOOK_ALLOW_PRIVATE="127.0.0.1")
    doc = await (await client.get("/openapi.json", headers=AUTH)).json()
    await _store(client, participants("promote", [ONE]))
    await _store(client, updated("N2", subject="Renamed", description="About us", restrict=False))
    await _store(client, participants("remove", [ME, {"phone_number": P2, "lid": None}], "N3"))
    res = await client.get("/events?types=group.participants", headers=AUTH)
    page = await conforms(doc, res, "GET", "/events")
    assert [e["data"]["action"] for e in page["events"]] == ["promote", "remove"]
    res = await client.get("/accounts/default/events?types=group.updated", headers=AUTH)
    page = await conforms(doc, res, "GET", "/accounts/{account}/events")
    assert [(e["data"]["subject"], e["data"]["description"], e["data"]["restrict"]) for e in page["events"]] == [
        ("Renamed", "About us", False)]
    assert {"group.participants", "group.updated"} <= set(doc["webhooks"])
    res = await client.post("/accounts/default/webhooks", headers=AUTH, json={
        "url": "http://127.0.0.1:9/hook", "events": ["group.participants", "group.updated"]})
    assert res.status == 201, await res.text()
    await error_of(await client.post("/accounts/default/webhooks", headers=AUTH, json={
        "url": "http://127.0.0.1:9/hook", "events": ["group.renamed"]}), 400, "invalid_events")


def test_the_hand_over_logs_which_group_changed_and_never_its_text():
    from structlog.testing import capture_logs

    from service.runtime.worker_events import EventConsumer

    consumer = EventConsumer(worker=None, db=None)  # type: ignore[arg-type]  # _log needs neither
    with capture_logs() as logs:
        consumer._log(updated("N1", subject="Secret plans", description="Nobody may know"))
        consumer._log(participants("add", [ONE]))
    assert [(e["event"], e.get("group_id"), e.get("action")) for e in logs] == [
        ("whatsapp.group.updated", GROUP, None), ("whatsapp.group.participants", GROUP, "add")]
    assert "Secret" not in repr(logs) and "Nobody" not in repr(logs)
