"""The worker authenticates the WhatsApp server: a server whose certificate chain comes from another root
is refused (state ``failed``, ``last_error`` ``untrusted_server...``), shows no QR, pairs nothing, and is
not retried in a loop. The refusal is Baileys' (node_worker/patches/baileys+7.0.0-rc14+001+server-auth.patch);
the emulator presents the bad chain (``WA_EMULATOR_CERT_MODE``)."""

import time

import pytest

pytestmark = pytest.mark.system

# Long enough for several reconnects at the stack's 200 ms backoff base, had the worker scheduled any.
QUIET_WINDOW = 4.0


def test_server_from_another_root_is_refused_without_qr_or_reconnects(make_stack):
    stack = make_stack({"WA_EMULATOR_CERT_MODE": "other_root"}, sandbox=True)
    overview = stack.emu("GET", "/").json()
    assert overview["cert_mode"] == "other_root"
    assert overview["handshakes"] == {"started": 0, "completed": 0}

    res = stack.post("/connect")
    assert res.status == 200, res.raw
    status = res.json()
    if status["state"] != "failed":
        status = stack.wait_state("failed", 20)
    assert status["last_error"].startswith("untrusted_server"), status
    assert "not signed by the trusted root" in status["last_error"]
    assert status["qr"] is None and status["qr_image"] is None
    assert status["connected"] is False

    # Nothing changes over the quiet window: no reconnect, no second handshake, no QR, no pairing.
    deadline = time.monotonic() + QUIET_WINDOW
    while time.monotonic() < deadline:
        now = stack.status()
        assert now["state"] == "failed", now
        assert now["reconnect"]["scheduled"] is False, now
        assert stack.emu("GET", "/").json()["handshakes"] == {"started": 1, "completed": 0}
        time.sleep(0.25)

    states = [e["state"] for e in stack.events() if e["type"] == "session.status"]
    assert states == ["connecting", "failed"], states
    overview = stack.emu("GET", "/").json()
    assert overview["accounts"] == [], "nothing was paired"
    # the worker said why, once, at the state change
    failed_logs = [e for e in stack.log_events()
                   if e.get("event") == "session.state" and e.get("state") == "failed"]
    assert len(failed_logs) == 1, failed_logs
    assert failed_logs[0]["last_error"].startswith("untrusted_server")

    # An operator's POST /connect tries once more, and is refused once more.
    again = stack.post("/connect").json()
    if again["state"] != "failed":
        again = stack.wait_state("failed", 20)
    assert again["last_error"].startswith("untrusted_server")
    assert stack.emu("GET", "/").json()["handshakes"] == {"started": 2, "completed": 0}


def test_sandbox_still_pairs_once_the_emulator_presents_its_own_chain(make_stack):
    """The same stack, switched to the valid chain at run time: the trusted sandbox root still works."""
    stack = make_stack({"WA_EMULATOR_CERT_MODE": "leaf_mismatch"}, sandbox=True)
    refused = stack.post("/connect").json()
    if refused["state"] != "failed":
        refused = stack.wait_state("failed", 20)
    assert refused["last_error"].startswith("untrusted_server"), refused
    assert "Noise static key" in refused["last_error"]

    assert stack.emu("POST", "/cert-mode", {"mode": "valid"}).status == 200
    status = stack.post("/connect").json()
    if status["state"] != "qr":
        status = stack.wait_state("qr", 20)
    scan = stack.emu("POST", "/phone/scan", {"phone_number": "+15550001111", "qr": status["qr"]})
    assert scan.status == 200, scan.raw
    connected = stack.wait_state("connected", 30)
    assert connected["phone_number"] == "+15550001111"
    assert connected["last_error"] is None
