"""No key material, QR secret, API key or message body in any log line, at any level; one record per line.

A whole sandbox flow (pair, send, receive, worker kill -9, supervisord restart, logout) runs at the most
verbose settings (WA_LOG_LEVEL=debug, Baileys at trace, the emulator at trace); then the complete supervisord
output is searched for every secret the session store held (read from disk before logout deletes it), in hex
and base64, for the QR secret, the API key and the message texts: zero hits.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal

import pytest

from tests.helpers.session_store import is_registered, secret_bytes
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

PHONE = "+15550001111"
CONTACT = "+15550002222"
LEVELS = {"debug", "info", "warning", "error", "critical"}
PROGRAMS = {"gateway", "worker", "emulator", "watchdog"}
# supervisord's own lines, the one documented exception to the log contract
SUPERVISORD_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [^{]*$")
HEX_RUN = re.compile(r"[0-9a-f]{32,}")
SPACED_HEX_RUN = re.compile(r"(?:[0-9a-f]{2} ){15,}[0-9a-f]{2}")  # util.inspect: <Buffer 2d 4f ...>
B64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{20,}")


def distinctive_text(label: str) -> str:
    # An ASCII token no log line could contain by chance, and non-ASCII that a JSON logger may escape.
    return f"{label}-{secrets.token_hex(6)} Grüße, Zoë 🦘 你好"


def text_forms(text: str) -> set[str]:
    token = text.split(" ", 1)[0]
    return {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1], token}


def find_secrets(logs: str, found: set[bytes]) -> list[str]:
    """Hex (any case) and base64 (padded, unpadded, URL-safe) forms of each secret, found in the logs."""
    lower = logs.lower()
    hex_runs = HEX_RUN.findall(lower) + [run.replace(" ", "") for run in SPACED_HEX_RUN.findall(lower)]
    b64_runs = B64_RUN.findall(logs)
    hits = []
    for raw in found:
        hexed = raw.hex()
        if any(hexed in run for run in hex_runs):
            hits.append(f"hex {hexed[:12]}…")
        for b64 in {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}:
            if any(b64.rstrip("=") in run for run in b64_runs):
                hits.append(f"base64 {b64[:12]}…")
    return hits


def check_one_contract_record_per_line(logs: str) -> None:
    """The whole log of the run: contract records and supervisord's own lines only, the verbose levels really
    on, and no error of the worker's."""
    # One contract record per line; only supervisord's own lines are not JSON; no two records merged.
    records = []
    for line in logs.splitlines():
        if line.startswith("{"):
            record = json.loads(line)  # a merged line ("...}{...") would not parse
            assert list(record)[:4] == ["timestamp", "level", "event", "program"], line[:200]
            assert record["level"] in LEVELS and record["program"] in PROGRAMS, line[:200]
            assert re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", record["event"]), line[:200]
            assert len(line.encode()) + 1 <= 4096
            records.append(record)
        else:
            assert SUPERVISORD_LINE.match(line), f"not a contract record nor a supervisord line: {line[:200]}"
    seen = {r["program"] for r in records}
    assert {"gateway", "worker", "emulator"} <= seen
    # The verbose levels were really on: Baileys' trace and libsignal's console went through the logger.
    events = {(r["program"], r["event"]) for r in records}
    assert ("worker", "baileys.log") in events and ("worker", "libsignal.console") in events
    # Expected conditions are not errors: the 515 after pairing, a QR.
    assert not [r for r in records if r["level"] in ("error", "critical") and r["program"] == "worker"], \
        [r for r in records if r["level"] in ("error", "critical") and r["program"] == "worker"][:3]


def test_a_whole_sandbox_flow_at_debug_logs_no_secret(make_stack):
    stack = make_stack({
        "WA_LOG_LEVEL": "debug", "WA_BAILEYS_LOG_LEVEL": "trace", "WA_EMULATOR_LOG_LEVEL": "trace",
    }, sandbox=True)
    session_dir = stack.data_dir / "session"
    texts = {name: distinctive_text(name) for name in ("Quokka", "Wombat", "Numbat")}

    # Pair: the QR's secret part is what a phone scans.
    status = stack.post("/connect").json()
    if status["state"] != "qr":
        status = stack.wait_state("qr", 20)
    qr = status["qr"]
    assert stack.emu("POST", "/phone/scan", {"phone_number": PHONE, "qr": qr}).status == 200
    stack.wait_state("connected", 30)
    assert is_registered(session_dir)
    store_secrets = secret_bytes(session_dir)

    # Send and receive.
    sent = stack.post("/send", {"phone_number": CONTACT, "message": texts["Quokka"]})
    assert sent.status == 200, sent.raw
    wait_for(lambda: any(m["id"] == sent.json()["whatsapp_id"]
                         for m in stack.emu("GET", f"/contacts/{CONTACT}/messages").json()),
             15, "the message at the contact")
    incoming = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": texts["Wombat"]})
    assert incoming.status == 200, incoming.raw
    stack.wait_event(lambda e: e["type"] == "message.received" and e["whatsapp_id"] == incoming.json()["id"], 15,
                     "the inbound message")

    # Restarts: the worker killed, then the whole stack.
    old = stack.health()["worker"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: stack.health()["worker"]["pid"] not in (None, old), 30, "a new worker")
    stack.wait_state("connected", 30)
    assert stack.stop() == 0
    stack.start()
    stack.wait_state("connected", 30)
    sent = stack.post("/send", {"phone_number": CONTACT, "message": texts["Numbat"]})
    assert sent.status == 200, sent.raw
    wait_for(lambda: any(m["id"] == sent.json()["whatsapp_id"]
                         for m in stack.emu("GET", f"/contacts/{CONTACT}/messages").json()),
             15, "the second message at the contact")
    stack.wait_event(lambda e: e["type"] == "message.status" and e["whatsapp_id"] == sent.json()["whatsapp_id"], 15,
                     "a receipt")

    # The store again (new sessions and keys since), then logout deletes it.
    store_secrets |= secret_bytes(session_dir)
    assert stack.post("/disconnect").json()["unlinked"] is True
    assert stack.stop() == 0
    logs = stack.logs()

    assert len(store_secrets) > 100  # the identity, pre-keys, signed pre-key, sessions, sender keys...
    assert find_secrets(logs, store_secrets) == []
    qr_secret = qr.split("#", 1)[1]
    for part in [qr_secret, *qr_secret.split(",")]:
        if len(part) >= 8:
            assert part not in logs, f"QR secret part {part[:6]}… in the logs"
    assert stack.api_key not in logs
    for text in texts.values():
        for form in text_forms(text):
            assert form not in logs, f"message text {form[:12]}… in the logs"

    check_one_contract_record_per_line(logs)
