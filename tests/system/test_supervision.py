"""The stack under real supervisord: health, restarts, FATAL + watchdog, backoff, graceful stop."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.stack import REPO, wait_for

pytestmark = pytest.mark.system


def test_health_reports_gateway_and_worker(stack):
    health = stack.health()
    assert health["uptime_seconds"] > 0
    assert health["version"]
    worker = health["worker"]
    assert worker["state"] == "RUNNING"
    assert isinstance(worker["pid"], int) and worker["pid"] > 0
    assert worker["uptime_seconds"] > 0
    assert worker["rss_bytes"] > 10_000_000  # a Node process with Baileys loaded
    assert worker["restarts"] == 0
    # Not linked to WhatsApp: still 200, but degraded, and not ready for traffic.
    assert health["status"] == "degraded"
    assert health["whatsapp"]["state"] == "stopped"
    assert stack.get("/health/live").status == 200
    ready = stack.get("/health/ready")
    assert ready.status == 503 and ready.json()["status"] == "not_ready"


def test_supervisorctl_shows_the_programs_running(stack):
    result = stack.ctl("status")
    out = result.stdout
    assert re.search(r"^gateway\s+RUNNING\s+pid \d+", out, re.M), out
    assert re.search(r"^worker:worker-0\s+RUNNING\s+pid \d+", out, re.M), out
    assert re.search(r"^watchdog\s+RUNNING\s+pid \d+", out, re.M), out
    assert "emulator" not in out  # only in sandbox mode
    assert result.returncode == 0


def test_run_dir_is_private(stack):
    assert stat_mode(stack.run_dir) == 0o700
    assert stat_mode(stack.run_dir / "worker-0.sock") & 0o077 == 0


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_kill_9_worker_is_restarted_and_gateway_keeps_answering(make_stack):
    stack = make_stack()
    old_pid = stack.health()["worker"]["pid"]
    os.kill(old_pid, signal.SIGKILL)
    live_failures = []

    def restarted():
        live = stack.get("/health/live", timeout=2)
        if live.status != 200:
            live_failures.append(live.status)
        worker = stack.health()["worker"]
        return worker["state"] == "RUNNING" and worker["pid"] != old_pid and worker

    worker = wait_for(restarted, 30, "a new worker pid")
    assert worker["restarts"] >= 1
    assert live_failures == []
    # The new worker answers through the gateway.
    assert stack.status()["state"] == "stopped"


def test_closed_server_port_reports_whatsapp_unreachable_with_growing_backoff(make_stack):
    stack = make_stack()
    status = stack.post("/connect").json()
    assert status["state"] in ("connecting", "whatsapp_unreachable")

    def three_attempts():
        s = stack.status()
        return len(s["reconnect"]["delays_ms"]) >= 4 and s

    status = wait_for(three_attempts, 30, "four reconnect attempts")
    assert status["state"] == "whatsapp_unreachable"  # tests/system/test_unreachable.py: the causes
    assert status["unreachable"]["cause"] == "refused" and status["unreachable"]["attempts"] >= 4
    assert "ECONNREFUSED" in status["last_error"]
    delays = status["reconnect"]["delays_ms"]
    assert all(b > a for a, b in zip(delays, delays[1:], strict=False)), delays
    assert stack.health()["whatsapp"]["state"] == "whatsapp_unreachable"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_both_programs_cleanly_and_keeps_session_files(make_stack, sig):
    stack = make_stack()
    stack.post("/connect")
    session_dir = stack.data_dir / "session"
    wait_for(lambda: any(session_dir.iterdir()), 10, "session files")
    before = {p.name: p.read_bytes() for p in session_dir.iterdir() if p.is_file()}

    started = time.monotonic()
    code = stack.stop(timeout=40, sig=sig)
    elapsed = time.monotonic() - started

    assert code == 0
    assert elapsed < 15, elapsed  # stopwaitsecs of each program
    logs = stack.logs()
    assert "stopped: worker-0 (exit status 0)" in logs
    assert "stopped: gateway (exit status 0)" in logs
    after = {p.name: p.read_bytes() for p in session_dir.iterdir() if p.is_file()}
    assert after.keys() >= before.keys()
    # The store still opens: the next start logs straight back in with these files.
    check = subprocess.run(
        ["node", "--input-type=module", "-e",
         "import {openAuthStore} from './node_worker/src/auth-store.js';"
         f"const s = await openAuthStore({str(session_dir)!r});"
         "console.log(s.state.creds.noiseKey ? 'ok' : 'missing'); await s.close()"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert check.stdout.strip() == "ok", check.stderr


def test_operator_can_stop_and_start_the_worker_with_supervisorctl(make_stack):
    stack = make_stack()
    assert "worker:worker-0: stopped" in stack.ctl("stop", "worker:worker-0").stdout
    stopped = wait_for(lambda: (h := stack.health())["worker"]["state"] == "STOPPED" and h, 10, "STOPPED")
    assert stopped["status"] == "degraded"
    # A stopped worker is not "starting": the gateway answers 503 at once instead of waiting for it.
    began = time.monotonic()
    assert stack.get("/status").json()["error"]["code"] == "worker_unavailable"
    assert time.monotonic() - began < 4  # below WA_WORKER_START_WAIT (5 s by default), which it would wait
    assert "worker:worker-0: started" in stack.ctl("start", "worker:worker-0").stdout
    wait_for(lambda: stack.health()["worker"]["state"] == "RUNNING", 10, "RUNNING again")
    wait_for(lambda: stack.get("/status").status == 200, 10, "the worker answering again")


def test_a_request_during_a_worker_restart_waits_for_it_instead_of_503(make_stack):
    stack = make_stack({"WA_WORKER_START_WAIT": "10"})
    old_pid = stack.health()["worker"]["pid"]
    os.kill(old_pid, signal.SIGKILL)
    # Right after the kill the worker's socket is gone; the request waits for the new worker.
    res = stack.get("/status")
    assert res.status == 200, res.raw
    assert stack.health()["worker"]["pid"] != old_pid


@pytest.mark.parametrize("sandbox", [False, True], ids=["run", "sandbox"])
def test_ctl_status_exits_0_on_a_healthy_stack_in_both_modes(make_stack, sandbox):
    stack = make_stack(sandbox=sandbox)
    env = {k: v for k, v in stack.env.items() if k != "WA_SANDBOX"}  # found without repeating the mode
    result = subprocess.run([str(REPO / ".venv" / "bin" / "wa-gateway"), "ctl", "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    names = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert names == ({"gateway", "worker:worker-0", "watchdog"} | ({"emulator"} if sandbox else set()))
    assert all(" RUNNING " in line for line in result.stdout.splitlines() if line.strip())
