"""The MCP tools as an agent sees them (service/mcp/tool_schemas.py, server.py), in-process without a gateway:
every tool has a description and a valid JSON Schema (draft 2020-12) that refuses unknown arguments; the
arguments check names the first problem; the send body is the one POST /send validates; the stdio relay refuses
to start without a key, with a refused key, or without a gateway, with one line and its exit code."""

from __future__ import annotations

import socket

import jsonschema
import pytest

from service.mcp import stdio_proxy
from service.mcp.sending import body_of, checked
from service.mcp.server import check_arguments
from service.mcp.tool_schemas import DESCRIPTIONS, SCHEMAS
from service.mcp.tools import registry
from service.mcp_names import ALL_TOOLS


@pytest.mark.parametrize("name", ALL_TOOLS)
def test_every_tool_has_a_description_and_a_strict_valid_schema(name):
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[name])
    assert SCHEMAS[name]["type"] == "object" and SCHEMAS[name]["additionalProperties"] is False
    assert len(DESCRIPTIONS[name]) > 40
    for prop in SCHEMAS[name]["properties"].values():
        assert prop.get("description"), f"{name}: every argument says what it is"


def test_the_registry_has_every_named_tool_in_order():
    assert tuple(registry(lambda call: None)) == ALL_TOOLS  # type: ignore[arg-type, return-value]


@pytest.mark.parametrize("name, args, problem", [
    ("read_messages", {}, "'chat' is a required property"),
    ("read_messages", {"chat": "+1555", "limit": 0}, "limit"),
    ("read_messages", {"chat": "+1555", "limit": 101}, "limit"),
    ("search_messages", {"query": "x" * 201}, "query"),
    ("send_message", {"to": "+14155550123", "text": "hi", "dry_run": "yes"}, "dry_run"),
    ("send_message", {"to": "+14155550123", "poll": {"question": "q", "options": ["a", "a"]}}, "poll/options"),
    ("send_message", {"to": "+14155550123", "text": "hi", "idempotency_key": "has space"}, "idempotency_key"),
    ("groups", {"group_id": "not-a-group"}, "group_id"),
    ("get_contact", {"phone_number": "+14155550123", "extra": 1}, "extra"),
    ("status", {"account": "UPPER"}, "account"),
])
def test_bad_arguments_are_named(name, args, problem):
    found = check_arguments(name, args)
    assert found is not None and problem in found


def test_good_arguments_pass():
    assert check_arguments("send_message", {"to": "+14155550123", "text": "hi", "reply_to": "01ABC",
                                            "idempotency_key": "k-1", "account": "sales-eu"}) is None
    assert check_arguments("send_message", {"group_id": "120363041234567890@g.us", "poll": {
        "question": "When?", "options": ["Mon", "Tue"], "multiple": True}}) is None


def test_the_send_body_is_what_post_send_validates():
    body = body_of({"to": "+1 415 555 0123", "text": "hi", "dry_run": True, "idempotency_key": "k", "account": "x"})
    assert body == {"phone_number": "+1 415 555 0123", "message": "hi"}
    assert checked(body, 65536) == {"phone_number": "+14155550123", "message": "hi"}
    with pytest.raises(Exception) as refused:
        checked({"phone_number": "+14155550123", "message": "x" * 11}, 10)
    assert refused.value.code == "message_too_long"  # type: ignore[attr-defined]


def test_the_relay_needs_a_key_from_the_environment(capsys):
    assert stdio_proxy.main([], env={}) == stdio_proxy.EX_CONFIG
    assert "WA_API_KEY" in capsys.readouterr().err
    assert stdio_proxy.main(["--key", "secret"], env={}) == stdio_proxy.EX_USAGE  # never on the command line


def test_the_relay_says_when_no_gateway_answers(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert stdio_proxy.main(["--url", f"http://127.0.0.1:{port}"], env={"WA_API_KEY": "k"}) == \
        stdio_proxy.EX_UNAVAILABLE
    assert "no gateway answers" in capsys.readouterr().err
