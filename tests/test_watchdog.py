"""Nothing left FATAL, no silent hang: the watchdog listener and the configuration-error exit.

The schedule itself (delays, doubling, cap, reset, operator stops) is checked on the ``Watchdog`` class with a
fake clock and a fake of supervisord's XML-RPC; everything else runs the real launcher and the real supervisord
with the shipped conf.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from datetime import datetime

import pytest

from service.programs.watchdog import Watchdog
from service.settings import Settings
from tests.stack import BIN, REPO, Stack, wait_for


# --- the schedule, on the class ---------------------------------------------------------------
class FakeSupervisor:
    def __init__(self):
        self.states: dict[str, str] = {}
        self.started: list[tuple[str, float]] = []
        self.shutdowns = 0
        self.clock = None

    def getProcessInfo(self, name):  # noqa: N802 (supervisord's XML-RPC names)
        return {"statename": self.states.get(name, "FATAL")}

    def startProcess(self, name, wait):  # noqa: N802
        self.started.append((name, self.clock.now))
        self.states[name] = "STARTING"
        return True

    def shutdown(self):
        self.shutdowns += 1
        return True


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def dog(tmp_path):
    settings = Settings.from_env({
        "WA_DATA_DIR": str(tmp_path), "WA_RUN_DIR": str(tmp_path),
        "WA_WATCHDOG_INITIAL_DELAY": "10", "WA_WATCHDOG_MAX_DELAY": "40",
    })
    clock = FakeClock()
    rpc = type("Rpc", (), {})()
    rpc.supervisor = FakeSupervisor()
    rpc.supervisor.clock = clock
    return Watchdog(settings, rpc, clock=clock), clock, rpc.supervisor


def fatal(dog, supervisor, name="worker"):
    supervisor.states[name] = "FATAL"
    dog.on_event("PROCESS_STATE_FATAL", {"processname": name})


def advance_until_restart(dog, clock, supervisor, step=0.5, limit=1000) -> float:
    """Seconds from now until the watchdog calls startProcess."""
    before, start = len(supervisor.started), clock.now
    for _ in range(int(limit / step)):
        dog.run_due()
        if len(supervisor.started) > before:
            return clock.now - start
        clock.now += step
    raise AssertionError("the watchdog never restarted the program")


def test_fatal_program_is_restarted_after_a_doubling_capped_delay(dog):
    dog, clock, supervisor = dog
    waited = []
    for _ in range(5):
        fatal(dog, supervisor)
        waited.append(advance_until_restart(dog, clock, supervisor))
    assert waited == [10, 20, 40, 40, 40]
    saved = json.loads((dog.run_dir / "watchdog.json").read_text())["worker"]
    assert saved["restarts"] == 5 and saved["next_delay_seconds"] == 40


def test_a_program_that_stayed_up_longer_than_the_cap_starts_from_the_short_delay(dog):
    dog, clock, supervisor = dog
    for _ in range(3):
        fatal(dog, supervisor)
        advance_until_restart(dog, clock, supervisor)
    dog.on_event("PROCESS_STATE_RUNNING", {"processname": "worker"})
    clock.now += 41  # up longer than the cap
    fatal(dog, supervisor)
    assert advance_until_restart(dog, clock, supervisor) == 10
    # A short run does not reset it.
    dog.on_event("PROCESS_STATE_RUNNING", {"processname": "worker"})
    clock.now += 5
    fatal(dog, supervisor)
    assert advance_until_restart(dog, clock, supervisor) == 20


def replay(dog, clock, supervisor, steps, name="worker"):
    """supervisord's events in order, as it sends them; a number lets that many seconds pass first."""
    for step in steps:
        if isinstance(step, (int, float)):
            clock.now += step
            dog.run_due()
        else:
            supervisor.states[name] = step
            dog.on_event(f"PROCESS_STATE_{step}", {"processname": name})


# Killed while RUNNING: supervisord restarts it at once, and it stays up 3 s (a worker's startsecs) and a bit.
SHORT_RUN = ["EXITED", "STARTING", 3.2, "RUNNING", 1.5]
# Then four starts that die inside startsecs, with supervisord's backoff between them, and FATAL.
FAILED_STARTS = ["EXITED", "STARTING", 0.3, "BACKOFF", 1, "STARTING", 0.3, "BACKOFF", 2, "STARTING", 0.3,
                 "BACKOFF", 3, "STARTING", 0.3, "BACKOFF", "FATAL"]


def grow_to_the_cap(dog, clock, supervisor):
    for _ in range(3):  # a crash storm: FATAL, restarted by the watchdog, failing again
        fatal(dog, supervisor)
        advance_until_restart(dog, clock, supervisor)
        replay(dog, clock, supervisor, ["STARTING", 0.3, "BACKOFF"])
    assert dog.programs["worker"].next_delay_seconds == 40


def test_a_storm_long_after_the_last_starts_short_even_when_it_begins_with_short_runs(dog):
    """The storm of the issue: a long run, then kills while RUNNING (short runs), then failed starts. The
    long run is what counts: measured per run from RUNNING, not from the last RUNNING before the FATAL."""
    dog, clock, supervisor = dog
    grow_to_the_cap(dog, clock, supervisor)
    fatal(dog, supervisor)
    advance_until_restart(dog, clock, supervisor)
    replay(dog, clock, supervisor, ["STARTING", 3.2, "RUNNING", 45])  # up longer than the cap (40)
    # Already while it runs: what /health shows is the short delay again.
    assert json.loads((dog.run_dir / "watchdog.json").read_text())["worker"]["next_delay_seconds"] == 10
    replay(dog, clock, supervisor, SHORT_RUN + SHORT_RUN + FAILED_STARTS)
    assert advance_until_restart(dog, clock, supervisor) == 10


def test_the_cap_reached_in_one_run_counts_even_without_the_timer(dog):
    """No timer tick during the long run (the loop slept): the run is judged when it ends."""
    dog, clock, supervisor = dog
    grow_to_the_cap(dog, clock, supervisor)
    fatal(dog, supervisor)
    advance_until_restart(dog, clock, supervisor)
    replay(dog, clock, supervisor, ["STARTING", "RUNNING"])
    clock.now += 41  # no run_due meanwhile
    replay(dog, clock, supervisor, SHORT_RUN + FAILED_STARTS)
    assert advance_until_restart(dog, clock, supervisor) == 10


def test_a_program_killed_every_two_seconds_keeps_backing_off(dog):
    """Short runs never add up to a long one: a program killed every 2 s is, to supervisord, one whose
    starts fail; its delay grows to the cap however long the kills go on, and resets once they stop."""
    dog, clock, supervisor = dog
    waited = []
    for _ in range(4):
        replay(dog, clock, supervisor, ["STARTING", 2.1, "RUNNING", 0.5] + SHORT_RUN * 10 + FAILED_STARTS)
        waited.append(advance_until_restart(dog, clock, supervisor))
    assert waited == [10, 20, 40, 40]
    replay(dog, clock, supervisor, ["STARTING", 3.2, "RUNNING", 40] + FAILED_STARTS)
    assert advance_until_restart(dog, clock, supervisor) == 10


def test_a_program_the_operator_stopped_or_started_is_left_alone(dog):
    dog, clock, supervisor = dog
    fatal(dog, supervisor)
    dog.on_event("PROCESS_STATE_STOPPED", {"processname": "worker"})
    supervisor.states["worker"] = "STOPPED"
    clock.now += 1000
    dog.run_due()
    assert supervisor.started == []
    # FATAL again, but by the time the delay is over the operator has started it: no second start.
    fatal(dog, supervisor)
    supervisor.states["worker"] = "RUNNING"
    clock.now += 1000
    dog.run_due()
    assert supervisor.started == []


def test_programs_have_their_own_schedules_and_the_watchdog_ignores_itself(dog):
    dog, clock, supervisor = dog
    fatal(dog, supervisor, "worker")
    advance_until_restart(dog, clock, supervisor)
    fatal(dog, supervisor, "gateway")
    assert advance_until_restart(dog, clock, supervisor) == 10
    dog.on_event("PROCESS_STATE_FATAL", {"processname": "watchdog"})
    assert "watchdog" not in dog.programs


def test_a_configuration_error_shuts_supervisord_down_instead_of_restarting(dog):
    dog, clock, supervisor = dog
    (dog.run_dir / "config-error.worker").write_text(json.dumps(
        {"program": "worker", "reason": "WA_SERVER_URL must be a ws:// or wss:// URL"}))
    dog.on_event("PROCESS_STATE_BACKOFF", {"processname": "worker"})
    assert supervisor.shutdowns == 1
    reason = json.loads((dog.run_dir / "shutdown-reason").read_text())
    assert reason["reason"] == "worker: WA_SERVER_URL must be a ws:// or wss:// URL"
    assert oct((dog.run_dir / "shutdown-reason").stat().st_mode & 0o777) == "0o600"
    fatal(dog, supervisor)
    clock.now += 1000
    dog.run_due()
    assert supervisor.started == []


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
    wait_for(lambda: len(records(stack, "watchdog.restart", target="worker:worker-0")) >= 3, 90, "three watchdog restarts")
    fatals = records(stack, "watchdog.program_fatal", target="worker:worker-0")
    restarts = records(stack, "watchdog.restart", target="worker:worker-0")
    assert [f["retry_in_seconds"] for f in fatals[:3]] == [1, 2, 2]  # doubling, then the cap
    for fatal_record, restart in zip(fatals, restarts):
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
