"""The harness cleans up on success, failure and timeout: a failing test leaves no process and no port."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from tests.helpers.stack import REPO, Stack, StackDied, listening, session_processes

pytestmark = pytest.mark.system

FAILING_TEST = '''
import json, os
from tests.helpers.stack import Stack

def test_fails_inside_a_running_sandbox(make_stack):
    stack = make_stack(sandbox=True)
    with open(os.environ["HARNESS_OUT"], "w") as out:
        json.dump({"sid": stack.proc.pid, "ports": [stack.port, stack.emulator_port],
                   "worker": stack.health()["worker"]["pid"]}, out)
    assert False, "deliberately failing"
'''


def test_a_deliberately_failing_sandbox_test_leaves_nothing_behind(tmp_path):
    test_file = tmp_path / "test_deliberate.py"
    test_file.write_text(textwrap.dedent(FAILING_TEST))
    out = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO),
         "-p", "tests.conftest", "-c", str(REPO / "setup.cfg"), str(test_file)],
        cwd=REPO, capture_output=True, text=True, timeout=180,
        env={**__import__("os").environ, "HARNESS_OUT": str(out), "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "deliberately failing" in result.stdout
    assert "LEAK" not in result.stdout
    started = json.loads(out.read_text())
    assert session_processes(started["sid"]) == []
    assert not any(listening(port) for port in started["ports"])


def test_a_stack_that_cannot_start_fails_at_once_and_is_swept():
    stack = Stack({"WA_PORT": "notaport"})
    began = time.monotonic()
    with pytest.raises(StackDied):
        with stack:
            pass
    assert time.monotonic() - began < 15  # not the 30 s start-up timeout
    assert session_processes(stack.proc.pid) == []
    assert not stack.tmp.exists()
