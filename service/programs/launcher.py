"""``wa-gateway``: the one way to start supervisord (and reach it with supervisorctl) with the shipped conf.

supervisord's conf takes paths from ``%(ENV_...)s`` and has no defaults of its own, so this fills in the
documented defaults, creates the private 0700 directories, checks the gateway's settings and its port
before anything starts (a bad setting ends here with one line and exit 78), resolves ``WA_LOG_FORMAT=auto``
from the stream the operator sees (the programs only see supervisord's pipes), and puts this virtualenv
first on PATH (the conf runs ``python`` and ``node`` from PATH).

Before anything starts it takes the data dir's lock (``datalock.py``): a second stack on the same data dir
refuses to start, naming the holder, and exits 75.

It then runs supervisord as its only child instead of exec'ing it, because supervisord always exits 0:
the launcher forwards the stop signals, reaps orphans (as PID 1 in a container, and as a child subreaper
anywhere: a dead supervisord's programs are waited for before the lock goes, ``orphans.py``), and turns a
shutdown caused by a configuration error (``config_error.py``) into a clear line and exit code 78.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from service import config_error
from service.auth import admin_key as api_keys
from service.logging_setup import resolve_format
from service.programs import datalock, launcher_log, orphans, running
from service.programs.client_commands import CLIENT_COMMANDS, client_command, split_command
from service.settings import DEFAULT_PORT, REPO_ROOT, Settings, SettingsError
from service.webhooks import secret as webhook_secret

CONF = REPO_ROOT / "conf" / "supervisord.conf"
EMULATOR = REPO_ROOT / "node_worker" / "emulator" / "main.js"
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
USAGE = ("usage: wa-gateway [run|sandbox] [supervisord args] | wa-gateway ctl <supervisorctl args>"
         " | wa-gateway api-key | wa-gateway webhook-secret | wa-gateway backup DEST | wa-gateway restore SRC"
         " | wa-gateway mcp [--url URL]"
         " | wa-gateway status|connect|send|messages|logout|accounts|health|selftest [--sandbox] [options]"
         " (the client CLI; see wa-gateway <command> --help)")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _base_env(sandbox: bool) -> dict[str, str]:
    env = dict(os.environ)
    default_data = REPO_ROOT / ("sandbox_data" if sandbox else "data")
    data_dir = Path(env.get("WA_DATA_DIR") or default_data).resolve()
    env["WA_DATA_DIR"] = str(data_dir)
    env.setdefault("WA_RUN_DIR", str(data_dir / "run"))
    env["WA_SANDBOX"] = "true" if sandbox else "false"  # selects conf/modes/sandbox-<value>.conf
    # The worker shards (supervisord's numprocs): one per core unless set.
    if not env.get("WA_WORKER_SHARDS", "").strip():
        env["WA_WORKER_SHARDS"] = str(max(1, os.cpu_count() or 1))
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


def _prepare_dirs(env: dict[str, str]) -> None:
    for key in ("WA_DATA_DIR", "WA_RUN_DIR"):
        path = Path(env[key])
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)


def _clear_stale_reasons(env: dict[str, str]) -> None:
    run_dir = Path(env["WA_RUN_DIR"])
    # Reasons left by an earlier run must not stop this one.
    for stale in [*run_dir.glob("config-error.*"), run_dir / config_error.SHUTDOWN_REASON]:
        stale.unlink(missing_ok=True)


# The emulator's root key and media CA in one node process: each ``main.js root-key`` / ``media-ca`` run costs ~0.4
# CPU-s of node start and protobuf loading, and the tests start sandbox stacks over and over.
_SANDBOX_KEYS = ("const [certs, tls] = await Promise.all([import(process.argv[1]), import(process.argv[2])]);"
                 "const key = process.env.WA_SANDBOX_ROOT_KEY || Buffer.from(certs.loadOrCreateRootKey("
                 "process.env.WA_EMULATOR_ROOT_KEY_FILE).public).toString('base64');"
                 "const ca = process.env.WA_SANDBOX_MEDIA_CA || tls.ensureMediaCa(process.env.WA_EMULATOR_MEDIA_DIR);"
                 "process.stdout.write(JSON.stringify([key, ca]))")


def _sandbox_env(env: dict[str, str]) -> dict[str, str]:
    port = env.setdefault("WA_EMULATOR_PORT", "3002")
    env.setdefault("WA_SERVER_URL", f"ws://127.0.0.1:{port}/ws/chat")
    emulator_dir = Path(env["WA_DATA_DIR"]) / "emulator"
    emulator_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    env.setdefault("WA_EMULATOR_STATE_FILE", str(emulator_dir / "state.json"))
    env["WA_EMULATOR_ROOT_KEY_FILE"] = env.get("WA_EMULATOR_ROOT_KEY_FILE") or str(emulator_dir / "root-key.json")
    env.setdefault("WA_EMULATOR_GATEWAY_URL", f"http://127.0.0.1:{env.get('WA_PORT', '3001')}")
    # The sandbox's receivers (selftest, the examples, the bench) listen on loopback: let webhooks reach them.
    env.setdefault("WA_WEBHOOK_ALLOW_PRIVATE", "127.0.0.0/8,::1")
    # The emulator's media host has a certificate from its own test CA: created here, in the media dir the
    # emulator then uses too, and named to the worker, whose media uploads and downloads trust it (the worker
    # takes WA_SANDBOX_MEDIA_CA only with WA_SANDBOX=true: production never trusts it).
    env["WA_EMULATOR_MEDIA_DIR"] = env.get("WA_EMULATOR_MEDIA_DIR") or str(emulator_dir / "wa-emulator-media")
    if not (env.get("WA_SANDBOX_ROOT_KEY") and env.get("WA_SANDBOX_MEDIA_CA")):
        modules = [str(EMULATOR.parent / "certs.js"), str(EMULATOR.parent / "media-tls.js")]
        out = subprocess.run(["node", "--input-type=module", "-e", _SANDBOX_KEYS, *modules],
                             env=env, check=True, capture_output=True, text=True)
        env["WA_SANDBOX_ROOT_KEY"], env["WA_SANDBOX_MEDIA_CA"] = json.loads(out.stdout)
    return env


def preflight(env: dict[str, str]) -> str | None:
    """The reason the gateway cannot start with these settings, or None. Checked before supervisord."""
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        return str(exc)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
            probe.bind((settings.host, settings.port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"WA_PORT {settings.port} on {settings.host} is already in use by another program"
        return f"cannot listen on {settings.host}:{settings.port} (WA_HOST/WA_PORT): {exc.strerror}"
    return None


# --- the API key (locked by default) ---------------------------------------------------------------
def ensure_api_key(env: dict[str, str]) -> str | None:
    """Create the data dir's key file before anything starts when WA_API_KEY is unset, so the
    gateway and the emulator read the same key; say where (never the value). None, or a problem."""
    try:
        keys = api_keys.resolve(env.get("WA_API_KEY"), Path(env["WA_DATA_DIR"]))
    except (api_keys.ApiKeyError, OSError) as exc:
        return str(exc)
    if keys.created:
        command = api_keys.print_command(sandbox=_truthy(env.get("WA_SANDBOX")))
        launcher_log.info("launcher.api_key_generated", f"generated an API key in {keys.path} (print it with "
                          f"`{command}`)", path=str(keys.path), print_with=command)
    return None


def print_api_key(args: list[str]) -> int:
    """``wa-gateway api-key [--sandbox]``: print the key clients send (creating it if none exists yet)."""
    if any(a not in {"--sandbox"} for a in args):
        print("usage: wa-gateway api-key [--sandbox]", file=sys.stderr)
        return 2
    sandbox = "--sandbox" in args
    env = _base_env(sandbox=sandbox)
    try:
        keys = api_keys.resolve(env.get("WA_API_KEY"), Path(env["WA_DATA_DIR"]))
    except (api_keys.ApiKeyError, OSError) as exc:
        print(f"wa-gateway: {exc}", file=sys.stderr)
        return config_error.EX_CONFIG
    if (hint := other_stack_hint("api-key", sandbox, os.environ, REPO_ROOT)) is not None:
        print(hint, file=sys.stderr)
    print(keys.first)
    return 0


def api_port(env: Mapping[str, str]) -> str:
    """The port the gateway will listen on (WA_PORT, else the default), for the data dir's lock details."""
    return env.get("WA_PORT", "").strip() or str(DEFAULT_PORT)


def other_stack_hint(command: str, sandbox: bool, environ: Mapping[str, str], repo: Path) -> str | None:
    """The sandbox and ``make run`` keep their own keys (``sandbox_data/`` and ``data/``): a newcomer who ran
    ``make sandbox`` and asks for the key without ``--sandbox`` gets a real-looking key the sandbox refuses.
    Say so (on stderr: ``KEY=$(...)`` still takes the key alone) when the sandbox's data dir exists and the
    command was given no data dir of its own."""
    if sandbox or environ.get("WA_DATA_DIR") or not (repo / "sandbox_data").is_dir():
        return None
    return (f"wa-gateway: this is the {command.replace('-', ' ')} of `make run` (data dir {repo / 'data'}); "
            f"the sandbox (`make sandbox`) has its own: .venv/bin/wa-gateway {command} --sandbox")


def print_webhook_secret(args: list[str]) -> int:
    """``wa-gateway webhook-secret [--sandbox]``: print the secret webhooks are signed with (the first of
    WA_WEBHOOK_SECRET, else the data dir's file, created if none exists yet) for the receiver to verify."""
    if any(a not in {"--sandbox"} for a in args):
        print("usage: wa-gateway webhook-secret [--sandbox]", file=sys.stderr)
        return 2
    env = _base_env(sandbox="--sandbox" in args)
    try:
        configured = webhook_secret.parse(env.get("WA_WEBHOOK_SECRET"))
        resolved = webhook_secret.resolve(configured, Path(env["WA_DATA_DIR"]))
    except (webhook_secret.SecretError, OSError) as exc:
        print(f"wa-gateway: {exc}", file=sys.stderr)
        return config_error.EX_CONFIG
    if (hint := other_stack_hint("webhook-secret", "--sandbox" in args, os.environ, REPO_ROOT)) is not None:
        print(hint, file=sys.stderr)
    print(resolved.first)
    return 0


# --- backup and restore of the data dir (service/programs/backup.py) -------------------------------------
def backup_command(command: str, args: list[str]) -> int:
    """``wa-gateway backup DEST [--sandbox]`` (while running: the worker pauses for the copy) and
    ``wa-gateway restore SRC [--sandbox]`` (the stack stopped)."""
    from service.programs import backup

    sandbox = "--sandbox" in args
    paths = [a for a in args if a != "--sandbox"]
    if len(paths) != 1 or paths[0].startswith("-"):
        print(f"usage: wa-gateway {command} {'DEST' if command == 'backup' else 'SRC'} [--sandbox]", file=sys.stderr)
        return 2
    env = _base_env(sandbox=sandbox)
    if env.get("WA_DATABASE_URL", "").strip():
        # The store is not in the data dir: a copy of the data dir alone would not be a backup.
        print(f"wa-gateway: {command} refused: the store is on PostgreSQL (WA_DATABASE_URL), and `wa-gateway "
              f"{command}` copies the SQLite store in the data dir only. Back PostgreSQL up with its own tools "
              "(pg_dump --format=custom, restored with pg_restore) or your provider's snapshots.", file=sys.stderr)
        return 1
    data_dir = Path(env["WA_DATA_DIR"])
    socket_path = Path(env["WA_RUN_DIR"]) / "supervisor.sock"
    target = Path(paths[0]).resolve()
    try:
        if command == "backup":
            manifest = backup.backup(data_dir, socket_path, target)
            paused = manifest["worker_paused_seconds"]
            print(f"wa-gateway: backed up {data_dir} to {target}: {len(manifest['files'])} files"
                  + (f", the worker paused {paused:.2f} s" if paused is not None else " (stack not running)"))
        else:
            aside = backup.restore(data_dir, socket_path, target)
            print(f"wa-gateway: restored {target} into {data_dir}"
                  + (f"; what it replaced is in {aside} (kept, outside the checkout: it holds the old session "
                     "keys; delete it once the restored stack works)" if aside else ""))
    except (backup.BackupError, OSError) as exc:
        print(f"wa-gateway: {command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


# How long the launcher waits for the programs of a supervisord that died (they stop by themselves within
# about a second, or their own shutdown bound when busy) before it kills them (SIGKILL) and lets the lock go.
ORPHAN_WAIT_SECONDS = 20.0


def supervise(argv: list[str], env: dict[str, str], lock: datalock.DataDirLock | None = None) -> int:
    """Run supervisord as the only child, forward stop signals, reap orphans, report why it ended."""
    orphans.become_subreaper()
    # supervisord inherits the lock (the kernel keeps it while either of us lives), and gets SIGTERM
    # (stopping its programs) if this launcher dies first.
    child = subprocess.Popen(argv, env=env, pass_fds=(lock.fd,) if lock else (),
                             preexec_fn=orphans.signal_on_parent_death)
    if lock is not None:
        lock.record(supervisord_pid=child.pid)

    def forward(signum: int, _frame: FrameType | None) -> None:
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    ended: list[str] = []  # programs of a supervisord that died, reaped by us
    while True:
        pid, status = os.waitpid(-1, 0)  # as PID 1 or subreaper this also reaps orphans re-parented to us
        if pid == child.pid:
            break
        if orphans.is_dead(child.pid):  # supervisord is gone already: this was one of its programs
            ended.append(orphans.describe_end(pid, status))
    # A supervisord that died (kill -9) leaves its programs to us: they exit on their own; wait for them.
    ended += orphans.reap_children(ORPHAN_WAIT_SECONDS)
    if ended:
        launcher_log.error("launcher.orphans_reaped", f"supervisord ended ({orphans.describe_end(child.pid, status)}) "
                           "before its programs; they stopped: " + "; ".join(ended), programs=ended)
    code = os.waitstatus_to_exitcode(status)
    reason = config_error.read(Path(env["WA_RUN_DIR"]) / config_error.SHUTDOWN_REASON)
    if reason is not None:
        launcher_log.error("launcher.config_error", f"stopped on a configuration error in {reason['reason']}",
                           reason=reason["reason"])
        return config_error.EX_CONFIG
    return code if code >= 0 else 128 - code


def run_stack(command: str, args: list[str]) -> int:
    """``wa-gateway run|sandbox``: dirs, the data dir's lock, the checks, then supervisord."""
    env = _base_env(sandbox=command == "sandbox")
    env["WA_LOG_FORMAT"] = resolve_format(
        env.get("WA_LOG_FORMAT", "").strip().lower() or "auto", sys.stdout.fileno())
    launcher_log.setup(env["WA_LOG_FORMAT"])
    _prepare_dirs(env)
    try:
        lock = datalock.acquire(Path(env["WA_DATA_DIR"]), command=command, run_dir=env["WA_RUN_DIR"])
    except datalock.DataDirLocked as exc:
        launcher_log.error("launcher.data_dir_in_use", f"refusing to start: {exc}", data_dir=env["WA_DATA_DIR"],
                           holder=exc.holder)
        return datalock.EX_LOCKED
    lock.record(port=api_port(env))  # what a second stack's refusal names
    if running.answers(Path(env["WA_RUN_DIR"])):  # another data dir's stack on this run dir
        lock.release()
        holder = running.describe_run_dir(Path(env["WA_RUN_DIR"]))
        launcher_log.error("launcher.run_dir_in_use", f"refusing to start: the run dir {env['WA_RUN_DIR']} "
                           f"(WA_RUN_DIR) is in use by {holder}; stop that stack first, or give this one a "
                           "WA_RUN_DIR of its own", run_dir=env["WA_RUN_DIR"])
        return datalock.EX_LOCKED
    _clear_stale_reasons(env)
    problem = preflight(env) or ensure_api_key(env)
    if problem is not None:
        launcher_log.error("launcher.config_error", f"configuration error: {problem}", problem=problem)
        return config_error.EX_CONFIG
    if command == "sandbox":
        env = _sandbox_env(env)
    supervisord = str(Path(sys.executable).parent / "supervisord")
    with lock:
        return supervise([supervisord, "--nodaemon", "-c", str(CONF), *_as_current_user(), *args], env, lock)


def _as_current_user() -> list[str]:
    """``--user <name>``: supervisord's ``user=``, the user it already runs as (nothing is dropped), so it does not
    log "CRIT Supervisor is running as root" when that user is root. Left out for a uid without a passwd entry
    (supervisord would refuse the name it cannot look up; such a uid is never root)."""
    try:
        return ["--user", pwd.getpwuid(os.getuid()).pw_name]
    except KeyError:
        return []


def _running_run_dir() -> Path | None:
    """The run dir of the stack ``ctl`` should talk to: the configured one, else a default that answers."""
    if os.environ.get("WA_RUN_DIR") or os.environ.get("WA_DATA_DIR"):
        return None  # _base_env derives it from the operator's settings
    for data in ("data", "sandbox_data"):
        sock_path = REPO_ROOT / data / "run" / "supervisor.sock"
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(1)
                probe.connect(str(sock_path))
            return sock_path.parent
        except OSError:
            continue
    return None


def ctl(args: list[str]) -> int:
    """``wa-gateway ctl ARGS``: supervisorctl against the running stack; one line and exit 69 without one."""
    found = _running_run_dir()
    env = _base_env(sandbox=False)
    if found is not None:
        env["WA_RUN_DIR"] = str(found)
    elif not running.answers(Path(env["WA_RUN_DIR"])):
        told = os.environ.get("WA_RUN_DIR") or os.environ.get("WA_DATA_DIR")
        defaults = None if told else (REPO_ROOT / "data", REPO_ROOT / "sandbox_data")
        print(f"wa-gateway: {running.no_stack_line(Path(env['WA_DATA_DIR']), defaults)}", file=sys.stderr)
        return running.EX_UNAVAILABLE
    supervisorctl = str(Path(sys.executable).parent / "supervisorctl")
    os.execve(supervisorctl, [supervisorctl, "-c", str(CONF), *args], env)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    sandbox = False
    if args and args[0].startswith("-") and args[0] not in {"-h", "--help"}:
        # Options before the command (`wa-gateway --sandbox status`, `wa-gateway --url X status`).
        found, args, sandbox = split_command(args)
        if found is None:
            print(USAGE, file=sys.stderr)
            return 2
        args = [found, *args]
    command = args.pop(0) if args else "run"
    if sandbox:
        args.append("--sandbox")
    if command in {"run", "sandbox"}:
        return run_stack(command, args)
    if command == "ctl":
        return ctl(args)
    if command == "mcp":  # the MCP server over stdio, relayed to a running gateway (service/mcp/stdio_proxy.py)
        from service.mcp import stdio_proxy

        return stdio_proxy.main(args)
    if command in CLIENT_COMMANDS or (command == "api-key" and args and args[0] in {"create", "list", "revoke"}):
        # the client's commands (api-key create|list|revoke: keys scoped to an account, through the API)
        sandbox = "--sandbox" in args
        rest = [a for a in args if a != "--sandbox"]
        return client_command(command, rest, sandbox, _base_env(sandbox=sandbox))
    if command == "api-key":
        return print_api_key(args)
    if command == "webhook-secret":
        return print_webhook_secret(args)
    if command in {"backup", "restore"}:
        return backup_command(command, args)
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
