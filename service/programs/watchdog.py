"""The watchdog: a supervisord event listener that owns the restart policy of every program.

supervisord restarts a program that exits while RUNNING, but after ``startretries`` quick exits it gives up
for good (FATAL). This listener, a program of its own under supervisord (so it survives any other program,
the gateway included), brings a FATAL program back with ``startProcess`` after a delay that starts at
``WA_WATCHDOG_INITIAL_DELAY``, doubles per attempt and is capped at ``WA_WATCHDOG_MAX_DELAY``; a program
that then stays up for the cap, counted from when it last entered RUNNING, starts from the short delay
again. That is decided when the run ends (or on the timer while it lasts), not at the next FATAL: a storm
usually begins with a few short runs (killed while RUNNING, supervisord restarts it at once), and each of
them used to replace the long run that came before, so the delay almost never came back down.

A program killed every few seconds is killed mostly inside its ``startsecs`` (2 s for the gateway, 3 s for
a worker): to supervisord a failed start, four in a row make it FATAL, and neither supervisord nor this
listener can tell that from a program crashing at start. So its delay grows to the cap like any crash
loop's, and comes back to the short one once it has stayed up for the cap. Kills that land while it is
RUNNING cost nothing here: supervisord restarts it at once. A program the operator stopped
(STOPPED) is never restarted. A program that reports a configuration error (see ``config_error.py``) is
never restarted either: the listener shuts supervisord down so the failure is visible.

Protocol (supervisord's eventlistener): write ``READY``, read a header line and its payload, answer
``RESULT 2\\nOK``. stdout is that channel, so logs go to stderr. Timers run between events: the loop
waits on stdin with a timeout, so a pending restart never blocks event handling and vice versa.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from supervisor import childutils

from service import config_error
from service.logging_setup import configure_logging
from service.programs import orphans
from service.settings import Settings, SettingsError

PROGRAM = "watchdog"
STATE_FILE = "watchdog.json"
log = structlog.get_logger(PROGRAM)


@dataclass
class ProgramPolicy:
    """What the watchdog knows and plans for one program (also what /health shows)."""

    state: str = "UNKNOWN"
    restarts: int = 0
    next_delay_seconds: float = 0.0
    next_attempt_at: float | None = None  # wall clock, for humans reading /health
    last_restart_at: float | None = None
    last_error: str | None = None
    running_since: float | None = None


class Watchdog:
    # rpc: supervisord's XML-RPC proxy (childutils.getRPCInterface; supervisor is untyped).
    def __init__(self, settings: Settings, rpc: Any, clock: Callable[[], float] = time.time):
        self.initial = settings.watchdog_initial_delay
        self.cap = settings.watchdog_max_delay
        self.run_dir = settings.run_dir
        self.rpc = rpc
        self.clock = clock
        self.programs: dict[str, ProgramPolicy] = {}
        self.shutting_down = False

    def policy(self, name: str) -> ProgramPolicy:
        if name not in self.programs:
            self.programs[name] = ProgramPolicy(next_delay_seconds=self.initial)
        return self.programs[name]

    # --- events ------------------------------------------------------------------------------
    def on_event(self, event_name: str, payload: dict[str, str]) -> None:
        if not event_name.startswith("PROCESS_STATE_") or self.shutting_down:
            return
        process = payload.get("processname", "")
        if not process or process == PROGRAM:
            return
        group = payload.get("groupname") or process
        # A process of a group with several (the worker shards) is `group:process` to supervisord.
        name = process if group == process else f"{group}:{process}"
        state = event_name.removeprefix("PROCESS_STATE_")
        policy = self.policy(name)
        now = self.clock()
        self.settle_uptime(name, policy, now)  # the run that ends here counts, however short the next
        policy.state = state
        policy.running_since = now if state == "RUNNING" else None
        if state in {"BACKOFF", "EXITED", "FATAL"} and self.config_error(group):
            return
        if state == "FATAL":
            policy.next_attempt_at = now + policy.next_delay_seconds
            log.error("watchdog.program_fatal", target=name, retry_in_seconds=policy.next_delay_seconds)
        elif state in {"STOPPED", "RUNNING", "STARTING"} and policy.next_attempt_at is not None:
            # The operator (or someone) acted first: the planned restart is no longer ours to do.
            policy.next_attempt_at = None
            log.info("watchdog.restart_cancelled", target=name, state=state)
        self.save()

    def settle_uptime(self, name: str, policy: ProgramPolicy, now: float) -> bool:
        """A program up for the cap since it last entered RUNNING is past its storm: the next FATAL waits
        the short delay again. Checked on its every event (leaving RUNNING is one) and on the timer.
        Whether it reset the delay now."""
        if policy.running_since is None or now - policy.running_since < self.cap:
            return False
        if policy.next_delay_seconds == self.initial:
            return False
        policy.next_delay_seconds = self.initial
        log.info("watchdog.delay_reset", target=name, up_seconds=round(now - policy.running_since, 1),
                 next_delay_seconds=self.initial)
        return True

    def config_error(self, name: str) -> bool:
        found = config_error.read(config_error.error_file(self.run_dir, name))
        if found is None:
            return False
        self.shutting_down = True
        reason = f"{name}: {found['reason']}"
        log.critical("watchdog.config_error", target=name, reason=found["reason"],
                     action="shutting down supervisord; fix the setting and start again")
        try:
            config_error.write_private(self.run_dir / config_error.SHUTDOWN_REASON, json.dumps(
                {"program": name, "reason": reason}))
        except OSError as exc:
            log.error("watchdog.reason_not_saved", error=str(exc))
        try:
            self.rpc.supervisor.shutdown()
        except Exception as exc:  # supervisord already going away
            log.error("watchdog.shutdown_failed", error=str(exc))
        return True

    # --- timers ------------------------------------------------------------------------------
    def next_due(self) -> float | None:
        """When the loop must wake: a planned restart, or a long-running program's delay to reset."""
        due = [p.next_attempt_at for p in self.programs.values() if p.next_attempt_at is not None]
        due += [p.running_since + self.cap for p in self.programs.values()
                if p.running_since is not None and p.next_delay_seconds != self.initial]
        return min(due) if due else None

    def run_due(self) -> None:
        now = self.clock()
        changed = False
        for name, policy in self.programs.items():
            changed |= self.settle_uptime(name, policy, now)
            if policy.next_attempt_at is None or policy.next_attempt_at > now or self.shutting_down:
                continue
            policy.next_attempt_at = None
            changed = True
            try:
                current = self.rpc.supervisor.getProcessInfo(name)["statename"]
            except Exception as exc:
                current = "UNKNOWN"
                policy.last_error = str(exc)
            if current != "FATAL":
                log.info("watchdog.restart_skipped", target=name, state=current)
                continue
            policy.restarts += 1
            policy.last_restart_at = now
            policy.next_delay_seconds = min(policy.next_delay_seconds * 2, self.cap)
            log.warning("watchdog.restart", target=name, attempt=policy.restarts,
                        next_delay_seconds=policy.next_delay_seconds)
            try:
                self.rpc.supervisor.startProcess(name, False)
                policy.last_error = None
            except Exception as exc:
                policy.last_error = str(exc)[:200]
                log.error("watchdog.restart_failed", target=name, error=policy.last_error)
        if changed:  # the loop also wakes just to check its parent: no write for nothing
            self.save()

    def save(self) -> None:
        data = {name: asdict(p) for name, p in self.programs.items()}
        try:
            config_error.write_private(self.run_dir / STATE_FILE, json.dumps(data))
        except OSError as exc:
            log.warning("watchdog.state_not_saved", error=str(exc))


class EventChannel:
    """supervisord's listener protocol on raw file descriptors (no buffering that select cannot see)."""

    def __init__(self, fd_in: int, fd_out: int):
        self.fd_in, self.fd_out = fd_in, fd_out
        self.buffer = b""

    def ready(self) -> None:
        os.write(self.fd_out, b"READY\n")

    def ok(self) -> None:
        os.write(self.fd_out, b"RESULT 2\nOK")

    def _fill(self) -> None:
        chunk = os.read(self.fd_in, 65536)
        if not chunk:
            raise EOFError("supervisord closed the event channel")
        self.buffer += chunk

    def read_event(self) -> tuple[dict[str, str], dict[str, str]]:
        while b"\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\n", 1)
        header = dict(token.split(":", 1) for token in line.decode().split())
        length = int(header.get("len", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        first = body.decode(errors="replace").split("\n", 1)[0]
        payload = dict(token.split(":", 1) for token in first.split() if ":" in token)
        return header, payload

    def wait(self, timeout: float | None) -> bool:
        if self.buffer:
            return True
        readable, _, _ = select.select([self.fd_in], [], [], timeout)
        return bool(readable)


def main() -> int:
    # With supervisord gone there is nothing to watch: SIGTERM from the kernel, else the poll below.
    parent = orphans.ParentWatch(signal.SIGTERM)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        # The launcher checks these settings before supervisord starts; this is a hand-made start.
        return config_error.report(PROGRAM, str(exc))
    configure_logging(program=PROGRAM, log_format=settings.log_format, log_level=settings.log_level,
                      fd=sys.stderr.fileno())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    rpc = childutils.getRPCInterface(os.environ)
    dog = Watchdog(settings, rpc)
    channel = EventChannel(sys.stdin.fileno(), sys.stdout.fileno())
    log.info("watchdog.started", initial_delay_seconds=dog.initial, max_delay_seconds=dog.cap)
    channel.ready()
    try:
        while not parent.orphaned():
            due = dog.next_due()
            timeout = orphans.POLL_SECONDS  # also how often it checks that supervisord is still its parent
            if due is not None:
                timeout = min(timeout, max(0.0, due - time.time()))
            if channel.wait(timeout):
                header, payload = channel.read_event()
                try:
                    dog.on_event(header.get("eventname", ""), payload)
                finally:
                    channel.ok()
                    channel.ready()
            dog.run_due()
        log.warning("watchdog.orphaned", parent_at_start=parent.parent, parent_now=os.getppid())
    except EOFError:
        pass  # supervisord closed the channel: it is stopping, or gone
    # The kernel's SIGTERM for a dead supervisord may come while this exits; at interpreter shutdown the
    # handler above is gone and it would end this clean exit as a kill.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return 0


if __name__ == "__main__":
    sys.exit(main())
