"""Which stack runs where, for the one line ``ctl`` prints without one and a second stack prints when refused.

``wa-gateway ctl`` without a running stack would otherwise show supervisorctl's raw socket error, and a
second stack on a run dir already in use would show supervisord's "another program is already listening on
a port" (about a unix socket, and naming no one). Both now say what runs, or that nothing does, in one line.
"""

from __future__ import annotations

import socket
import xmlrpc.client
from pathlib import Path

from service.programs import datalock

SOCKET_NAME = "supervisor.sock"
# conf/supervisord.conf's [unix_http_server] credentials: no secret (the socket is 0700 in a 0700 dir), they only
# keep supervisord from logging a CRIT about a server without any at every start.
RPC_USERNAME, RPC_PASSWORD = "wa-gateway", "local-socket-0700"
EX_UNAVAILABLE = 69  # sysexits: the service (the stack ctl would talk to) is not running


def rpc(socket_path: Path | str) -> xmlrpc.client.ServerProxy:
    """supervisord's XML-RPC on its unix socket (blocking: call it off the event loop)."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(RPC_USERNAME, RPC_PASSWORD, f"unix://{socket_path}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def answers(run_dir: Path) -> bool:
    """Whether a supervisord listens on ``run_dir``'s socket (a stale socket file does not count)."""
    try:
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(1)
            probe.connect(str(run_dir / SOCKET_NAME))
        return True
    except OSError:
        return False


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


def describe_run_dir(run_dir: Path) -> str:
    """Who uses ``run_dir``: its supervisord's pid, data dir and API port (from its pid file and environment),
    and since when (from that data dir's lock), as far as known."""
    try:
        pid = int((run_dir / "supervisord.pid").read_text().strip())
    except (OSError, ValueError):
        return "another wa-gateway stack (its supervisord's pid file is unreadable)"
    env = _environ(pid)
    text = f"the stack of supervisord pid {pid}"
    if env.get("WA_PORT"):
        text += f" (API port {env['WA_PORT']})"
    if env.get("WA_DATA_DIR"):
        text += f", data dir {env['WA_DATA_DIR']}"
        holder = datalock.read_holder(Path(env["WA_DATA_DIR"]) / datalock.LOCK_FILE, attempts=1) or {}
        if holder.get("started_at"):
            text += f", since {holder['started_at']}"
    return text


def no_stack_line(data_dir: Path, default_dirs: tuple[Path, Path] | None) -> str:
    """The one line ``ctl`` prints when no supervisord answers."""
    if default_dirs is not None:
        data, sandbox = default_dirs
        return (f"no stack is running for data dir {data} (nor the sandbox's, {sandbox}); start it with "
                "make run (or make sandbox)")
    return f"no stack is running for data dir {data_dir}; start it with make run (or make sandbox)"
