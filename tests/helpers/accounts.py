"""Several accounts through the public HTTP API and the emulator's control API: an account's routes, creating and
linking one, its status, every page of a listing or of its event log, the devices of a phone and a contact's
inbox at the emulator."""

from __future__ import annotations

from tests.helpers.stack import wait_for


def base(name: str) -> str:
    return f"/accounts/{name}"


def error_code(res) -> str:
    body = res.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]["code"]


def create(stack, name: str) -> dict:
    res = stack.post("/accounts", {"name": name})
    assert res.status == 201, res.raw
    return res.json()


def state(stack, name: str) -> dict:
    res = stack.get(base(name) + "/status")
    assert res.status == 200, res.raw
    return res.json()


def link(stack, name: str, phone: str) -> dict:
    """Show the account's QR, scan it with ``phone`` at the emulator, wait until it is connected."""
    res = stack.post(base(name) + "/connect")
    assert res.status == 200, res.raw
    status = res.json()
    if status["state"] != "qr":
        status = wait_for(lambda: (s := state(stack, name))["state"] == "qr" and s, 20, f"{name}'s QR")
    res = stack.emu("POST", "/phone/scan", {"phone_number": phone, "qr": status["qr"]})
    assert res.status == 200, res.raw
    return wait_for(lambda: (s := state(stack, name))["state"] == "connected" and s, 30, f"{name} connected")


def pages(stack, path: str, key: str) -> list[dict]:
    """Every item of a cursor-paged listing (``messages``)."""
    out, cursor = [], None
    while True:
        sep = "&" if "?" in path else "?"
        res = stack.get(path + sep + "limit=200" + (f"&cursor={cursor}" if cursor else ""))
        assert res.status == 200, res.raw
        page = res.json()
        out += page[key]
        if not (cursor := page["next_cursor"]):
            return out


def account_events(stack, name: str) -> list[dict]:
    out, after = [], 0
    while True:
        res = stack.get(f"{base(name)}/events?after={after}&limit=500")
        assert res.status == 200, res.raw
        page = res.json()["events"]
        out += page
        if len(page) < 500:
            return out
        after = page[-1]["seq"]


def devices(stack, phone: str) -> list[dict]:
    accounts = stack.emu("GET", "/").json()["accounts"]
    return [d for a in accounts if a["phone_number"] == phone for d in a["devices"]]


def inbox(stack, contact: str) -> list[dict]:
    res = stack.emu("GET", f"/contacts/{contact}/messages")
    assert res.status == 200, res.raw
    return res.json()
