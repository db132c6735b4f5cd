"""A real wa-gateway stack for tests: supervisord with the shipped conf, started through the
``wa-gateway`` launcher in a temporary data dir on free ports, and always stopped afterwards."""

from __future__ import annotations

import http.client as httpclient
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONF = REPO / "conf" / "supervisord.conf"
# The key every stack is started with (the API is locked by default); `Stack.get/post` send it.
API_KEY = "test-key-" + os.urandom(8).hex()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StackDied(AssertionError):
    """What a test waits for can no longer happen (supervisord is gone): fail now, not at the timeout."""


# WA_TEST_DATABASE=postgresql (tests/conftest.py, tests/helpers/postgres.py): makes a fresh PostgreSQL database per
# stack and returns its URL; None: every stack keeps SQLite in its data dir.
DATABASE_FACTORY: Callable[[], str] | None = None

# Every session (launcher process group leader) and port a test started, for the session-end check.
STARTED_SESSIONS: set[int] = set()
BOUND_PORTS: set[int] = set()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float | None = None) -> Any:
    """Poll until ``predicate`` returns something truthy; fail with ``what`` after ``timeout`` s.

    ``interval``: a fixed pause between tries. By default the pause is 0.1 s, and grows on a long wait: a twentieth
    of the time waited so far, at most 0.5 s. Ten tries a second for minutes, each listing every message or parsing
    the whole log, compete for the 2 cores with the stacks being waited on (tests/system/test_outbox_chaos.py: 141
    CPU-s against 147, run side by side); a condition is now seen at most 5% of the wait (and 0.5 s) later than it
    became true, and never later in the first 2 s (tests that time a recovery against a bound of seconds)."""
    started = time.monotonic()
    deadline = started + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except StackDied:
            raise
        except Exception as exc:  # the thing we wait for may not answer yet
            last_exc = exc
        time.sleep(interval if interval is not None else min(0.5, max(0.1, (time.monotonic() - started) / 20)))
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc!r})")


def session_processes(sid: int) -> list[int]:
    """Live processes of session ``sid`` (zombies are dead and harmless)."""
    found = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def sweep_session(sid: int) -> None:
    """SIGKILL every process of a stack's session (supervisord puts each program in its own process
    group, so killing one group is not enough) until none is left."""
    for _ in range(50):
        pids = session_processes(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"processes of session {sid} survive SIGKILL: {session_processes(sid)}")


def listening(port: int) -> bool:
    for conn in psutil.net_connections("inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return True
    return False


class Response:
    def __init__(self, status: int, body: bytes, headers):
        self.status = status
        self.raw = body
        self.headers = headers

    def json(self) -> Any:
        return json.loads(self.raw)


def http(method: str, url: str, body: Any = None, *, raw: bytes | None = None,
         headers: dict | None = None, timeout: float = 30) -> Response:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, resp.read(), resp.headers)
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(), exc.headers)


class _UnixHTTPConnection(httpclient.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("worker", timeout=10)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self._path)


class Stack:
    def __init__(self, extra_env: dict[str, str] | None = None, *, sandbox: bool = False):
        self.tmp = Path(tempfile.mkdtemp(prefix="wa-test-"))
        self.data_dir = self.tmp / "data"
        self.run_dir = self.tmp / "run"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.tmp / "supervisord.log"
        self.sandbox = sandbox
        self.emulator_port = free_port() if sandbox else None
        self.emulator = f"http://127.0.0.1:{self.emulator_port}" if sandbox else None
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WA_")},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "WA_DATA_DIR": str(self.data_dir),
            "WA_RUN_DIR": str(self.run_dir),
            "WA_PORT": str(self.port),
            "WA_HOST": "127.0.0.1",
            "WA_LOG_FORMAT": "json",
            "WA_SERVER_URL": f"ws://127.0.0.1:{free_port()}/ws/chat",
            "WA_RECONNECT_BASE_MS": "200",
            "WA_RECONNECT_MAX_MS": "5000",
            "WA_WATCHDOG_INTERVAL": "0.5",
            "WA_CONNECT_QR_WAIT": "5",
            "WA_API_KEY": API_KEY,
            **(extra_env or {}),
        }
        if sandbox:
            # The launcher points the worker at the emulator and makes it trust the emulator's root.
            del self.env["WA_SERVER_URL"]
            self.env["WA_EMULATOR_PORT"] = str(self.emulator_port)
            self.env.setdefault("WA_KEEPALIVE_MS", "2000")
            self.env.setdefault("WA_CONNECT_TIMEOUT_MS", "5000")
            self.env.setdefault("WA_RECONNECT_STABLE_MS", "1500")
        # One worker shard unless a test asks for more: stacks stay light on a 2-core machine.
        self.env.setdefault("WA_WORKER_SHARDS", "1")
        if DATABASE_FACTORY is not None and "WA_DATABASE_URL" not in self.env:
            self.env["WA_DATABASE_URL"] = DATABASE_FACTORY()
        self.proc: subprocess.Popen | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, wait: bool = True) -> Stack:
        self._log = open(self.log_path, "ab")
        command = [str(BIN / "wa-gateway"), "sandbox" if self.sandbox else "run"]
        # Its own session: every process of this stack (launcher, supervisord, programs, their children)
        # carries this session id even after supervisord is gone, so cleanup can sweep them all.
        self.proc = subprocess.Popen(
            command, env=self.env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        STARTED_SESSIONS.add(self.proc.pid)
        BOUND_PORTS.update(p for p in (self.port, self.emulator_port) if p)
        if wait:
            try:
                wait_for(self._up, 30, "gateway /health and worker RUNNING")
            except BaseException:
                self.cleanup()
                raise
        return self

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise StackDied(f"supervisord exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
        res = self.get("/health", timeout=2)
        up = res.status == 200 and res.json()["worker"]["state"] == "RUNNING"
        if up and self.sandbox:
            up = http("GET", self.emulator + "/", timeout=2).status == 200
        return up

    def stop(self, timeout: float = 40, sig: int = signal.SIGTERM) -> int | None:
        """SIGTERM to supervisord, as a container runtime would; SIGKILL the group if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            sweep_session(self.proc.pid)
            self.proc.wait(5)
            raise AssertionError(f"supervisord did not stop within {timeout}s") from None
        finally:
            self._log.close()

    def cleanup(self) -> None:
        """Stop the stack if it runs, then kill whatever of its session survived; always safe to call."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    self.stop()
                except AssertionError:
                    pass
        finally:
            if self.proc is not None:
                sweep_session(self.proc.pid)
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self.start()  # start() cleans up itself when it fails

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # --- helpers ---------------------------------------------------------------------------
    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self) -> list[dict]:
        events = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass
        return events

    def auth(self, headers: dict | None) -> dict:
        """The stack's API key unless the caller sent its own (or ``{"X-API-Key": None}`` for none)."""
        merged = {"X-API-Key": self.api_key} if self.api_key else {}
        merged.update(headers or {})
        return {k: v for k, v in merged.items() if v is not None}

    @property
    def api_key(self) -> str | None:
        key = self.env.get("WA_API_KEY", "")
        return key.split(",")[0].strip() or None

    def get(self, path: str, *, headers: dict | None = None, **kw) -> Response:
        return http("GET", self.base + path, headers=self.auth(headers), **kw)

    def post(self, path: str, body: Any = None, *, headers: dict | None = None, **kw) -> Response:
        return http("POST", self.base + path, body, headers=self.auth(headers), **kw)

    def all_pages(self, path: str, key: str = "messages") -> list[dict]:
        """Every item of a cursor-paginated listing (``path`` with its query, without ``cursor``)."""
        out, cursor = [], None
        sep = "&" if "?" in path else "?"
        while True:
            res = self.get(path + (f"{sep}cursor={cursor}" if cursor else ""))
            assert res.status == 200, res.raw
            page = res.json()
            out += page[key]
            cursor = page["next_cursor"]
            if not cursor:
                return out

    def delete(self, path: str, *, headers: dict | None = None, **kw) -> Response:
        return http("DELETE", self.base + path, headers=self.auth(headers), **kw)

    def health(self) -> dict:
        return self.get("/health").json()

    def status(self) -> dict:
        res = self.get("/status")
        assert res.status == 200, res.raw
        return res.json()

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(CONF), *args],
            env=self.env, capture_output=True, text=True, timeout=60,
        )

    def process_info(self, name: str) -> dict:
        """supervisord's ``getProcessInfo`` over its private unix socket."""
        from service.programs.running import rpc

        return rpc(self.run_dir / "supervisor.sock").supervisor.getProcessInfo(name)

    def emu(self, method: str, path: str, body: Any = None) -> Response:
        """Call the emulator's control API."""
        return http(method, self.emulator + path, body)

    def events(self, after: int = 0) -> list[dict]:
        """The gateway's durable event log (GET /events), each event flattened for predicates:
        ``{**data, "seq", "type", "event_id", "account", "data"}`` (the event's own fields win: a message's data
        has a ``type`` of its own, still at ``data``)."""
        found: list[dict] = []
        while True:
            res = self.get(f"/events?after={after}&limit=500")
            assert res.status == 200, res.raw
            page = res.json()["events"]
            found.extend({**e["data"], "seq": e["seq"], "type": e["type"], "event_id": e["id"], "account": e["account"],
                          "data": e["data"]} for e in page)
            if len(page) < 500:
                return found
            after = page[-1]["seq"]

    def wait_event(self, predicate: Callable[[dict], bool], timeout: float, what: str) -> dict:
        return wait_for(
            lambda: next((e for e in self.events() if predicate(e)), None), timeout, what
        )

    def wait_state(self, state: str, timeout: float = 30) -> dict:
        return wait_for(
            lambda: (s := self.status())["state"] == state and s, timeout, f"WhatsApp state {state!r}"
        )
