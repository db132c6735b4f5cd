"""The configuration-error protocol between the programs, the watchdog listener and the launcher.

A program that cannot run with its settings (a bad ``WA_*`` value, a port in use) must not be restarted:
no retry can fix it. It writes its one-line reason to ``<run dir>/config-error.<program>`` and exits with
``EX_CONFIG`` (78). supervisord reports the quick exit (BACKOFF), the watchdog listener finds the file,
records the reason as ``<run dir>/shutdown-reason`` and shuts supervisord down, and the launcher prints
that reason and exits 78, so ``make run`` and an orchestrator both see the failure.

supervisord itself cannot tell us the code: a process that exits before ``startsecs`` is reported with
``exitstatus`` unset, hence the file. The Node worker writes the same file (node_worker/src/main.js).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EX_CONFIG = 78
SHUTDOWN_REASON = "shutdown-reason"


def error_file(run_dir: Path, program: str) -> Path:
    return run_dir / f"config-error.{program}"


def run_dir_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    if env.get("WA_RUN_DIR"):
        return Path(env["WA_RUN_DIR"])
    if env.get("WA_DATA_DIR"):
        return Path(env["WA_DATA_DIR"]) / "run"
    return None


def write_private(path: Path, text: str) -> None:
    """Create-or-replace ``path`` with mode 0600, atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            data = memoryview(text.encode())
            while data:  # a nearly full disk takes part of a write without an error: the rest raises ENOSPC
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave the half-written temp file behind
        raise


def report(program: str, reason: str, run_dir: Path | None = None) -> int:
    """Log the reason as one contract record, leave it for the watchdog, and return ``EX_CONFIG``."""
    record = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "level": "critical",
        "event": f"{program}.bad_setting",
        "program": program,
        "error": reason,
    }
    os.write(sys.stdout.fileno(), (json.dumps(record, ensure_ascii=False) + "\n").encode())
    run_dir = run_dir if run_dir is not None else run_dir_from_env()
    if run_dir is not None and run_dir.is_dir():
        try:
            write_private(error_file(run_dir, program), json.dumps({"program": program, "reason": reason}))
        except OSError:
            pass  # the log line above still says why
    return EX_CONFIG


def read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("reason") else None
