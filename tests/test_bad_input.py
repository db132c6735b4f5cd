"""Bad input to every endpoint gets a 4xx JSON error in the one shape, and changes nothing."""

import pytest

pytestmark = pytest.mark.system

ONE_MIB = b'{"phone_number": "+1234567890", "message": "' + b"x" * (1024 * 1024) + b'"}'

CASES = [
    # (method, path, raw body, expected status, expected code)
    ("POST", "/send", b"{not json", 400, "invalid_json"),
    ("POST", "/send", b"[1, 2]", 400, "invalid_json"),
    ("POST", "/send", b"", 400, "invalid_json"),
    ("POST", "/send", b"\xff\xfe", 400, "invalid_json"),
    ("POST", "/send", b'{"message": "hi"}', 400, "invalid_phone_number"),
    ("POST", "/send", b'{"phone_number": 1234567890, "message": "hi"}', 400, "invalid_phone_number"),
    ("POST", "/send", b'{"phone_number": "+12", "message": "hi"}', 400, "invalid_phone_number"),
    ("POST", "/send", b'{"phone_number": "+0123456789", "message": "hi"}', 400, "invalid_phone_number"),
    ("POST", "/send", b'{"phone_number": "+1234567890abc", "message": "hi"}', 400, "invalid_phone_number"),
    ("POST", "/send", b'{"phone_number": "+1234567890"}', 400, "invalid_message"),
    ("POST", "/send", b'{"phone_number": "+1234567890", "message": ""}', 400, "invalid_message"),
    ("POST", "/send", b'{"phone_number": "+1234567890", "message": "   "}', 400, "invalid_message"),
    ("POST", "/send", b'{"phone_number": "+1234567890", "message": ["hi"]}', 400, "invalid_message"),
    ("POST", "/send", b'{"phone_number": "+1234567890", "message": "'
     + b"x" * 70000 + b'"}', 400, "message_too_long"),
    ("POST", "/send", ONE_MIB, 413, "payload_too_large"),
    ("POST", "/connect", b"{not json", 400, "invalid_json"),
    ("POST", "/connect", b'"a string"', 400, "invalid_json"),
    ("POST", "/connect", ONE_MIB, 413, "payload_too_large"),
    ("POST", "/disconnect", b"{not json", 400, "invalid_json"),
    ("POST", "/disconnect", ONE_MIB, 413, "payload_too_large"),
    ("GET", "/send", None, 405, "method_not_allowed"),
    ("DELETE", "/status", None, 405, "method_not_allowed"),
    ("GET", "/nope", None, 404, "not_found"),
]


@pytest.mark.parametrize("method,path,raw,status,code", CASES)
def test_bad_input_gets_json_error_and_changes_nothing(stack, method, path, raw, status, code):
    from tests.stack import http

    before = stack.status()
    files_before = session_files(stack)
    res = http(method, stack.base + path, raw=raw, headers=stack.auth({"Content-Type": "application/json"}))
    assert res.status == status, res.raw[:300]
    body = res.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in body["error"]["message"]
    after = stack.status()
    assert after["state"] == before["state"] == "stopped"
    assert session_files(stack) == files_before


def session_files(stack) -> dict:
    root = stack.data_dir / "session"
    return {p.name: p.read_bytes() for p in root.iterdir()} if root.exists() else {}


def test_send_when_not_connected_is_409(stack):
    res = stack.post("/send", {"phone_number": "+1234567890", "message": "Hello"})
    assert res.status == 409
    assert res.json()["error"]["code"] == "not_connected"
