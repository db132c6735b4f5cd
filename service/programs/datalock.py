"""One stack per data dir: an exclusive ``flock`` on ``$WA_DATA_DIR/.lock``, held for the stack's whole life.

Two stacks on one data dir would run two workers on the same linked devices (WhatsApp keeps one connection
per device, so each evicts the other, and both advance the same Signal sessions) and two gateways on one
SQLite store. A run dir of its own (a Kubernetes emptyDir) does not keep them apart; this lock does.

Who holds it: the launcher (``wa-gateway run``/``sandbox``) takes it before anything starts and hands the
descriptor to supervisord (``pass_fds``), so it is held while either of them lives; the kernel releases it
when the last of them dies, however it dies (kill -9, the OOM killer): there is nothing to clean up and no
stale lock to break. supervisord closes descriptors 3..minfds in the programs it spawns, so no program
holds it; instead the launcher, a child subreaper, waits for the programs of a supervisord that died to
exit (they do within about a second, ``service/programs/orphans.py``) before it exits and lets the lock go.
``open(2)`` gives the lowest free descriptor, 3 in practice: below 5, from which supervisord closes
descriptors when it reloads (SIGHUP), so supervisord keeps its copy across a reload too.

``wa-gateway restore`` takes the same lock for its copy (it must not run under a live stack, and no stack
may start in the middle of it). ``wa-gateway backup`` and the client commands run beside a live stack and
do not touch it. The file names its holder (pid, host, start time, run dir) for the message a refused
start prints; it is never deleted (deleting a lock file that another process may be opening is a race).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOCK_FILE = ".lock"
EX_LOCKED = 75  # EX_TEMPFAIL: the data dir is in use now; start again once the other stack has stopped


class DataDirLocked(Exception):
    """Another process holds the data dir's lock; the message names it."""

    def __init__(self, data_dir: Path, holder: dict[str, Any] | None):
        self.data_dir = data_dir
        self.holder = holder or {}
        super().__init__(f"the data dir {data_dir} is in use by {describe(self.holder)}; stop that stack "
                         "first, or give this one a WA_DATA_DIR of its own")


def describe(holder: dict[str, Any]) -> str:
    """``wa-gateway run (pid 12, supervisord pid 13, API port 3001) on host h since <time>, run dir /r``, as far
    as known."""
    if not holder.get("pid"):
        return "another wa-gateway stack (its lock file does not say which yet)"
    pids = f"pid {holder['pid']}" + (f", supervisord pid {holder['supervisord_pid']}"
                                     if holder.get("supervisord_pid") else "")
    if holder.get("port"):
        pids += f", API port {holder['port']}"
    text = f"wa-gateway {holder.get('command', 'run')} ({pids}) on host {holder.get('host', '?')}"
    if holder.get("started_at"):
        text += f" since {holder['started_at']}"
    if holder.get("run_dir"):
        text += f", run dir {holder['run_dir']}"
    return text


class DataDirLock:
    """The held lock: ``fd`` is the open lock file (pass it on to keep the lock in a child)."""

    def __init__(self, fd: int, path: Path, details: dict[str, Any]):
        self.fd, self.path, self.details = fd, path, details

    def record(self, **more: Any) -> None:
        """Write who holds the lock (and ``more``, such as supervisord's pid) into the lock file."""
        self.details.update(more)
        data = (json.dumps(self.details, sort_keys=True) + "\n").encode()
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)
        except OSError:
            pass  # the details are for a message; the lock itself holds regardless

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # the lock goes with the last descriptor of this open file
            self.fd = -1

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(data_dir: Path, *, command: str, run_dir: str | Path | None = None) -> DataDirLock:
    """Take the lock without waiting, or raise ``DataDirLocked`` naming the holder. The data dir must
    exist (the launcher makes it 0700); the lock file is created 0600."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirLocked(data_dir, read_holder(path)) from None
    except BaseException:
        os.close(fd)
        raise
    lock = DataDirLock(fd, path, {
        "command": command, "pid": os.getpid(), "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_dir": str(run_dir) if run_dir else None,
    })
    lock.record()
    return lock


def read_holder(path: Path, attempts: int = 3) -> dict[str, Any] | None:
    """The details the holder wrote; None when unreadable (it may be between truncating and writing)."""
    for attempt in range(attempts):
        try:
            found = json.loads(path.read_text())
            if isinstance(found, dict):
                return found
        except (OSError, ValueError):
            pass
        if attempt + 1 < attempts:
            time.sleep(0.05)
    return None
