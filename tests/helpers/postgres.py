"""A throwaway PostgreSQL for tests: Debian's server binaries, a cluster in a temporary directory, always
stopped and removed afterwards.

The server listens on 127.0.0.1 (a free port) and on a unix socket inside its own temp dir only, with
scram-sha-256 password authentication for every connection (a random password), and fsync on (the
crash tests rely on what a commit promises). PostgreSQL refuses to run as root: when the tests run as
root, initdb and postgres run as the ``postgres`` user (Debian's package creates it), else ``nobody``,
through ``setpriv``, and the temp dir is handed to that user.

``WA_TEST_DATABASE=postgresql`` (tests/conftest.py) starts one server per test session (one per xdist
worker) and gives every ``Stack`` and every ``store_database()`` a fresh database on it.
Binaries: ``pg_config --bindir``, else the newest ``/usr/lib/postgresql/*/bin``; when there are none the
tests that need them skip, saying how to install them (``make test`` does: the ``postgres`` target).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers.stack import STARTED_SESSIONS, free_port, sweep_session

SWITCH = "WA_TEST_DATABASE"
USER = "wa_test"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def bindir() -> Path:
    """Where initdb, postgres and pg_isready are, or PostgresUnavailable saying how to get them."""
    candidates = []
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass

    def version(path: str) -> int:
        m = re.search(r"/postgresql/(\d+)/", path)
        return int(m.group(1)) if m else 0

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for path in candidates:
        if all((path / name).is_file() for name in ("initdb", "postgres", "pg_isready")):
            return path
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found (no initdb in `pg_config --bindir` or /usr/lib/postgresql/*/bin): "
        "install Debian's `postgresql` package (`make postgres` does, as root or with sudo)"
    )


def wanted() -> bool:
    """Whether this run asked for PostgreSQL (``WA_TEST_DATABASE=postgresql``)."""
    value = os.environ.get(SWITCH, "").strip().lower()
    if value not in {"", "sqlite", "postgresql"}:
        raise ValueError(f"{SWITCH} must be sqlite or postgresql, got {value!r}")
    return value == "postgresql"


def _run_as() -> pwd.struct_passwd | None:
    """The user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and there is no `postgres` or `nobody` user to run PostgreSQL as")


class PostgresServer:
    """One cluster in a temp dir. ``start()`` then ``url(db)`` / ``create_database()``; ``stop()`` always."""

    def __init__(self) -> None:
        self.bin = bindir()
        self.user = _run_as()
        self.tmp = Path(tempfile.mkdtemp(prefix="wa-pg-"))
        self.data = self.tmp / "data"
        self.sockets = self.tmp / "sock"
        self.log_path = self.tmp / "postgres.log"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.proc: subprocess.Popen | None = None
        self._count = 0

    def _command(self, *argv: str) -> list[str]:
        if self.user is None:
            return list(argv)
        return ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--clear-groups", "--", *argv]

    def start(self) -> PostgresServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.sockets.mkdir()
        pwfile = self.tmp / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.user is not None:
            for path in (self.tmp, self.sockets, pwfile):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.tmp, 0o700)
        os.chmod(pwfile, 0o600)
        init = subprocess.run(
            self._command(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile),
                          "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"),
            capture_output=True, text=True, timeout=120,
        )
        pwfile.unlink()
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {init.stderr[-2000:]}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# tests/helpers/postgres.py\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.sockets}'\n"
                "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n"
                "max_connections = 100\nshared_buffers = 32MB\n"
                "logging_collector = off\n"
            )
        log = open(self.log_path, "ab")
        if self.user is not None:
            os.chown(self.log_path, self.user.pw_uid, self.user.pw_gid)
        try:
            # Its own session, so that a failed stop can sweep the postmaster and every backend.
            self.proc = subprocess.Popen(self._command(str(self.bin / "postgres"), "-D", str(self.data)),
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        STARTED_SESSIONS.add(self.proc.pid)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: {self.log()[-2000:]}")
            ready = subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                                   timeout=10)
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not ready after 60 s: {self.log()[-2000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT, what ``pg_ctl stop -m fast`` sends); SIGKILL of the whole session when it
        does not end in 30 s; then the temp dir goes. Safe to call twice."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc is not None:
                sweep_session(self.proc.pid)
                self.proc.wait(5)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- databases ---------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def admin(self, *statements: str) -> None:
        """Run statements as the superuser in the ``postgres`` database (outside a transaction)."""
        import asyncpg

        async def go() -> None:
            conn = await asyncpg.connect(user=USER, password=self.password, host="127.0.0.1", port=self.port,
                                         database="postgres", timeout=30)
            try:
                for sql in statements:
                    await conn.execute(sql)
            finally:
                await conn.close()

        # A thread of its own: callers may be inside a running event loop (async tests, fixtures).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, go()).result()

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        if name is None:
            self._count += 1
            name = f"wa_{os.getpid()}_{self._count}_{secrets.token_hex(3)}"
        if not re.fullmatch(r"[a-z0-9_]{1,63}", name):
            raise ValueError(f"bad database name {name!r}")
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)


# --- the switch ---------------------------------------------------------------------------------

SERVER: PostgresServer | None = None  # set by tests/conftest.py while WA_TEST_DATABASE=postgresql
_BY_PATH: dict[str, str] = {}


def store_database(path, **kwargs):
    """The store the in-process tests use: SQLite at ``path``, or with ``WA_TEST_DATABASE=postgresql`` a
    PostgreSQL database that belongs to ``path`` (the same path opens the same database again)."""
    from service.store.db import Database

    if SERVER is None:
        return Database(path, **kwargs)
    from service.store.pg import PostgresDatabase

    key = str(path)
    if key not in _BY_PATH:
        _BY_PATH[key] = SERVER.create_database()
    return PostgresDatabase(_BY_PATH[key], **kwargs)


def database_env() -> dict[str, str]:
    """``{"WA_DATABASE_URL": <a fresh database>}`` under the switch, else ``{}``: for in-process apps."""
    return {"WA_DATABASE_URL": SERVER.create_database()} if SERVER is not None else {}
