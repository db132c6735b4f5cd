"""No orphans: every program exits when its supervisord is gone, and the launcher outlives them all.

supervisord puts each program in a process group of its own, so when supervisord dies without stopping
them (kill -9, the OOM killer) nothing else does: they would run on for ever, holding the API port and the
WhatsApp connections, beside the next stack. So:

- the Python programs (gateway, watchdog) ask the kernel for SIGTERM when their parent dies
  (``prctl(PR_SET_PDEATHSIG)``, Linux) and also poll their parent pid (``ParentWatch``) every half second,
  as a fallback where there is no prctl; SIGTERM takes their usual graceful path (the gateway drains);
- the Node programs (worker, emulator) poll ``process.ppid`` (``node_worker/lib/orphan.js``);
- the launcher is a child subreaper (``PR_SET_CHILD_SUBREAPER``): a dead supervisord's programs become its
  children, and it waits for them (``reap_children``) before it exits and releases the data dir's lock
  (``service/programs/datalock.py``); supervisord itself gets SIGTERM if the launcher dies.

Each program compares its parent with the one it had at start and acts only when that changes, so a
program started by hand or by a test (not under supervisord) behaves as before.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.5


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # loaded once: the launcher also calls it between fork and exec (preexec_fn)


def _prctl(option: int, value: int) -> bool:
    return _PRCTL is not None and _PRCTL(option, ctypes.c_ulong(value), 0, 0, 0) == 0


def signal_on_parent_death(signum: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``signum`` when the parent dies; False where it cannot (not Linux). Also used
    as ``preexec_fn`` by the launcher, so supervisord stops its programs if the launcher dies."""
    return _prctl(PR_SET_PDEATHSIG, int(signum))


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process instead of init (Linux 3.4+)."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


class ParentWatch:
    """This process's parent at start, and whether it has changed since (the parent died)."""

    def __init__(self, death_signal: int | None = signal.SIGTERM):
        self.parent = os.getppid()
        if death_signal:
            signal_on_parent_death(death_signal)

    def orphaned(self) -> bool:
        return os.getppid() != self.parent

    async def wait_orphaned(self, interval: float = POLL_SECONDS) -> None:
        while not self.orphaned():
            await asyncio.sleep(interval)


def exit_with_parent_ctx(
    watch: ParentWatch, on_orphan: Callable[[], None]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context that calls ``on_orphan`` once the parent is gone (the fallback for
    when no signal came: another OS, or a parent that died before the prctl)."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        async def run() -> None:
            await watch.wait_orphaned()
            on_orphan()

        task = asyncio.get_running_loop().create_task(run())
        yield
        task.cancel()

    return ctx


# --- the launcher's side -------------------------------------------------------------------------
def children(of: int | None = None) -> list[int]:
    """Live child pids of ``of`` (this process), from /proc; empty where there is no /proc."""
    of = os.getpid() if of is None else of
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": state, ppid, ...
        if len(fields) > 1 and int(fields[1]) == of and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _command(pid: int) -> str | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return " ".join(a.decode(errors="replace") for a in argv if a)[:80] or None


def is_dead(pid: int) -> bool:
    """Whether our child ``pid`` has exited (a zombie not reaped yet); it stays to be reaped."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def describe_end(pid: int, status: int, command: str | None = None) -> str:
    code = os.waitstatus_to_exitcode(status)
    how = f"exit {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
    return f"pid {pid}" + (f" ({command})" if command else "") + f": {how}"


def reap_children(timeout: float) -> list[str]:
    """Wait until this process has no children left (re-parented orphans included), reaping each; after
    ``timeout`` seconds SIGKILL what remains. One line per child reaped: its command and how it ended."""
    deadline = time.monotonic() + timeout
    commands = {pid: _command(pid) for pid in children()}
    ended: list[str] = []
    killed = False
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid:
            by_us = " (SIGKILL by the launcher)" if killed else ""
            ended.append(describe_end(pid, status, commands.get(pid)) + by_us)
            continue
        if time.monotonic() >= deadline and not killed:
            killed = True
            left = children()
            for child in left:
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not left:
                return ended  # only children we cannot see (no /proc): do not wait for ever
        time.sleep(0.02)
