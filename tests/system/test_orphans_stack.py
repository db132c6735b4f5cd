"""No orphans: when supervisord dies without stopping its programs (kill -9, the OOM killer), every program
exits by itself within about a second (service/programs/orphans.py, node_worker/lib/orphan.js), the API port is
free, and the data dir's lock goes with the last of them, so the next stack starts on the same data dir.

(The part without a stack is in tests/app/test_orphans.py.)
"""

from __future__ import annotations

import os
import re
import signal
import time

import psutil
import pytest

from service.programs import datalock
from tests.helpers.stack import listening, wait_for

# Measured about 0.3 to 0.6 s; the bound leaves room for a loaded 2-core machine.
GONE_WITHIN = 3.0


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def program_pids(stack, names) -> dict[str, int]:
    pids = {name: stack.process_info(name)["pid"] for name in names}
    assert all(pids.values()), pids
    return pids


def launcher_lines(logs: str) -> list[str]:
    return [line for line in logs.splitlines() if '"program": "launcher"' in line]


def supervisord_pid(stack) -> int:
    return int((stack.run_dir / "supervisord.pid").read_text())


def wait_gone(pids: dict[str, int], ports: list[int]) -> float:
    began = time.monotonic()
    wait_for(lambda: not [n for n, p in pids.items() if alive(p)] and not any(listening(p) for p in ports),
             GONE_WITHIN, f"no program left of {pids} and ports {ports} free", interval=0.05)
    return time.monotonic() - began


@pytest.mark.system
def test_kill_9_of_supervisord_leaves_no_program_and_the_data_dir_free(make_stack):
    stack = make_stack(sandbox=True)
    pids = program_pids(stack, ["gateway", "worker:worker-0", "watchdog", "emulator"])
    os.kill(supervisord_pid(stack), signal.SIGKILL)
    took = wait_gone(pids, [stack.port, stack.emulator_port])
    print(f"programs gone {took:.2f} s after kill -9 of supervisord")
    # The launcher waited for them (they were re-parented to it), then ended and let the lock go. Their
    # logs went to supervisord's pipes, gone with it; the launcher says how each ended: by itself, cleanly.
    assert stack.proc.wait(5) == 128 + signal.SIGKILL
    logs = stack.logs()
    # The launcher's record (launcher.orphans_reaped), JSON like every line of the stream.
    assert re.search(r"\"message\": \"supervisord ended \(pid \d+: killed by SIGKILL\) before its programs", logs)
    for name, pid in pids.items():
        assert re.search(rf"pid {pid}( \([^)]*\))?: exit 0", logs), (name, pid, launcher_lines(logs))
    assert "by the launcher" not in logs
    again = make_stack({"WA_DATA_DIR": str(stack.env["WA_DATA_DIR"])})
    assert again.get("/health").status == 200


@pytest.mark.system
def test_kill_9_of_supervisord_with_the_launcher_leaves_no_program(make_stack):
    """The issue's case: supervisord killed with its process group (the launcher is in it, the programs
    are not): nobody is left to wait for the programs, they still go, and so does the lock."""
    stack = make_stack({"WA_WORKER_SHARDS": "2"})
    pids = program_pids(stack, ["gateway", "worker:worker-0", "worker:worker-1", "watchdog"])
    group = os.getpgid(supervisord_pid(stack))
    assert group == os.getpgid(stack.proc.pid) and group != os.getpgid(pids["gateway"])
    os.killpg(group, signal.SIGKILL)
    took = wait_gone(pids, [stack.port])
    print(f"programs gone {took:.2f} s after kill -9 of supervisord's process group")
    datalock.acquire(stack.data_dir, command="run").release()
