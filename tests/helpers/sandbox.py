"""Linking a sandbox stack's account (the emulator's phone scans the QR the worker shows), and the numbers
the sandbox tests and benchmarks use."""

PHONE = "+15550001111"      # the linked account
CONTACT = "+15550002222"


def pair(stack, phone=PHONE) -> dict:
    status = stack.post("/connect").json()
    if status["state"] != "qr":
        status = stack.wait_state("qr", 20)
    res = stack.emu("POST", "/phone/scan", {"phone_number": phone, "qr": status["qr"]})
    assert res.status == 200, res.raw
    return stack.wait_state("connected", 30)
