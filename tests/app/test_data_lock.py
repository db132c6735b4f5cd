"""One stack per data dir: the data dir's lock (service/programs/datalock.py), on its own and through the launcher.

A second stack on the same data dir, even with a run dir and a port of its own (what a Kubernetes emptyDir
gives), refuses to start, names the holder and exits 75, while the first keeps serving; once the first has
stopped the data dir is free again. After a kill -9 see tests/system/test_orphans_stack.py.

(The whole-stack part is in tests/system/test_data_lock_stack.py.)
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from service.programs import backup, datalock
from tests.helpers.stack import REPO


def holder_process(data_dir) -> subprocess.Popen:
    """Another process holding the data dir's lock, until killed."""
    code = ("import sys, time; from pathlib import Path; from service.programs import datalock; "
            "datalock.acquire(Path(sys.argv[1]), command='run', run_dir='/elsewhere/run'); "
            "print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(data_dir)], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_is_exclusive_names_its_holder_and_dies_with_it(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    holder = holder_process(data_dir)
    try:
        began = time.monotonic()
        with pytest.raises(datalock.DataDirLocked) as refused:
            datalock.acquire(data_dir, command="run")
        # Refused at once, never waiting for the holder (which holds the lock for 600 s): any bound far below that
        # shows it; 10 s leaves room for a loaded machine.
        assert time.monotonic() - began < 10
        message = str(refused.value)
        assert f"pid {holder.pid}" in message and socket.gethostname() in message
        assert "since 20" in message and "run dir /elsewhere/run" in message and str(data_dir) in message
        assert stat.S_IMODE((data_dir / ".lock").stat().st_mode) == 0o600
    finally:
        holder.kill()  # kill -9: the kernel releases the lock, nothing is left to clean up
        holder.wait()
    with datalock.acquire(data_dir, command="run") as lock:
        assert datalock.read_holder(lock.path)["pid"] == os.getpid()
    # Released on close: taken again at once.
    datalock.acquire(data_dir, command="run").release()


def test_restore_refuses_while_a_stack_holds_the_data_dir_even_with_another_run_dir(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "api-key").write_text("k\n")
    (data_dir / ".lock").write_text("{}")
    made = tmp_path / "backup"
    backup.backup(data_dir, tmp_path / "no-run" / "supervisor.sock", made)
    assert ".lock" not in os.listdir(made)  # the lock is not data
    holder = holder_process(data_dir)
    try:
        with pytest.raises(backup.BackupError, match=rf"running \(wa-gateway run \(pid {holder.pid}\)"):
            backup.restore(data_dir, tmp_path / "no-run" / "supervisor.sock", made)
    finally:
        holder.kill()
        holder.wait()
    assert backup.restore(data_dir, tmp_path / "no-run" / "supervisor.sock", made) is not None
