"""One stack per data dir: the data dir's lock (service/programs/datalock.py), on its own and through the launcher.

A second stack on the same data dir, even with a run dir and a port of its own (what a Kubernetes emptyDir
gives), refuses to start, names the holder and exits 75, while the first keeps serving; once the first has
stopped the data dir is free again. After a kill -9 see tests/system/test_orphans_stack.py.

(The part without a stack is in tests/app/test_data_lock.py.)
"""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from service.programs import datalock
from tests.helpers.stack import wait_for


@pytest.mark.system
def test_a_second_stack_on_the_same_data_dir_refuses_to_start_and_the_first_keeps_serving(make_stack):
    first = make_stack()
    worker_pid = first.health()["worker"]["pid"]
    # Same data dir, its own run dir (an emptyDir) and its own port: nothing else would keep them apart.
    second = make_stack({"WA_DATA_DIR": str(first.data_dir)}, start=False)
    began = time.monotonic()
    second.start(wait=False)
    code = second.proc.wait(30)
    refusal = second.logs()
    assert code == datalock.EX_LOCKED, refusal
    assert time.monotonic() - began < 10
    assert "refusing to start" in refusal and str(first.data_dir) in refusal
    assert f"pid {first.proc.pid}" in refusal and socket.gethostname() in refusal, refusal
    assert f"run dir {first.run_dir}" in refusal and f"API port {first.port}" in refusal
    assert "spawned" not in refusal  # no supervisord, no program of the second stack ever ran
    assert not (second.run_dir / "supervisor.sock").exists()
    # The first never noticed.
    assert first.get("/health").status == 200 and first.health()["worker"]["pid"] == worker_pid
    assert first.ctl("status").returncode == 0

    assert first.stop() == 0
    second.start()  # the data dir is free again: the second stack comes up on it
    assert second.get("/health").status == 200


@pytest.mark.system
def test_the_lock_is_held_by_supervisord_too_not_by_its_programs(make_stack):
    stack = make_stack()
    launcher_pid = stack.proc.pid
    supervisord_pid = int((stack.run_dir / "supervisord.pid").read_text())
    lock_path = str(stack.data_dir / ".lock")

    def lock_fds(pid: int) -> list[int]:
        fd_dir = f"/proc/{pid}/fd"
        return [int(fd) for fd in os.listdir(fd_dir) if os.readlink(f"{fd_dir}/{fd}") == lock_path]

    assert lock_fds(launcher_pid)
    # Below 5: supervisord closes descriptors 5 and up when it reloads (SIGHUP), and must keep this one.
    assert [fd for fd in lock_fds(supervisord_pid) if fd < 5]
    for name in ("gateway", "worker:worker-0", "watchdog"):
        assert not lock_fds(stack.process_info(name)["pid"]), name
    assert datalock.read_holder(stack.data_dir / ".lock")["supervisord_pid"] == supervisord_pid
    # The launcher gone (kill -9), supervisord alone still holds it, then stops its programs (SIGTERM from
    # the kernel) and ends; the lock goes with it.
    os.kill(launcher_pid, signal.SIGKILL)
    stack.proc.wait(5)
    wait_for(lambda: not _alive(supervisord_pid), 30, "supervisord to stop its programs and end")
    datalock.acquire(stack.data_dir, command="run").release()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False
