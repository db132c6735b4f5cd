"""``wa-gateway``: the one way to start supervisord (and reach it with supervisorctl) with the shipped conf.

supervisord's conf takes paths from ``%(ENV_...)s`` and has no defaults of its own, so this fills in
the documented defaults, creates the private 0700 run directory for the sockets, puts this
virtualenv first on PATH (the conf runs ``python`` and ``node`` from PATH) and then *execs*
supervisord, so that in a container supervisord is PID 1 and receives SIGTERM itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .settings import REPO_ROOT

CONF = REPO_ROOT / "conf" / "supervisord.conf"
EMULATOR = REPO_ROOT / "node_worker" / "emulator" / "main.js"


def _base_env(sandbox: bool) -> dict[str, str]:
    env = dict(os.environ)
    default_data = REPO_ROOT / ("sandbox_data" if sandbox else "data")
    data_dir = Path(env.get("WA_DATA_DIR") or default_data).resolve()
    env["WA_DATA_DIR"] = str(data_dir)
    env.setdefault("WA_RUN_DIR", str(data_dir / "run"))
    env.setdefault("WA_SANDBOX", "false")
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


def _prepare_dirs(env: dict[str, str]) -> None:
    for key in ("WA_DATA_DIR", "WA_RUN_DIR"):
        path = Path(env[key])
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)


def _sandbox_env(env: dict[str, str]) -> dict[str, str]:
    env["WA_SANDBOX"] = "true"
    port = env.setdefault("WA_EMULATOR_PORT", "3002")
    env.setdefault("WA_SERVER_URL", f"ws://127.0.0.1:{port}/ws/chat")
    emulator_dir = Path(env["WA_DATA_DIR"]) / "emulator"
    emulator_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    env.setdefault("WA_EMULATOR_STATE_FILE", str(emulator_dir / "state.json"))
    env.setdefault("WA_EMULATOR_ROOT_KEY_FILE", str(emulator_dir / "root-key.json"))
    env.setdefault("WA_EMULATOR_GATEWAY_URL", f"http://127.0.0.1:{env.get('WA_PORT', '3001')}")
    if not env.get("WA_SANDBOX_ROOT_KEY"):
        env["WA_SANDBOX_ROOT_KEY"] = subprocess.run(
            ["node", str(EMULATOR), "root-key"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
    return env


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else "run"
    if command in {"run", "sandbox"}:
        env = _base_env(sandbox=command == "sandbox")
        _prepare_dirs(env)
        if command == "sandbox":
            env = _sandbox_env(env)
        supervisord = str(Path(sys.executable).parent / "supervisord")
        os.execve(supervisord, [supervisord, "--nodaemon", "-c", str(CONF), *args], env)
    if command == "ctl":
        env = _base_env(sandbox=os.environ.get("WA_SANDBOX") == "true")
        ctl = str(Path(sys.executable).parent / "supervisorctl")
        os.execve(ctl, [ctl, "-c", str(CONF), *args], env)
    print("usage: wa-gateway [run|sandbox] [supervisord args] | wa-gateway ctl <supervisorctl args>",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
