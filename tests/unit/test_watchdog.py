"""Nothing left FATAL, no silent hang: the watchdog listener and the configuration-error exit.

The schedule itself (delays, doubling, cap, reset, operator stops) is checked on the ``Watchdog`` class with a
fake clock and a fake of supervisord's XML-RPC; everything else runs the real launcher and the real supervisord
with the shipped conf.

(The whole-stack part is in tests/system/test_watchdog_stack.py.)
"""

from __future__ import annotations

import json

import pytest

from service.programs.watchdog import Watchdog
from service.settings import Settings


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


