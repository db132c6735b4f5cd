"""What supervisord knows about the worker, polled off the event loop, plus the FATAL watchdog.

supervisord restarts a worker that dies while RUNNING, but gives up for good (FATAL) after
``startretries`` quick failures. The watchdog brings a FATAL worker back with ``startProcess`` after
a delay that starts at ``WA_WATCHDOG_INITIAL_DELAY``, doubles and is capped, so a worker that can
never start is retried forever without a restart storm.
"""

from __future__ import annotations

import asyncio
import time
import xmlrpc.client
from dataclasses import dataclass, field

import psutil
import structlog
from supervisor.xmlrpc import SupervisorTransport

from .settings import Settings

log = structlog.get_logger("gateway.supervision")


@dataclass
class WatchdogState:
    restarts: int = 0
    next_delay: float = 0.0
    next_attempt_at: float | None = None
    last_restart_at: float | None = None
    last_error: str | None = None


@dataclass
class WorkerSnapshot:
    state: str = "UNKNOWN"
    pid: int | None = None
    started_at: float | None = None
    description: str = ""
    spawn_error: str = ""
    exit_status: int | None = None
    restarts: int = 0
    error: str | None = None
    watchdog: WatchdogState = field(default_factory=WatchdogState)


class SupervisorMonitor:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._program = settings.worker_program
        self._socket = str(settings.supervisor_socket)
        self.snapshot = WorkerSnapshot()
        self.snapshot.watchdog.next_delay = settings.watchdog_initial_delay
        self._last_pid: int | None = None
        self._process: psutil.Process | None = None
        self._task: asyncio.Task | None = None

    def _proxy(self) -> xmlrpc.client.ServerProxy:
        # One proxy per call: the transport is not thread-safe and calls run in worker threads.
        return xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, f"unix://{self._socket}")
        )

    async def _call(self, method: str, *args):
        def call():
            return getattr(self._proxy().supervisor, method)(*args)

        return await asyncio.to_thread(call)

    async def refresh(self) -> WorkerSnapshot:
        snap = self.snapshot
        try:
            info = await self._call("getProcessInfo", self._program)
        except Exception as exc:  # supervisord down, socket missing, fault
            snap.state, snap.pid, snap.error = "UNKNOWN", None, f"supervisord unreachable: {exc}"
            return snap
        snap.error = None
        snap.state = info["statename"]
        snap.pid = info["pid"] or None
        snap.started_at = float(info["start"]) if info["start"] else None
        snap.description = info.get("description", "")
        snap.spawn_error = info.get("spawnerr", "")
        snap.exit_status = info.get("exitstatus")
        if snap.pid and self._last_pid and snap.pid != self._last_pid:
            snap.restarts += 1
            log.warning("worker.restarted", old_pid=self._last_pid, new_pid=snap.pid)
        if snap.pid:
            self._last_pid = snap.pid
        return snap

    def process_usage(self) -> tuple[int | None, float | None]:
        """RSS and CPU% of the worker; one psutil.Process per pid so cpu_percent has a baseline."""
        pid = self.snapshot.pid
        if pid is None:
            self._process = None
            return None, None
        try:
            if self._process is None or self._process.pid != pid:
                self._process = psutil.Process(pid)
                self._process.cpu_percent(None)
            with self._process.oneshot():
                return self._process.memory_info().rss, self._process.cpu_percent(None)
        except psutil.Error:
            self._process = None
            return None, None

    async def _watchdog_step(self) -> None:
        snap, dog = self.snapshot, self.snapshot.watchdog
        if snap.state != "FATAL":
            if snap.state == "RUNNING" and dog.next_attempt_at is not None:
                dog.next_attempt_at = None
            # A worker that has stayed up for a while earns a fresh, short delay again.
            if (
                snap.state == "RUNNING" and snap.started_at
                and time.time() - snap.started_at > self._settings.watchdog_max_delay
            ):
                dog.next_delay = self._settings.watchdog_initial_delay
            return
        now = time.monotonic()
        if dog.next_attempt_at is None:
            dog.next_attempt_at = now + dog.next_delay
            log.error(
                "worker.fatal", reason=snap.description or snap.spawn_error,
                retry_in_seconds=dog.next_delay,
            )
            return
        if now < dog.next_attempt_at:
            return
        dog.restarts += 1
        dog.last_restart_at = time.time()
        dog.next_attempt_at = None
        dog.next_delay = min(dog.next_delay * 2, self._settings.watchdog_max_delay)
        log.warning("watchdog.restart", attempt=dog.restarts, next_delay_seconds=dog.next_delay)
        try:
            await self._call("startProcess", self._program, False)
            dog.last_error = None
        except Exception as exc:
            dog.last_error = str(exc)
            log.error("watchdog.restart_failed", error=str(exc))

    async def run(self) -> None:
        while True:
            await self.refresh()
            await self._watchdog_step()
            await asyncio.sleep(self._settings.watchdog_interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="supervisor-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
