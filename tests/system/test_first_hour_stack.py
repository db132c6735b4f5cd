"""A newcomer's first hour on a real sandbox stack (issue 23): what the stream and the answers say.

One stack, started as `make sandbox` starts it with no WA_API_KEY (the launcher generates the key file):
the launcher's own lines are JSON records like every program's, naming the sandbox's `api-key --sandbox`
(never the key); supervisord logs no CRIT (not "running as root", not "without any HTTP authentication");
a 401 names the command that prints the key; polls (/status, /health, /metrics, /events) log at debug
while real operations stay at info; one worker line per inbound message; the emulator's phone scans the
QR of an account other than `default`; a second stack on the same run dir says who holds it; `ctl`
without a stack says so in one line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import BIN, REPO, free_port, wait_for

SUPERVISORD_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


@pytest.fixture(scope="module")
def sandbox():
    from tests.helpers.stack import Stack

    stack = Stack({"WA_API_KEY": ""}, sandbox=True)  # as `make sandbox`: the launcher generates the key
    try:
        stack.start()
        key = (stack.data_dir / "api-key").read_text().split()[0]
        stack.env["WA_API_KEY"] = key  # from now on the helpers send it
        yield stack
    finally:
        stack.cleanup()


def _records(stack) -> list[dict]:
    return [json.loads(line) for line in stack.logs().splitlines() if line.startswith("{")]


@pytest.mark.system
def test_the_stream_is_records_only_with_the_launchers_line_naming_the_sandbox_command_and_no_crit(sandbox):
    key = sandbox.api_key
    lines = sandbox.logs().splitlines()
    stray = [line for line in lines if not line.startswith("{") and not SUPERVISORD_LINE.match(line)]
    assert not stray, stray  # the launcher's lines are records too
    assert not [line for line in lines if " CRIT " in line], [line for line in lines if " CRIT " in line]
    (generated,) = [r for r in _records(sandbox) if r["event"] == "launcher.api_key_generated"]
    assert list(generated)[:4] == ["timestamp", "level", "event", "program"] and generated["program"] == "launcher"
    assert generated["print_with"] == ".venv/bin/wa-gateway api-key --sandbox", generated
    assert "`.venv/bin/wa-gateway api-key --sandbox`" in generated["message"]
    assert key not in sandbox.logs()


@pytest.mark.system
def test_a_401_names_the_command_that_prints_the_sandbox_key(sandbox):
    for headers, why in (({"X-API-Key": None}, "missing"), ({"X-API-Key": "not-the-key"}, "wrong")):
        res = sandbox.get("/status", headers=headers)
        assert res.status == 401
        message = res.json()["error"]["message"]
        assert f"The key is {why}" in message and "`.venv/bin/wa-gateway api-key --sandbox` prints" in message
    # The client's selftest tells a refused key from an unreachable gateway, and says what prints the key.
    env = {**os.environ, "WA_API_KEY": "not-the-key", "WA_GATEWAY_URL": sandbox.base}
    refused = subprocess.run([str(BIN / "wa-gateway-client"), "selftest"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 1
    assert "PASS  reachable" in refused.stdout, refused.stdout
    assert "FAIL  key accepted" in refused.stdout and "unauthorized: the key is wrong or missing (print it with" \
        in refused.stdout, refused.stdout
    env["WA_GATEWAY_URL"] = f"http://127.0.0.1:{free_port()}"
    gone = subprocess.run([str(BIN / "wa-gateway-client"), "selftest"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert "FAIL  reachable" in gone.stdout and "unreachable:" in gone.stdout and "unauthorized" not in gone.stdout


@pytest.mark.system
def test_polls_log_at_debug_operations_at_info_and_one_worker_line_per_inbound_message(sandbox):
    pair(sandbox)  # POST /connect, then /status polls until connected
    for path in ("/status", "/health", "/health/live", "/metrics", "/events?limit=1", "/accounts/default/status"):
        assert sandbox.get(path).status == 200, path
    incoming = sandbox.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "first hour"})
    in_id = incoming.json()["id"]
    sandbox.wait_event(lambda e: e["type"] == "message.received" and e["whatsapp_id"] == in_id, 20, "the message")
    wait_for(lambda: any(r.get("event") == "whatsapp.message" and r.get("message_id") == in_id
                         for r in _records(sandbox)), 15, "the gateway's hand-over line")
    requests = [r for r in _records(sandbox) if r["event"] == "http.request"]
    polled = [r for r in requests if r["path"] in {"/status", "/health", "/health/live", "/metrics", "/events",
                                                   "/accounts/default/status"}]
    assert not polled, polled  # at debug: not in an info stream
    assert any(r["path"] == "/connect" and r["method"] == "POST" for r in requests)  # an operation: info
    worker = [r for r in _records(sandbox) if r["program"] == "worker" and r.get("message_id") == in_id]
    assert len(worker) == 1, worker
    assert worker[0]["level"] == "info" and "first hour" not in json.dumps(worker[0])


@pytest.mark.system
def test_the_phone_scans_the_qr_of_another_account_without_being_given_it(sandbox):
    assert sandbox.post("/accounts", {"name": "sales"}).status in (200, 201)
    assert sandbox.post("/accounts/sales/connect").status == 200
    wait_for(lambda: sandbox.get("/accounts/sales/status").json()["state"] == "qr", 30, "the sales QR")
    scan = sandbox.emu("POST", "/phone/scan", {"phone_number": "+15550003333", "account": "sales"})
    assert scan.status == 200, scan.raw
    # It answers once the gateway shows the account connected: the next call a user pastes finds it linked.
    assert scan.json()["connected"] is True, scan.raw
    assert sandbox.get("/accounts/sales/status").json()["state"] == "connected"
    # The default account is linked (no QR): the 409 is true and says so.
    again = sandbox.emu("POST", "/phone/scan", {"phone_number": "+15550004444"})
    assert again.status == 409 and again.json()["error"]["code"] == "gateway_has_no_qr"
    assert "account default shows no QR code (state connected)" in again.json()["error"]["message"]


@pytest.mark.system
def test_a_second_stack_on_a_run_dir_in_use_names_the_holder_in_one_line(sandbox, tmp_path):
    port = free_port()
    env = {k: v for k, v in sandbox.env.items()}
    env.update({"WA_DATA_DIR": str(tmp_path / "other"), "WA_RUN_DIR": str(sandbox.run_dir), "WA_PORT": str(port)})
    second = subprocess.run([str(BIN / "wa-gateway"), "run"], env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 75, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and not second.stdout, second
    record = json.loads(lines[0])
    assert record["event"] == "launcher.run_dir_in_use"
    supervisord_pid = (sandbox.run_dir / "supervisord.pid").read_text().strip()
    assert f"supervisord pid {supervisord_pid} (API port {sandbox.port})" in record["message"], record
    assert str(sandbox.data_dir) in record["message"]
    assert sandbox.ctl("status").returncode == 0  # the first never noticed


def test_ctl_without_a_running_stack_says_so_in_one_line(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WA_")}, "WA_DATA_DIR": str(tmp_path / "d")}
    res = subprocess.run([str(Path(sys.executable).parent / "wa-gateway"), "ctl", "status"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 69
    assert res.stderr == (f"wa-gateway: no stack is running for data dir {tmp_path / 'd'}; start it with make run "
                          "(or make sandbox)\n"), res.stderr
    assert "Traceback" not in res.stderr and not res.stdout


@pytest.mark.system
def test_connect_prints_each_state_change_and_returns_once_linked(sandbox):
    import threading

    assert sandbox.post("/accounts", {"name": "support"}).status in (200, 201)
    env = {**os.environ, "WA_API_KEY": sandbox.api_key, "WA_GATEWAY_URL": sandbox.base}
    proc = subprocess.Popen([str(BIN / "wa-gateway-client"), "connect", "--account", "support", "--timeout", "60"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("Scan with WhatsApp" in line for line in lines), 30, "the QR and how to scan it")
        scan = sandbox.emu("POST", "/phone/scan", {"phone_number": "+15550005555", "account": "support"})
        assert scan.status == 200, scan.raw
        assert proc.wait(60) == 0, "".join(lines)
    finally:
        proc.kill()
        proc.wait()
    reader.join(5)
    said = [line.strip() for line in lines if line.strip() and not set(line.strip()) <= set("█▀▄ ")]
    assert "account support; waiting up to" in said[-2], said
    assert said[-1] == "connected as +15550005555 (account support)", said
    assert all(a != b for a, b in zip(said, said[1:], strict=False)), said  # one line per change, no repeats


@pytest.mark.system
def test_connect_says_once_why_whatsapp_is_unreachable(make_stack):
    """A server that refuses (nothing listens at WA_SERVER_URL): one line with the cause and detail, however
    many attempts the worker makes while connect waits, then the timeout."""
    stack = make_stack()
    env = {**os.environ, "WA_API_KEY": stack.api_key, "WA_GATEWAY_URL": stack.base}
    res = subprocess.run([str(BIN / "wa-gateway-client"), "connect", "--timeout", "4"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 7, res  # timed out waiting
    said = res.stdout.strip().splitlines()
    unreachable = [line for line in said if line.startswith("WhatsApp is unreachable")]
    assert len(unreachable) == 1, said
    assert unreachable[0].startswith("WhatsApp is unreachable: refused (connect ECONNREFUSED 127.0.0.1:"), said
    assert said[-1] == "not linked within 4 s (state whatsapp_unreachable)", said
