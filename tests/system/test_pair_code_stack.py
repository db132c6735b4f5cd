"""Linking by pairing code through one real sandbox stack (gateway, worker with the real Baileys, the emulator's
phone): ``POST /connect {"phone_number"}`` answers the code, the emulator's phone types it
(``POST /phone/pair-code``), the account reaches ``connected`` and a send goes out; a wrong code keeps it
unlinked; the CLI's ``connect --phone`` prints the code for another account and returns once it is linked.
Then the clear states: the gateway's own spacing of codes per account and WhatsApp's refusal of too many
codes for a number (429 ``pairing_rate_limited`` with Retry-After), a number not on WhatsApp (422
``pairing_code_refused``), and a code nobody entered in time (``stopped``, ``pairing_code_expired``; a new
POST /connect gives a new code that links)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers.sandbox import CONTACT, PHONE
from tests.helpers.stack import BIN, REPO, Stack, wait_for

pytestmark = pytest.mark.system

CODE = re.compile(r"^[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}$")
OTHER = "+15550003131"  # the CLI's account's number
LIMITED = {  # the second stack: codes expire in ~9 s (6 refs of 1.5 s), the emulator gives 2 per number
    "WA_QR_TIMEOUT_MS": "1500", "WA_EMULATOR_PAIR_CODE_LIMIT": "2",
    "WA_PAIRING_CODE_INTERVAL": "0", "WA_PAIRING_CODES_PER_HOUR": "3",
}


@pytest.fixture(scope="module")
def stack():
    with Stack({}, sandbox=True) as running:
        yield running


def account_status(stack: Stack, name: str) -> dict:
    res = stack.get(f"/accounts/{name}/status")
    assert res.status == 200, res.raw
    return res.json()


def new_account_code(stack: Stack, name: str, phone: str) -> str:
    """The account created if need be, and the code POST /connect gives it for ``phone``."""
    assert stack.post("/accounts", {"name": name}).status in (200, 201, 409)
    res = stack.post(f"/accounts/{name}/connect", {"phone_number": phone})
    assert res.status == 200, res.raw
    status = wait_for(lambda: (s := account_status(stack, name))["state"] == "pairing_code" and s, 20, "a code")
    assert CODE.match(status["pairing_code"]), status
    return status["pairing_code"]


def refused(res, status: int, code: str) -> dict:
    assert res.status == status and res.json()["error"]["code"] == code, res.raw
    return res.json()["error"]


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


def test_a_second_code_within_the_interval_is_429_with_retry_after_and_whatsapp_is_not_asked(stack: Stack):
    code = new_account_code(stack, "spacing", "+15550003132")
    again = stack.post("/accounts/spacing/connect", {"phone_number": "+15550003132"})
    refused(again, 429, "pairing_rate_limited")
    assert 0 < int(again.headers["Retry-After"]) <= 20, again.headers
    still = account_status(stack, "spacing")
    assert still["state"] == "pairing_code" and still["pairing_code"] == code, still


@pytest.fixture(scope="module")
def limited():
    with Stack(LIMITED, sandbox=True) as running:
        yield running


def test_whatsapp_refusing_more_codes_for_a_number_is_429_and_holds_the_account(limited: Stack):
    phone = "+15550003141"
    codes = {new_account_code(limited, "busy", phone) for _ in range(2)}
    assert len(codes) == 2
    third = limited.post("/accounts/busy/connect", {"phone_number": phone})
    refused(third, 429, "pairing_rate_limited")
    assert third.headers["Retry-After"] == "3600", third.headers
    # the worker stops the session once it answered (the 429 may come first): awaited, not assumed
    stopped = wait_for(lambda: (st := account_status(limited, "busy"))["state"] == "stopped" and st, 30,
                       "the refused account stopped")
    assert stopped["pairing_code"] is None, stopped
    assert stopped["last_error"].startswith("pairing_rate_limited: "), stopped
    held = limited.post("/accounts/busy/connect", {"phone_number": phone})  # WhatsApp is not asked again
    refused(held, 429, "pairing_rate_limited")
    assert 3500 < int(held.headers["Retry-After"]) <= 3600, held.headers
    assert account_status(limited, "busy")["state"] == "stopped"


def test_the_gateway_gives_an_account_at_most_its_codes_per_hour(limited: Stack):
    for phone in ("+15550003151", "+15550003152", "+15550003153"):  # one each at WhatsApp
        new_account_code(limited, "hourly", phone)
    fourth = limited.post("/accounts/hourly/connect", {"phone_number": "+15550003154"})
    error = refused(fourth, 429, "pairing_rate_limited")
    assert 3500 < int(fourth.headers["Retry-After"]) <= 3600 and "at most 3 an hour" in error["message"], error


def test_a_number_not_on_whatsapp_is_422_and_the_session_stops_saying_so(limited: Stack):
    absent = "+15550003161"
    assert limited.emu("POST", "/contacts", {"phone_number": absent, "on_whatsapp": False}).status == 200
    assert limited.post("/accounts", {"name": "absent"}).status in (200, 201)
    refused(limited.post("/accounts/absent/connect", {"phone_number": absent}), 422, "pairing_code_refused")
    status = account_status(limited, "absent")
    assert status["state"] == "stopped" and status["last_error"].startswith("pairing_code_refused: "), status


def test_a_code_nobody_entered_expires_clearly_and_a_new_one_links(limited: Stack):
    phone = "+15550003171"
    first = new_account_code(limited, "late", phone)
    expired = wait_for(lambda: (s := account_status(limited, "late"))["state"] == "stopped" and s, 30, "expiry")
    assert expired["last_error"].startswith("pairing_code_expired: ") and expired["pairing_code"] is None, expired
    late = limited.emu("POST", "/phone/pair-code", {"phone_number": phone, "code": first})
    refused(late, 404, "no_pairing_request")  # the phone finds nothing to link: the companion is gone
    second = new_account_code(limited, "late", phone)
    assert second != first
    linked = limited.emu("POST", "/phone/pair-code", {"phone_number": phone, "code": second})
    assert linked.status == 200, linked.raw
    wait_for(lambda: account_status(limited, "late")["state"] == "connected", 30, "linked by the new code")
