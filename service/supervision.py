"""What supervisord knows about the worker, polled off the event loop, for /health and for waiting.

Restart policy is not here: the watchdog listener (``listener.py``) owns it and leaves its plan for each
program in ``<run dir>/watchdog.json``, which this module reads so that /health can show it.
"""

from __future__ import annotations

import asyncio
import json
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
    """The watchdog's plan for the worker, as it last saved it."""

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
        self._refreshed_at = 0.0

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
        self._refreshed_at = time.monotonic()
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
        snap.watchdog = self._watchdog_plan()
        return snap

    def _watchdog_plan(self) -> WatchdogState:
        try:
            plans = json.loads((self._settings.run_dir / "watchdog.json").read_text())
            plan = plans.get(self._program) or {}
        except (OSError, ValueError, AttributeError):
            plan = {}
        return WatchdogState(
            restarts=int(plan.get("restarts", 0)),
            next_delay=float(plan.get("next_delay_seconds", self._settings.watchdog_initial_delay)),
            next_attempt_at=plan.get("next_attempt_at"),
            last_restart_at=plan.get("last_restart_at"),
            last_error=plan.get("last_error"),
        )

    async def worker_may_come_up(self) -> bool:
        """Whether the worker is on its way up (a request should wait for it) rather than down for a
        while (STOPPED by the operator, FATAL until the watchdog acts): asks supervisord at most every
        half second. EXITED is on the way up: ``autorestart=true`` restarts it at once."""
        if time.monotonic() - self._refreshed_at > 0.5:
            await self.refresh()
        return self.snapshot.state in {"STARTING", "RUNNING", "BACKOFF", "EXITED"}

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

    async def run(self) -> None:
        while True:
            await self.refresh()
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
