"""Linking by pairing code through one real sandbox stack (gateway, worker with the real Baileys, the emulator's
phone): ``POST /connect {"phone_number"}`` answers the code, the emulator's phone types it
(``POST /phone/pair-code``), the account reaches ``connected`` and a send goes out; a wrong code keeps it
unlinked; the CLI's ``connect --phone`` prints the code for another account and returns once it is linked."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers.sandbox import CONTACT, PHONE
from tests.helpers.stack import BIN, REPO, Stack, wait_for

pytestmark = pytest.mark.system

CODE = re.compile(r"^[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}$")
OTHER = "+15550003131"  # the CLI's account's number


@pytest.fixture(scope="module")
def stack():
    with Stack({}, sandbox=True) as running:
        yield running


def wrong(code: str) -> str:
    return ("B" if code[0] == "A" else "A") + code[1:]


def test_a_wrong_code_keeps_it_unlinked_and_the_right_one_links_and_sends(stack):
    bad = stack.post("/connect", {"phone_number": "not a number"})
    assert bad.status == 400 and bad.json()["error"]["code"] == "invalid_phone_number", bad.raw
    # typed as people write it: the gateway hands the worker its E.164 form
    status = stack.post("/connect", {"phone_number": "+1 555-000-1111"}).json()
    assert PHONE == "+15550001111"
    if status["state"] != "pairing_code":
        status = stack.wait_state("pairing_code", 20)
    code = status["pairing_code"]
    assert CODE.match(code), status
    assert status["qr"] is None and status["connected"] is False

    refused = stack.emu("POST", "/phone/pair-code", {"phone_number": PHONE, "code": wrong(code)})
    assert refused.status == 400 and refused.json()["error"]["code"] == "wrong_code", refused.raw
    still = stack.status()
    assert still["state"] == "pairing_code" and still["pairing_code"] == code, still
    unlinked = stack.post("/send", {"phone_number": CONTACT, "message": "too early"})
    assert unlinked.status == 409 and unlinked.json()["error"]["code"] == "not_linked", unlinked.raw

    linked = stack.emu("POST", "/phone/pair-code", {"phone_number": PHONE, "code": code})
    assert linked.status == 200, linked.raw
    assert stack.wait_state("connected", 30)["phone_number"] == PHONE
    shown = [e for e in stack.events() if e["type"] == "session.status" and e["data"].get("state") == "pairing_code"]
    assert shown and shown[-1]["data"]["pairing_code"] == code, shown

    sent = stack.post("/send", {"phone_number": CONTACT, "message": "linked by code"})
    assert sent.status in (200, 202), sent.raw
    inbox = f"/contacts/{CONTACT}/messages"
    wait_for(lambda: any(m["text"] == "linked by code" for m in stack.emu("GET", inbox).json()), 30, "it there")


def test_the_cli_prints_the_code_and_returns_once_linked(stack: Stack):
    assert stack.post("/accounts", {"name": "sales"}).status in (200, 201)
    proc = subprocess.Popen([str(BIN / "wa-gateway"), "connect", "--account", "sales", "--phone", OTHER,
                             "--timeout", "60"], env=stack.env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if found := re.search(r"Pairing code: (\S+)", line):
                break
        assert found, "".join(printed)
        res = stack.emu("POST", "/phone/pair-code", {"phone_number": OTHER, "code": found.group(1)})
        assert res.status == 200, res.raw
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, "".join(printed) + rest
        assert f"connected as {OTHER}" in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
