"""The gateway's database: one SQLite file in WAL mode, numbered migrations, one writer thread.

Every statement runs on one thread that owns the connection, off the event loop. Work that arrives
together is committed together (group commit): the thread takes everything queued, runs each piece in
its own savepoint (one failing piece rolls back alone) and commits once, so acceptance is not bound by
one fsync per request. A caller's future resolves only after the commit that holds its work.

Migrations are ``migrations/NNN_name.sql``, applied in order at open, each in its own transaction and
recorded in ``schema_migrations``. The SQL is kept portable: ``pg.py`` runs the same store functions and
migrations on PostgreSQL (``WA_DATABASE_URL``). The few spots that differ branch on ``conn.dialect``.
Which of the two the gateway opens is ``engine.open_database``'s choice: this module never imports ``pg.py``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import queue
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# One piece of work for the writer thread: fn(conn, *args, **kwargs), and the future its caller waits on.
Work = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], "Future[Any]"]


class DatabaseError(RuntimeError):
    """The database cannot be opened or migrated (a newer schema, a broken file, PostgreSQL unreachable)."""


class StorageFull(DatabaseError):
    """A write failed for lack of space (or quota) that SQLite reported only as an I/O error (EDQUOT is
    ``SQLITE_IOERR_WRITE`` to it, not ``SQLITE_FULL``); the original error is its ``__cause__``."""


SQLITE_FULL = 13  # primary result codes: the extended ones carry them in their low byte
SQLITE_IOERR = 10
DISK_FULL_SQLSTATE = "53100"  # PostgreSQL's disk_full
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
PROBE_BYTES = 64 * 1024


def storage_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or what it was raised from, says the disk is full or over quota: SQLite's
    SQLITE_FULL ("database or disk is full"), an ``OSError`` ENOSPC/EDQUOT (any other file the gateway
    writes), PostgreSQL's disk_full, or ``StorageFull``. Such a write can work again later, unlike a bug:
    callers answer 507 and retry, instead of 500 and a traceback."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, StorageFull) or (isinstance(exc, OSError) and exc.errno in NO_SPACE):
            return True
        if isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_FULL:
            return True
        if getattr(exc, "sqlstate", None) == DISK_FULL_SQLSTATE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def out_of_space(directory: Path) -> bool:
    """Whether ``directory``'s file system refuses a small write for lack of space or quota: tells a full disk
    from a failing one when SQLite says only "disk I/O error". Only called after such an error."""
    probe = directory / ".storage-probe-gateway"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, os.urandom(PROBE_BYTES))
            os.fdatasync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        return exc.errno in NO_SPACE
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return False


def store_errors() -> tuple[type[BaseException], ...]:
    """What a failing store raises, on either engine. The PostgreSQL driver's errors only once it is loaded
    (nothing else can raise them): a gateway on SQLite never imports asyncpg (3 MB of its RSS)."""
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return (sqlite3.Error, DatabaseError)
    return (sqlite3.Error, DatabaseError, asyncpg.PostgresError, asyncpg.InterfaceError)


def migrations(directory: Path = MIGRATIONS) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration file, in order; versions must be 1, 2, 3, ..."""
    found = []
    for path in sorted(directory.iterdir()):
        m = _MIGRATION.match(path.name)
        if m:
            found.append((int(m.group(1)), m.group(2), path.read_text()))
    for expected, (version, name, _) in enumerate(found, start=1):
        if version != expected:
            raise DatabaseError(f"migration {version:03d}_{name} is out of sequence (expected {expected:03d})")
    return found


class SqliteConnection(sqlite3.Connection):
    """A ``sqlite3.Connection`` that says which engine it is (``pg.PgConnection`` says ``postgresql``)."""

    dialect = "sqlite"

    def xact_lock(self, key: int) -> None:
        """PostgreSQL's transaction-scoped advisory lock; nothing to do here (one writer holds the file)."""


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection with the pragmas every connection needs; the file is created 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=SqliteConnection)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")  # FULL: a commit survives a power cut too
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def migrate(conn: sqlite3.Connection, directory: Path = MIGRATIONS) -> list[int]:
    """Apply the migrations this database has not seen; returns the versions applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    have = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    known = migrations(directory)
    if have and max(have) > len(known):
        raise DatabaseError(
            f"the database has schema version {max(have)}, newer than this gateway knows ({len(known)})"
        )
    applied = []
    for version, name, sql in known:
        if version in have:
            continue
        # One transaction per migration: its DDL and its record commit together or not at all.
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{sql}\n"
            f"INSERT INTO schema_migrations (version, name, applied_at) VALUES ({version}, '{name}', {time.time()});\n"
            "COMMIT;"
        )
        applied.append(version)
    return applied


class WriterQueue:
    """How callers reach a store: work queued, in order, to the one thread that owns the connection
    (``_queue``/``_thread``, set by the engine). ``Database`` (SQLite) and ``pg.PostgresDatabase`` differ
    only in that thread."""

    _queue: queue.SimpleQueue[Work | None]  # None: stop (close)
    _thread: threading.Thread | None
    max_batch: int

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Queue ``fn(conn, *args, **kwargs)``; it runs in order with everything submitted before it."""
        future: Future[T] = Future()
        self._queue.put((fn, args, kwargs, future))
        return future

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Blocking form of ``run`` (tests, scripts)."""
        return self.submit(fn, *args, **kwargs).result()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def _batches(self) -> Iterator[list[Work]]:
        """For the writer thread, until ``close()``: everything queued now (up to ``max_batch``) as one
        batch, for one commit. A caller that gave up (its task was cancelled) is left out; every other future
        is marked running, so it can no longer be cancelled under us and setting its result cannot fail."""
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            batch = [item for item in batch if item[-1].set_running_or_notify_cancel()]
            if batch:
                yield batch


class Database(WriterQueue):
    """One writer thread with group commit. ``group_commit=False`` commits each piece alone (the
    benchmark's baseline)."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, group_commit: bool = True, max_batch: int = 512,
                 synchronous: str = "FULL"):
        self.path = Path(path)
        self.group_commit = group_commit
        self.max_batch = max_batch if group_commit else 1
        self.synchronous = synchronous
        self.applied: list[int] = []
        self.commits = 0  # transactions committed (for tests and the benchmark)
        self._queue: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None

    def open(self) -> Database:
        self._conn = connect(self.path, self.synchronous)
        try:
            self.applied = migrate(self._conn)
        except Exception:
            self._conn.close()
            raise
        self._thread = threading.Thread(target=self._run, name="gateway-db", daemon=True)
        self._thread.start()
        return self

    # --- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        for batch in self._batches():
            self._run_batch(conn, batch)
        conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Work]) -> None:
        try:
            results = self._transaction(conn, batch)
        except BaseException as exc:  # noqa: BLE001 - the commit failed: nothing of the batch holds
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            exc = self._classify(exc)
            if len(batch) > 1 and storage_full(exc):
                # The disk filled under the batch: each piece alone, so that a read, or a write that still fits,
                # is not failed for another's sake (the transaction was rolled back: running them again is safe).
                for item in batch:
                    self._run_batch(conn, [item])
                return
            for *_call, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, ok, value in results:  # only now, after the commit, do callers learn the outcome
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _transaction(self, conn: sqlite3.Connection, batch: list[Work]) -> list[tuple[Future[Any], bool, Any]]:
        """The batch in one transaction, each piece in its own savepoint; raises when the batch failed whole."""
        results: list[tuple[Future[Any], bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        for fn, args, kwargs, future in batch:
            conn.execute("SAVEPOINT piece")
            try:
                value = fn(conn, *args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (SQLITE_FULL and some I/O errors do): the pieces
                    # before this one are gone too, and this error, not a missing savepoint, is the batch's.
                    raise
                conn.execute("ROLLBACK TO piece")
                conn.execute("RELEASE piece")
                results.append((future, False, self._classify(exc)))
            else:
                conn.execute("RELEASE piece")
                results.append((future, True, value))
        conn.execute("COMMIT")
        self.commits += 1
        return results

    def _classify(self, exc: BaseException) -> BaseException:
        """SQLite's "disk I/O error" is a full disk when the data dir refuses a probe write for lack of space
        (EDQUOT, and ENOSPC in some places): then ``StorageFull``, so that callers answer 507, not 500."""
        code = getattr(exc, "sqlite_errorcode", 0) or 0
        if isinstance(exc, sqlite3.Error) and code & 0xFF == SQLITE_IOERR and out_of_space(self.path.parent):
            full = StorageFull(f"the disk is full or over quota: {exc}")
            full.__cause__ = exc
            return full
        return exc
