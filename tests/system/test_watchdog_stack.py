"""Nothing left FATAL, no silent hang: the watchdog listener and the configuration-error exit.

The schedule itself (delays, doubling, cap, reset, operator stops) is checked on the ``Watchdog`` class with a
fake clock and a fake of supervisord's XML-RPC; everything else runs the real launcher and the real supervisord
with the shipped conf.

(The part without a stack is in tests/unit/test_watchdog.py.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from datetime import datetime

import pytest

from tests.helpers.stack import BIN, REPO, Stack, wait_for


# --- the real stack ---------------------------------------------------------------------------
def records(stack, event: str, **match) -> list[dict]:
    return [r for r in stack.log_events()
            if r.get("event") == event and all(r.get(k) == v for k, v in match.items())]


def at(record: dict) -> float:
    return datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()


@pytest.mark.system
def test_gateway_killed_five_times_inside_its_startsecs_serves_again(make_stack):
    stack = make_stack({"WA_WATCHDOG_INITIAL_DELAY": "2", "WA_WATCHDOG_MAX_DELAY": "8"})
    killed = set()

    def kill_next():
        info = stack.process_info("gateway")
        if info["statename"] == "FATAL":
            return True
        pid = info["pid"]
        if pid and pid not in killed:
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        return False

    wait_for(kill_next, 60, "the gateway FATAL after quick kills", interval=0.05)
    assert len(killed) >= 4
    assert _refused(stack)  # the API is down, and nothing inside the gateway can bring it back
    # The watchdog (not the gateway, which is down) brings it back after its first delay.
    wait_for(lambda: stack.get("/health/live", timeout=1).status == 200, 30, "the gateway serving again")
    fatal_record = records(stack, "watchdog.program_fatal", target="gateway")[0]
    restart = records(stack, "watchdog.restart", target="gateway")[0]
    assert fatal_record["retry_in_seconds"] == 2
    assert at(restart) - at(fatal_record) >= 2 - 0.05


def _refused(stack) -> bool:
    try:
        socket.create_connection(("127.0.0.1", stack.port), timeout=1).close()
        return False
    except OSError:
        return True


@pytest.mark.system
def test_worker_failing_every_start_is_restarted_on_a_capped_doubling_schedule(make_stack):
    stack = make_stack({"WA_WATCHDOG_INITIAL_DELAY": "1", "WA_WATCHDOG_MAX_DELAY": "2"}, start=False)
    # A directory where the worker's socket goes: it cannot start, and it is not a configuration error.
    blocker = stack.run_dir / "worker-0.sock"
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("x")
    stack.start(wait=False)
    wait_for(lambda: len(records(stack, "watchdog.restart", target="worker:worker-0")) >= 3, 90,
             "three watchdog restarts")
    fatals = records(stack, "watchdog.program_fatal", target="worker:worker-0")
    restarts = records(stack, "watchdog.restart", target="worker:worker-0")
    assert [f["retry_in_seconds"] for f in fatals[:3]] == [1, 2, 2]  # doubling, then the cap
    for fatal_record, restart in zip(fatals, restarts, strict=False):
        assert at(restart) - at(fatal_record) >= fatal_record["retry_in_seconds"] - 0.05
    health = stack.health()
    assert health["worker"]["watchdog"]["restarts"] >= 3
    # 1 start + 3 retries per FATAL round, and no more rounds than the watchdog's restarts.
    spawns = stack.logs().count("spawned: 'worker'")
    assert spawns <= 4 * (len(restarts) + 1), spawns
    # Once the cause is gone, the next restart sticks.
    (blocker / "keep").unlink()
    blocker.rmdir()
    wait_for(lambda: stack.health()["worker"]["state"] == "RUNNING", 30, "worker RUNNING again")


@pytest.mark.system
def test_a_worker_the_operator_stopped_is_not_restarted(make_stack):
    stack = make_stack({"WA_WATCHDOG_INITIAL_DELAY": "0.5"})
    assert "worker:worker-0: stopped" in stack.ctl("stop", "worker:worker-0").stdout
    # Four times the watchdog's first delay: a wrong restart would have happened by now.
    time.sleep(2)
    assert "STOPPED" in stack.ctl("status", "worker:worker-0").stdout
    assert records(stack, "watchdog.restart", target="worker:worker-0") == []
    assert "worker:worker-0: started" in stack.ctl("start", "worker:worker-0").stdout


def launcher(env_extra: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    stack = Stack(env_extra)
    try:
        return subprocess.run([str(BIN / "wa-gateway"), "run"], env=stack.env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)
    finally:
        stack.cleanup()


@pytest.mark.system
@pytest.mark.parametrize("value", ["notaport", "70000", "-1"])
def test_a_bad_port_ends_make_run_with_one_clear_line(value):
    result = launcher({"WA_PORT": value})
    assert result.returncode == 78
    assert "WA_PORT" in result.stderr and value in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.system
def test_a_port_in_use_ends_make_run_with_one_clear_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = launcher({"WA_PORT": str(busy.getsockname()[1])})
    assert result.returncode == 78
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.system
def test_a_worker_configuration_error_stops_the_stack_with_exit_78():
    started = time.monotonic()
    result = launcher({"WA_SERVER_URL": "not-a-url"}, timeout=90)
    assert result.returncode == 78, result.stdout[-2000:]
    assert "worker" in result.stderr and "WA_SERVER_URL" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    # Not restarted: supervisord's own first retry (1 s) may race the watchdog's start-up, no more.
    assert result.stdout.count("spawned: 'worker'") <= 2
    assert "gave up: worker" not in result.stdout
    assert time.monotonic() - started < 60
