"""Strict input (issue 23, item 1), walked over the whole published contract: for every operation of
/openapi.json, a query parameter it does not document is 400 ``unknown_field`` naming it, and for every
operation with a JSON body, a field its schema does not have is the same (the schema says
``additionalProperties: false``). Nothing is ever silently dropped: a group, media or reply field beside a
valid send is refused, and the request changes nothing.
"""

from __future__ import annotations

import pytest

from tests.helpers.inprocess import AUTH

UNKNOWN = "zz_not_a_field"


async def _spec(client) -> dict:
    return await (await client.get("/openapi.json", headers=AUTH)).json()


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, item in doc["paths"].items()
            for method, op in item.items() if method in ("get", "post", "put", "patch", "delete")]


def _concrete(path: str) -> str:
    return (path.replace("{account}", "default").replace("{id}", "wh_0000000000000000000000000")
            .replace("{phone}", "+15550001111").replace("{chat}", "+15550001111"))


async def _error(res) -> dict:
    assert res.content_type == "application/json", (res.status, await res.text())
    return (await res.json())["error"]


async def test_an_unknown_query_parameter_is_refused_on_every_operation(client):
    doc = await _spec(client)
    checked = 0
    for method, path, op in _operations(doc):
        assert "unknown_field" in op["responses"]["400"]["x-error-codes"], (method, path)
        res = await client.request(method, _concrete(path) + f"?{UNKNOWN}=1", headers=AUTH)
        assert res.status == 400, (method, path, res.status)
        error = await _error(res)
        assert error["code"] == "unknown_field" and UNKNOWN in error["message"], (method, path, error)
        checked += 1
    assert checked >= 30


async def test_an_unknown_body_field_is_refused_on_every_operation_that_takes_a_body(client):
    doc = await _spec(client)
    bodies = [(m, p, op) for m, p, op in _operations(doc) if "requestBody" in op]
    assert len(bodies) >= 8
    for method, path, op in bodies:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[1]
        assert doc["components"]["schemas"][name]["additionalProperties"] is False, name
        res = await client.request(method, _concrete(path), json={UNKNOWN: 1}, headers=AUTH)
        error = await _error(res)
        assert (res.status, error["code"]) == (400, "unknown_field"), (method, path, res.status, error)
        assert UNKNOWN in error["message"], error


@pytest.mark.parametrize("extra", [
    {"group": "120363000000000000@g.us"}, {"media_url": "https://example.com/a.png"}, {"buttons": ["yes"]},
    {"quoted_message_id": "ABC"}, {"Phone_Number": "+15550001111"},
])
async def test_a_send_with_a_field_it_does_not_take_is_refused_and_nothing_is_queued(client, extra):
    body = {"phone_number": "+15550001111", "message": "hi", **extra}
    res = await client.post("/send?wait=0", json=body, headers=AUTH)
    error = await _error(res)
    assert (res.status, error["code"]) == (400, "unknown_field")
    assert next(iter(extra)) in error["message"] and "phone_number" in error["message"]  # names what it takes
    listed = await (await client.get("/messages", headers=AUTH)).json()
    assert listed["messages"] == []


async def test_a_hostile_field_name_is_shown_escaped_and_cut(client):
    name = "\u0007" + "x" * 500
    res = await client.post("/send", json={"phone_number": "+15550001111", "message": "hi", name: 1}, headers=AUTH)
    error = await _error(res)
    assert error["code"] == "unknown_field" and "\u0007" not in error["message"] and "\\x07" in error["message"]
    assert len(error["message"]) < 300
