"""Runs the documentation's blocks as a reader would, in order, against one sandbox stack that the README's
own ``make sandbox`` block starts (tests/system/test_docs_blocks.py; the markers: tests/helpers/doc_blocks.py).

What differs from a reader's machine, and nothing else:

- the ports: 3001 (the gateway), 3002 (the emulator) and 8000 (the README's receiver) become free ports, in
  the blocks' text and in their markers' URLs;
- the data dir: ``WA_DATA_DIR`` and ``WA_RUN_DIR`` point into a temp dir, and ``WA_PORT`` /
  ``WA_EMULATOR_PORT`` name the ports, for every block (the launcher and the CLI read them, so
  ``make sandbox`` and ``.venv/bin/wa-gateway ... --sandbox`` find this stack); ``WA_WORKER_SHARDS=1`` keeps
  the stack light, as every test stack is;
- the directory: the blocks run in a scratch directory whose entries link the repository's top-level files
  (so ``make sandbox`` and ``.venv/bin/...`` work as written), and the files a block saves stay out of the
  work tree;
- ``curl`` fails on an HTTP error (a shim adds ``--fail-with-body``), so a call the docs get wrong (no key,
  a wrong path) fails the test instead of printing an error nobody reads.

A reader's terminal keeps its variables from one command to the next: a shell block here starts from the
variables the blocks before it set (exported ones stay exported), and runs with ``set -eo pipefail``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers.doc_blocks import URL, Block
from tests.helpers.stack import (
    BIN,
    BOUND_PORTS,
    REPO,
    STARTED_SESSIONS,
    free_port,
    http,
    session_processes,
    sweep_session,
)

# What a reader's terminal does not have: the blocks' own variable, what `make test` passes its children, and
# PYTHONUNBUFFERED (set where CI runs): unbuffered, `print(text)` is two writes, and `wa-gateway ... | head -n 1`
# under the runner's pipefail failed whenever head had exited between them (BrokenPipeError on the "\n").
READER_HAS_NOT = {"KEY", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKE_TERMOUT", "MAKE_TERMERR", "PYTHONUNBUFFERED"}
FOREGROUND_TIMEOUT = 180.0
READY_TIMEOUT = 90.0
PRINT_TIMEOUT = 30.0
DUMP_STATE = ('for __v in $(compgen -v); do case "$__v" in __*) ;; *) grep -qxF "$__v" "$__BASELINE" || '
              'declare -p "$__v" 2>/dev/null ;; esac; done > "$__STATE"')


class DocRunner:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="wa-docs-"))
        self.cwd = self.tmp / "work"
        self.cwd.mkdir()
        for entry in REPO.iterdir():
            if entry.name not in (".git",):
                (self.cwd / entry.name).symlink_to(entry)
        self.ports = {"3001": free_port(), "3002": free_port(), "8000": free_port()}
        BOUND_PORTS.update(self.ports.values())
        shims = self.tmp / "shims"
        shims.mkdir()
        real_curl = shutil.which("curl") or "/usr/bin/curl"
        (shims / "curl").write_text(f'#!/bin/sh\nexec {real_curl} --fail-with-body "$@"\n')
        (shims / "curl").chmod(0o755)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WA_") and k not in READER_HAS_NOT},
            "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '')}",
            "WA_DATA_DIR": str(self.tmp / "sandbox_data"),
            "WA_RUN_DIR": str(self.tmp / "run"),
            "WA_PORT": str(self.ports["3001"]),
            "WA_EMULATOR_PORT": str(self.ports["3002"]),
            "WA_WORKER_SHARDS": "1",
        }
        self.state = self.tmp / "state.sh"
        self.state.write_text("")
        self.baseline = self.tmp / "baseline"
        subprocess.run(["bash", "-c", 'compgen -v > "$0"', str(self.baseline)], env=self.env, check=True)
        self.background: dict[str, tuple[subprocess.Popen, Path]] = {}  # command -> process, its output
        self.count = 0
        self.failed: str | None = None  # the block that failed: the pages after it are skipped

    # --- what differs -----------------------------------------------------------------------------
    def localize(self, text: str) -> str:
        return re.sub(r"(?<!\d)(3001|3002|8000)(?!\d)", lambda m: str(self.ports[m[1]]), text)

    # --- running ---------------------------------------------------------------------------------
    def run(self, block: Block) -> None:
        """Run one block as its kind and marker say; raise AssertionError with its output when it fails."""
        if block.marker == "file":
            (self.cwd / block.value).write_text(self.localize(block.text))
        elif block.marker == "printed by":
            self.wait_printed(block)
        elif block.marker == "background":
            self.start_background(block)
        elif block.runs and block.lang == "python":
            self.count += 1
            script = self.tmp / f"block-{self.count}.py"
            script.write_text(self.localize(block.text))
            self.foreground(block, f'.venv/bin/python {script}')
        elif block.runs and block.lang == "console":
            # Each `$ ` line as typed at a prompt: its own exit status counts (`cmd; echo "exit $?"` shows one).
            lines = self.localize(block.commands()).splitlines()
            self.foreground(block, "set +e\n" + "".join(f'{line}\n__rc=$?; [ "$__rc" = 0 ] || exit "$__rc"\n'
                                                        for line in lines))
        elif block.runs:
            self.foreground(block, self.localize(block.commands()))

    def _script(self, commands: str, *, keep_state: bool) -> str:
        prelude = f'__STATE={self.state}; __BASELINE={self.baseline}; source "$__STATE"\nset -eo pipefail\n'
        return prelude + commands + ("\n" + DUMP_STATE + "\n" if keep_state else "\n")

    def foreground(self, block: Block, commands: str) -> None:
        done = subprocess.run(["bash", "-c", self._script(commands, keep_state=True)], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=FOREGROUND_TIMEOUT, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, (f"{block.where} failed (exit {done.returncode}):\n{commands}\n--- stdout\n"
                                      f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")

    def start_background(self, block: Block) -> None:
        command = self.localize(block.text).strip()
        if command in self.background and self.background[command][0].poll() is None:
            return  # already running in its terminal (one stack for every page)
        output = self.tmp / f"background-{len(self.background)}.log"
        with open(output, "wb") as out:
            proc = subprocess.Popen(["bash", "-c", self._script(command, keep_state=False)], cwd=self.cwd,
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        STARTED_SESSIONS.add(proc.pid)
        self.background[command] = (proc, output)
        for url in URL.findall(self.localize(block.value)):
            self._wait(lambda u=url: _answers(u), READY_TIMEOUT, f"{url} to answer", block, proc, output)

    def wait_printed(self, block: Block) -> None:
        command = self.localize(block.value).strip()
        assert command in self.background, f"{block.where}: `{command}` was not started in the background before"
        proc, output = self.background[command]
        wanted = [line for line in self.localize(block.text).splitlines() if line.strip()]
        self._wait(lambda: all(line in output.read_text(errors="replace") for line in wanted), PRINT_TIMEOUT,
                   f"`{command}` to print {wanted}", block, proc, output)

    @staticmethod
    def _wait(predicate, timeout: float, what: str, block: Block, proc: subprocess.Popen, output: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.25)
        raise AssertionError(f"{block.where}: waited for {what} (the program "
                             f"{'exited ' + str(proc.returncode) if proc.poll() is not None else 'runs'}):\n"
                             f"{output.read_text(errors='replace')[-4000:]}")

    # --- the end ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop what the blocks left running, as Ctrl-C in its terminal would, newest first; then sweep."""
        for proc, _ in reversed(list(self.background.values())):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 40
            while session_processes(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            sweep_session(proc.pid)
            proc.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        http("GET", url, timeout=2)
    except OSError:
        return False
    return True


def installed() -> str | None:
    """Why ``make sandbox`` would set up again here (then it would install into .venv from the scratch
    directory), or None: the setup is up to date."""
    done = subprocess.run(["make", "-q", f"{BIN.relative_to(REPO) if BIN.is_relative_to(REPO) else BIN}/.installed",
                           "node_worker/node_modules/.package-lock.json"], cwd=REPO, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k not in READER_HAS_NOT})
    return None if done.returncode == 0 else "the setup is out of date: run `make .venv/bin/.installed-test` first"
