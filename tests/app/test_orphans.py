"""No orphans: when supervisord dies without stopping its programs (kill -9, the OOM killer), every program
exits by itself within about a second (service/programs/orphans.py, node_worker/lib/orphan.js), the API port is
free, and the data dir's lock goes with the last of them, so the next stack starts on the same data dir.

(The whole-stack part is in tests/system/test_orphans_stack.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.helpers.stack import REPO, wait_for


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- each mechanism on its own, under a parent the test controls ----------------------------------
PYTHON_PROGRAM = """
import signal, sys, time
from service.programs.orphans import ParentWatch
watch = ParentWatch(signal.SIGTERM if sys.argv[1] == 'prctl' else None)
print('up', flush=True)
while sys.argv[1] == 'prctl' or not watch.orphaned():  # with prctl, only the kernel's SIGTERM ends it
    time.sleep(0.5)
"""


NODE_PROGRAM = ("import('./node_worker/lib/orphan.js').then(({ watchParent }) => {"
                " watchParent(() => process.exit(0)); setInterval(() => {}, 1000); console.log('up') })")


# The parent: starts the program, says its pid, and exits when told (its program is then re-parented).
PARENT = """
import subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline().strip() == 'up'
print(child.pid, flush=True)
sys.stdin.readline()
"""


@pytest.mark.parametrize("program", [
    [sys.executable, "-c", PYTHON_PROGRAM, "prctl"],  # the gateway's and the watchdog's way
    [sys.executable, "-c", PYTHON_PROGRAM, "poll"],  # their fallback without prctl
    ["node", "-e", NODE_PROGRAM],  # the worker's and the emulator's way
], ids=["python-prctl", "python-poll", "node-poll"])
def test_a_program_runs_while_its_parent_lives_and_exits_within_a_second_after(program):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *program], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    try:
        time.sleep(1.2)  # several of its parent checks: started with this parent, it is no orphan
        assert alive(pid)
        parent.stdin.close()
        parent.wait(5)
        began = time.monotonic()
        wait_for(lambda: not alive(pid), 2, "the orphan to exit", interval=0.02)
        print(f"{program[0]} orphan gone {time.monotonic() - began:.2f} s after its parent")
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
