"""What the docs promise about timeouts, request ids, log settings and bad settings (docs/configuration.md,
docs/api.md, docs/operations.md; once all in the README, hence the name), each shown on the real stack
(issue 7: a claim without a test is a claim nobody checks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tests.helpers.stack import REPO, wait_for

pytestmark = pytest.mark.system


def frozen_worker(stack):
    """SIGSTOP the real worker: its socket still accepts, but nothing answers."""
    pid = stack.health()["worker"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    return pid


def test_a_worker_that_does_not_answer_is_504_worker_timeout_after_WA_WORKER_TIMEOUT(make_stack):
    stack = make_stack({"WA_WORKER_TIMEOUT": "1"})
    pid = frozen_worker(stack)
    try:
        began = time.monotonic()
        res = stack.get("/status", headers={"X-Request-ID": "frozen-1"})
        waited = time.monotonic() - began
    finally:
        os.kill(pid, signal.SIGCONT)
    assert res.status == 504
    assert res.json() == {"error": {"code": "worker_timeout", "message": res.json()["error"]["message"],
                                    "request_id": "frozen-1"}}  # a 5xx names its request
    assert res.headers["X-Request-ID"] == "frozen-1"
    assert 1 <= waited < 10
    # One error line with context, bound to the request. The gateway's stdout reaches the log file through
    # supervisord, which may pass it on after the answer reached us: wait for the line, then count.
    def errors():
        return [r for r in stack.log_events() if r.get("event") == "http.error" and r.get("request_id") == "frozen-1"]
    wait_for(errors, 15, "the gateway's http.error line for the request")
    assert len(errors()) == 1 and errors()[0]["code"] == "worker_timeout"


@pytest.mark.parametrize("shutdown_timeout,answered", [("6", True), ("0.5", False)])
def test_WA_SHUTDOWN_TIMEOUT_gives_open_requests_time_on_sigterm(make_stack, shutdown_timeout, answered):
    """The request needs 3 s (the frozen worker's timeout): 6 s of grace let it finish, 0.5 s do not."""
    stack = make_stack({"WA_WORKER_TIMEOUT": "3", "WA_SHUTDOWN_TIMEOUT": shutdown_timeout})
    pid = frozen_worker(stack)
    result = {}

    def slow_request():
        try:
            result["res"] = stack.get("/status", timeout=20)
        except OSError as exc:  # the connection closed without an answer
            result["error"] = exc

    try:
        thread = threading.Thread(target=slow_request)
        thread.start()
        gateway = stack.process_info("gateway")["pid"]
        wait_for(lambda: any(c.laddr.port == stack.port and c.status == psutil.CONN_ESTABLISHED
                             for c in psutil.Process(gateway).net_connections("inet")),
                 5, "the request in flight at the gateway")
        os.kill(gateway, signal.SIGTERM)
        thread.join(20)
    finally:
        os.kill(pid, signal.SIGCONT)
    if answered:
        assert result["res"].status == 504 and result["res"].json()["error"]["code"] == "worker_timeout"
    else:
        assert "res" not in result and "error" in result


def test_request_ids_are_bound_in_log_lines_and_echoed_on_errors(make_stack):
    stack = make_stack()
    res = stack.get("/nope", headers={"X-Request-ID": "trace-me-42"})
    assert res.status == 404 and res.headers["X-Request-ID"] == "trace-me-42"
    res = stack.post("/send", raw=b"{bad", headers={"X-Request-ID": "trace-me-43"})
    assert res.status == 400 and res.headers["X-Request-ID"] == "trace-me-43"
    wait_for(lambda: {"trace-me-42", "trace-me-43"} <= {r.get("request_id") for r in stack.log_events()
                                                        if r.get("event") == "http.request"}, 10, "log lines")


def test_WA_LOG_FORMAT_console_and_WA_LOG_LEVEL_apply_to_every_program(make_stack):
    stack = make_stack({"WA_LOG_FORMAT": "console", "WA_LOG_LEVEL": "warning"}, sandbox=True)
    stack.get("/status")
    assert stack.get("/nope").status == 404
    stack.stop()
    lines = [line for line in stack.logs().splitlines() if line.strip()]
    assert not [line for line in lines if line.startswith("{")], "a JSON line in console mode"
    ours = [line.split() for line in lines if len(line.split()) > 3 and line.split()[2].startswith("[")]
    # warning level: the 404 is not logged (info), the sandbox trust warning is, in console form.
    assert {words[2] for words in ours} <= {"[gateway]", "[worker]", "[emulator]", "[watchdog]"}
    assert all(words[1] in {"warning", "error", "critical"} for words in ours), ours
    assert any(words[2] == "[worker]" and words[3].startswith("sandbox.trust_enabled") for words in ours)


def test_the_gateway_process_itself_exits_78_with_gateway_bad_setting():
    result = subprocess.run([sys.executable, "-m", "service"], cwd=REPO, capture_output=True, text=True,
                            timeout=30, env={**os.environ, "WA_PORT": "notaport", "WA_DATA_DIR": "/nonexistent-wa"})
    assert result.returncode == 78
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["event"] == "gateway.bad_setting" and "WA_PORT" in record["error"]
    assert record["program"] == "gateway" and record["level"] == "critical"
    assert "Traceback" not in result.stdout + result.stderr


def test_the_sandbox_says_loudly_that_it_trusts_a_test_root(make_stack):
    stack = make_stack(sandbox=True)
    trust = [r for r in stack.log_events() if r.get("event", "").startswith("sandbox.trust_enabled")]
    assert len(trust) == 1 and trust[0]["program"] == "worker" and trust[0]["level"] == "warning"


@pytest.mark.parametrize("root_key", ["not-base64!", "c2hvcnQ="])  # garbage, and 5 bytes
def test_a_bad_sandbox_root_key_stops_the_stack_with_exit_78(root_key):
    from tests.helpers.stack import BIN, Stack

    stack = Stack({"WA_SANDBOX_ROOT_KEY": root_key}, sandbox=True)
    try:
        result = subprocess.run([str(BIN / "wa-gateway"), "sandbox"], env=stack.env, cwd=REPO,
                                capture_output=True, text=True, timeout=90)
    finally:
        stack.cleanup()
    assert result.returncode == 78, result.stdout[-2000:]
    assert "worker" in result.stderr and "WA_SANDBOX_ROOT_KEY" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("extra", [{}, {"WA_SANDBOX": "true"}])  # `run` sets WA_SANDBOX=false whatever the env says
def test_a_sandbox_root_key_outside_the_sandbox_stops_the_stack_with_exit_78(extra):
    from tests.helpers.stack import BIN, Stack

    # a leaked sandbox setting on a production stack (its WA_SERVER_URL is even loopback): refused (issue 21)
    stack = Stack({"WA_SANDBOX_ROOT_KEY": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", **extra})
    try:
        result = subprocess.run([str(BIN / "wa-gateway"), "run"], env=stack.env, cwd=REPO,
                                capture_output=True, text=True, timeout=90)
    finally:
        stack.cleanup()
    assert result.returncode == 78, result.stdout[-2000:]
    assert "worker" in result.stderr and "WA_SANDBOX_ROOT_KEY" in result.stderr and "not the sandbox" in result.stderr
    assert "sandbox.trust_enabled" not in result.stdout
    assert "Traceback" not in result.stderr + result.stdout
