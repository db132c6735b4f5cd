"""What supervisord knows about the worker shards, polled off the event loop, for /health and for waiting.

Restart policy is not here: the watchdog listener (``listener.py``) owns it and leaves its plan for each
program in ``<run dir>/watchdog.json``, which this module reads so that /health can show it.
"""

from __future__ import annotations

import asyncio
import json
import time
import xmlrpc.client
from dataclasses import dataclass, field
from typing import Any

import psutil
import structlog

from service.programs import running
from service.settings import Settings

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
    """One ``WorkerSnapshot`` per worker shard (``worker:worker-0``, ...); ``snapshot`` is shard 0's,
    the shard that holds ``default``."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._socket = str(settings.supervisor_socket)
        count = max(1, getattr(settings, "worker_shards", 1))
        self._names = [settings.worker_process(n) for n in range(count)]
        self.shards = [WorkerSnapshot() for _ in range(count)]
        for snap in self.shards:
            snap.watchdog.next_delay = settings.watchdog_initial_delay
        self._last_pid: list[int | None] = [None] * count
        self._process: list[psutil.Process | None] = [None] * count
        self._task: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0

    @property
    def snapshot(self) -> WorkerSnapshot:
        return self.shards[0]

    def name(self, shard: int) -> str:
        return self._names[shard]

    def _proxy(self) -> xmlrpc.client.ServerProxy:
        # One proxy per call: the transport is not thread-safe and calls run in worker threads.
        return running.rpc(self._socket)

    async def _call(self, method: str, *args: Any) -> Any:
        """supervisord's answer to ``method``: a value of XML-RPC's (untyped) marshalling."""
        def call() -> Any:
            return getattr(self._proxy().supervisor, method)(*args)

        return await asyncio.to_thread(call)

    async def refresh(self) -> WorkerSnapshot:
        """Every shard's state in one call to supervisord; returns shard 0's."""
        self._refreshed_at = time.monotonic()
        try:
            infos = await self._call("getAllProcessInfo")
        except Exception as exc:  # supervisord down, socket missing, fault
            for snap in self.shards:
                snap.state, snap.pid, snap.error = "UNKNOWN", None, f"supervisord unreachable: {exc}"
            return self.snapshot
        by_name = {f"{i['group']}:{i['name']}": i for i in infos}
        plans = self._watchdog_plans()
        for shard, snap in enumerate(self.shards):
            info = by_name.get(self._names[shard])
            if info is None:
                snap.state, snap.pid, snap.error = "UNKNOWN", None, f"supervisord has no {self._names[shard]}"
                continue
            self._update(shard, snap, info)
            snap.watchdog = self._plan(plans.get(self._names[shard]) or {})
        return self.snapshot

    def _update(self, shard: int, snap: WorkerSnapshot, info: dict[str, Any]) -> None:
        snap.error = None
        snap.state = info["statename"]
        snap.pid = info["pid"] or None
        snap.started_at = float(info["start"]) if info["start"] else None
        snap.description = info.get("description", "")
        snap.spawn_error = info.get("spawnerr", "")
        snap.exit_status = info.get("exitstatus")
        last = self._last_pid[shard]
        if snap.pid and last and snap.pid != last:
            snap.restarts += 1
            log.warning("worker.restarted", shard=shard, old_pid=last, new_pid=snap.pid)
        if snap.pid:
            self._last_pid[shard] = snap.pid

    def _watchdog_plans(self) -> dict[str, Any]:
        try:
            plans = json.loads((self._settings.run_dir / "watchdog.json").read_text())
            return plans if isinstance(plans, dict) else {}
        except (OSError, ValueError):
            return {}

    def _plan(self, plan: dict[str, Any]) -> WatchdogState:
        return WatchdogState(
            restarts=int(plan.get("restarts", 0)),
            next_delay=float(plan.get("next_delay_seconds", self._settings.watchdog_initial_delay)),
            next_attempt_at=plan.get("next_attempt_at"),
            last_restart_at=plan.get("last_restart_at"),
            last_error=plan.get("last_error"),
        )

    async def worker_may_come_up(self, shard: int = 0) -> bool:
        """Whether a shard is on its way up (a request should wait for it) rather than down for a
        while (STOPPED by the operator, FATAL until the watchdog acts): asks supervisord at most every
        half second. EXITED is on the way up: ``autorestart=true`` restarts it at once."""
        if time.monotonic() - self._refreshed_at > 0.5:
            await self.refresh()
        return self.shards[shard].state in {"STARTING", "RUNNING", "BACKOFF", "EXITED"}

    def process_usage(self, shard: int = 0) -> tuple[int | None, float | None]:
        """RSS and CPU% of a shard; one psutil.Process per pid so cpu_percent has a baseline."""
        pid = self.shards[shard].pid
        if pid is None:
            self._process[shard] = None
            return None, None
        try:
            process = self._process[shard]
            if process is None or process.pid != pid:
                process = self._process[shard] = psutil.Process(pid)
                process.cpu_percent(None)
            with process.oneshot():
                return process.memory_info().rss, process.cpu_percent(None)
        except psutil.Error:
            self._process[shard] = None
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
