"""The gateway's database on PostgreSQL (``WA_DATABASE_URL``): the same interface as ``db.Database``.

Interface. ``PostgresDatabase`` has ``open/close/submit/call/run``, ``applied`` and ``commits`` like the
SQLite ``Database``, and the store functions (``fn(conn, ...)``, SQL only) run unchanged: ``conn`` is a
small facade over one asyncpg connection with ``execute(sql, params)`` returning a cursor
(``fetchone``, ``fetchall``, iteration, ``rowcount``); rows are asyncpg ``Record``s, which answer
``row["col"]``, ``row[0]``, ``dict(row)`` and ``keys()`` like ``sqlite3.Row``. ``?`` placeholders become
``$1..$n`` (``to_dollar``, cached; a ``?`` inside a string literal, a quoted name or a comment stays).
Both connection kinds carry ``dialect`` (``'sqlite'`` | ``'postgresql'``) for the few spots that differ.

Threading. One dedicated thread owns the asyncpg connection and its own event loop. The store
functions are synchronous, so that thread does not run the loop forever: it drives it with
``run_until_complete`` for each statement, from plain code, which keeps every store function
synchronous and every statement on one connection in one thread (no thread hop per statement).

Group commit, as on SQLite: the thread takes everything queued, runs each piece in its own savepoint
(one failing piece rolls back alone) and commits once; a caller learns its result only after COMMIT.

Isolation: SERIALIZABLE, and the whole batch is retried on a serialization failure (SQLSTATE 40001)
or a deadlock (40P01). Why: on SQLite the single writer makes every check-then-write function correct
(the idempotency key looked up, then inserted; the outbox limit checked, then a message added; the
account limit).
On PostgreSQL several gateway instances write at once. Explicit row locks would have to be added to
each such function (and a count has no row to lock: the outbox limit would need an advisory lock per
account), and every future function would have to remember it; SERIALIZABLE keeps the store
functions as they are and makes PostgreSQL abort whichever transaction would break a serial order
(PostgreSQL reports a duplicate key that a concurrent serializable transaction inserted after we
checked for it as a serialization failure too, so an idempotency race is a retry, not a 500). The
cost is a retry now and then under contention; the functions are pure SQL, so running a batch again
is safe. Measured on one connection with no contention, SERIALIZABLE costs about 30% of accept
throughput against REPEATABLE READ (store-level, localhost; see the report of issue 14).

Failures. A connection lost before COMMIT (or a statement without an answer within
``command_timeout``) is replaced and the batch run again, at most ``RECONNECTS`` times; one lost
*during* COMMIT fails the batch (it may or may not have committed: its callers get the error, never a
second run). While PostgreSQL cannot be reached every batch fails at once with ``DatabaseError`` (the
``/health`` store probe says so) and the next batch tries to connect again.

Round trips are the cost of a batch here (each statement is one): BEGIN goes with the first SAVEPOINT,
each RELEASE with the next SAVEPOINT, and a batch of one piece has no savepoint.

The event log's cursor (``events.seq``) comes from a sequence, and sequence values commit out of order
between concurrent transactions; a reader that moves a cursor past the highest ``seq`` it sees (webhook
fan-out) could skip an event that commits later with a lower ``seq``. ``events.append`` therefore takes
``conn.xact_lock(EVENTS_LOCK)`` (a transaction-scoped advisory lock; a no-op on SQLite) before it draws
a ``seq``: event-writing transactions commit in ``seq`` order, so every snapshot sees a prefix of the log.

Migrations: the same ``migrations/NNN_*.sql`` files, translated by ``translate_ddl`` (INTEGER -> BIGINT,
REAL -> DOUBLE PRECISION, ``INTEGER PRIMARY KEY [AUTOINCREMENT]`` -> an identity column), each applied in
its own transaction with its ``schema_migrations`` row, under ``pg_advisory_xact_lock`` so that
instances starting together migrate one after the other (the second finds the work done).

The URL's password is never logged nor put in an error: ``redact_url`` replaces it, the password is
handed to asyncpg apart from the URL, and connection errors are re-raised with the password removed.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import random
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from service.store.db import DatabaseError, WriterQueue, migrations

# pg_advisory_xact_lock key of the migrations ("wagw" 1); events.EVENTS_LOCK is "wagw" 2.
MIGRATION_LOCK = 0x7761_6777_0001
RETRIES = 30  # attempts of one batch on serialization failures / deadlocks before its callers get the error
RECONNECTS = 2  # new connections one batch may try after losing one (or a statement timing out)
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# plan_cache_mode: a prepared statement is planned for its actual parameters every time. A generic plan
# made while a table was young (no statistics yet) can pick an index on ``account`` alone for
# ``account = $1 AND id = $2`` and then scan a whole account per lookup for as long as the connection lives
# (measured: 4.5 times slower at 2,000 messages, and growing with the account).
SERVER_SETTINGS = {"application_name": "wa-gateway", "plan_cache_mode": "force_custom_plan"}


# --- the URL -------------------------------------------------------------------------------------

def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``: the only form of it that may be shown."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
    except ValueError:
        return "<unparsable database URL>"


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without its password, the password) so that asyncpg never holds the two together."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}@{host}")), unquote(parts.password)


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in {"postgresql", "postgres"}


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# --- SQL translation -----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<string>'(?:[^']|'')*'?)|(?P<ident>"(?:[^"]|"")*"?)|(?P<comment>--[^\n]*|/\*.*?(?:\*/|$))""",
    re.S,
)


def _segments(sql: str) -> Iterator[tuple[bool, str]]:
    """(is code, text): string literals, quoted names and comments are not code."""
    pos = 0
    for m in _TOKEN.finditer(sql):
        if m.start() > pos:
            yield True, sql[pos:m.start()]
        yield False, m.group(0)
        pos = m.end()
    if pos < len(sql):
        yield True, sql[pos:]


@functools.lru_cache(maxsize=2048)
def to_dollar(sql: str) -> str:
    """``?`` placeholders -> ``$1..$n`` (outside literals, quoted names and comments)."""
    out, n = [], 0
    for code, text in _segments(sql):
        if code and "?" in text:
            parts = text.split("?")
            rebuilt = [parts[0]]
            for part in parts[1:]:
                n += 1
                rebuilt.append(f"${n}{part}")
            text = "".join(rebuilt)
        out.append(text)
    return "".join(out)


_DDL_RULES = (
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.I),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
)


def translate_ddl(sql: str) -> str:
    """A portable migration (SQLite types) as PostgreSQL DDL. Comments are dropped; literals and quoted
    names are left alone. The identity rule runs before the plain INTEGER one."""
    out = []
    for code, text in _segments(sql):
        if not code:
            if not text.startswith(("--", "/*")):
                out.append(text)
            continue
        for pattern, replacement in _DDL_RULES:
            text = pattern.sub(replacement, text)
        out.append(text)
    return "".join(out)


# --- the connection facade -------------------------------------------------------------------------

_RETURNS_ROWS = re.compile(r"^\s*(SELECT|WITH|VALUES|SHOW|TABLE|EXPLAIN)\b|\bRETURNING\b", re.I)


class Cursor:
    """What ``execute`` returns: the rows (all fetched at once) and the number of rows affected."""

    __slots__ = ("_rows", "_pos", "rowcount")
    lastrowid = None  # not on PostgreSQL: use RETURNING

    def __init__(self, rows: list, rowcount: int):
        self._rows = rows
        self._pos = 0
        self.rowcount = rowcount

    def fetchone(self):
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    def fetchall(self) -> list:
        rest = self._rows[self._pos:]
        self._pos = len(self._rows)
        return rest

    def __iter__(self):
        while (row := self.fetchone()) is not None:
            yield row


def _rowcount(status: str) -> int:
    """``UPDATE 3`` / ``INSERT 0 1`` / ``DELETE 0`` -> the count (-1 when the command has none)."""
    last = status.rsplit(" ", 1)[-1] if status else ""
    return int(last) if last.isdigit() else -1


class PgConnection:
    """The store functions' view of the connection: ``execute(sql, params)`` with ``?`` placeholders."""

    dialect = "postgresql"

    def __init__(self, raw, loop: asyncio.AbstractEventLoop):
        self._raw = raw
        self._loop = loop
        self.locks: set[int] = set()  # advisory xact locks held by the open transaction

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        query = to_dollar(sql)
        args = tuple(params)
        if _RETURNS_ROWS.search(sql):
            rows = self._loop.run_until_complete(self._raw.fetch(query, *args))
            return Cursor(rows, len(rows))
        status = self._loop.run_until_complete(self._raw.execute(query, *args))
        return Cursor([], _rowcount(status))

    def xact_lock(self, key: int) -> None:
        """Hold the advisory lock ``key`` until this transaction ends (taken once per transaction)."""
        if key not in self.locks:
            self.execute("SELECT pg_advisory_xact_lock(?)", (key,))
            self.locks.add(key)


def _retryable(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) in RETRYABLE_SQLSTATES


def _connection_lost(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(exc, (OSError, asyncpg.exceptions.ConnectionDoesNotExistError,
                            asyncpg.exceptions.InterfaceError, asyncpg.exceptions.PostgresConnectionError))


# --- the database ---------------------------------------------------------------------------------

class PostgresDatabase(WriterQueue):
    """One writer thread with its own event loop and asyncpg connection; group commit; SERIALIZABLE."""

    dialect = "postgresql"

    def __init__(self, url: str, *, group_commit: bool = True, max_batch: int = 512,
                 connect_timeout: float = 10.0, command_timeout: float = 60.0):
        if not is_postgres_url(url):
            raise DatabaseError(f"not a postgresql:// URL: {redact_url(url)}")
        self.url = redact_url(url)  # the only form of the URL kept in the open
        self._dsn, self._password = split_password(url)
        self.group_commit = group_commit
        self.max_batch = max_batch if group_commit else 1
        self.connect_timeout = connect_timeout
        # A statement that gets no answer (a partitioned server) fails after this instead of holding the
        # writer forever; it counts as a lost connection (reconnect, and the batch runs again unless it was
        # the COMMIT that got no answer).
        self.command_timeout = command_timeout
        self.applied: list[int] = []
        self.commits = 0
        self.retries = 0  # batches run again after a serialization failure or deadlock (tests, metrics)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._raw = None

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.url!r})"

    # --- opening -----------------------------------------------------------------------------
    def _connect(self):
        import asyncpg

        assert self._loop is not None
        try:
            return self._loop.run_until_complete(asyncpg.connect(
                self._dsn, password=self._password, timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
                statement_cache_size=512, server_settings=SERVER_SETTINGS,
            ))
        except Exception as exc:  # noqa: BLE001 - re-raised without the password, and without the chain
            # No local of this frame holds the password (a traceback renderer that shows locals is safe).
            reason = _scrub(str(exc), (self._password or "",))
            raise DatabaseError(f"cannot connect to PostgreSQL at {self.url}: {type(exc).__name__}: {reason}") from None

    def open(self) -> PostgresDatabase:
        """Connect and migrate in the writer thread; raise here (``DatabaseError``) when that fails."""
        started: Future = Future()
        self._thread = threading.Thread(target=self._main, args=(started,), name="gateway-db-pg", daemon=True)
        self._thread.start()
        try:
            self.applied = started.result()
        except BaseException:
            self._thread.join()
            self._thread = None
            raise
        return self

    # --- the writer thread -------------------------------------------------------------------
    def _main(self, started: Future) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            try:
                self._raw = self._connect()
                applied = self._migrate(PgConnection(self._raw, self._loop))
            except BaseException as exc:  # noqa: BLE001 - handed to open()
                self._close_raw()
                started.set_exception(exc)
                return
            started.set_result(applied)
            self._serve()
        finally:
            self._close_raw()
            self._loop.close()

    def _close_raw(self) -> None:
        if self._raw is not None and self._loop is not None:
            try:
                self._loop.run_until_complete(self._raw.close(timeout=5))
            except Exception:  # noqa: BLE001 - closing a broken connection
                self._raw.terminate()
            self._raw = None

    def _serve(self) -> None:
        for batch in self._batches():
            self._run_batch(batch)

    def _run_batch(self, batch: list) -> None:
        error: BaseException | None = None
        reconnects = 0
        for attempt in range(RETRIES):
            if self._raw is None or self._raw.is_closed():
                try:
                    self._raw = self._connect()
                except DatabaseError as exc:
                    error = exc
                    break
            try:
                results = self._attempt(batch)
            except _Retry as retry:
                error = retry.cause
                if retry.reconnect:
                    self._close_raw()
                    reconnects += 1
                    if reconnects > RECONNECTS:  # not a blip: the callers learn it now
                        break
                else:
                    self.retries += 1
                time.sleep(min(0.2, 0.002 * 2 ** min(attempt, 7)) * random.random())
                continue
            except BaseException as exc:  # noqa: BLE001 - failed, or its COMMIT was lost (it may have held)
                error = exc
                if _connection_lost(exc) or (self._raw is not None and self._raw.is_closed()):
                    self._close_raw()  # the next batch starts on a new connection
                break
            for future, ok, value in results:  # only now, after the commit, do callers learn the outcome
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            return
        for *_call, future in batch:
            future.set_exception(error)

    def _attempt(self, batch: list) -> list[tuple[Future, bool, Any]]:
        """One try at the whole batch in one SERIALIZABLE transaction; ``_Retry`` when it may run again."""
        loop, raw = self._loop, self._raw
        assert loop is not None and raw is not None
        conn = PgConnection(raw, loop)
        results: list[tuple[Future, bool, Any]] = []
        run = loop.run_until_complete
        # Round trips are what a batch costs: BEGIN and the first savepoint go as one, and so do each
        # RELEASE and the next SAVEPOINT; a batch of one piece needs no savepoint at all.
        multi = len(batch) > 1
        try:
            run(raw.execute("BEGIN ISOLATION LEVEL SERIALIZABLE" + ("; SAVEPOINT piece" if multi else "")))
            for i, (fn, args, kwargs, future) in enumerate(batch):
                if i:
                    run(raw.execute("RELEASE SAVEPOINT piece; SAVEPOINT piece"))
                held = set(conn.locks)
                try:
                    value = fn(conn, *args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller, or the batch retried
                    if _retryable(exc) or _connection_lost(exc):
                        raise
                    if not multi:  # the transaction was this one piece: nothing to commit
                        self._rollback()
                        return [(future, False, exc)]
                    run(raw.execute("ROLLBACK TO SAVEPOINT piece"))
                    conn.locks = held  # locks taken in a rolled-back savepoint are released with it
                    results.append((future, False, exc))
                else:
                    results.append((future, True, value))
        except BaseException as exc:
            self._rollback()
            if _retryable(exc) or _connection_lost(exc):
                raise _Retry(exc, reconnect=_connection_lost(exc)) from exc
            raise
        try:
            run(raw.execute("COMMIT"))
        except BaseException as exc:
            if _retryable(exc):  # refused at commit: nothing holds, the batch may run again
                self._rollback()
                raise _Retry(exc, reconnect=False) from exc
            raise  # lost during COMMIT: it may have committed; never run it twice
        self.commits += 1
        return results

    def _rollback(self) -> None:
        if self._raw is None or self._raw.is_closed():
            return
        try:
            self._loop.run_until_complete(self._raw.execute("ROLLBACK"))
        except Exception:  # noqa: BLE001 - a broken connection is dropped and made again
            self._raw.terminate()

    # --- migrations --------------------------------------------------------------------------
    def _migrate(self, conn: PgConnection) -> list[int]:
        known = migrations()
        applied = []
        run = self._loop.run_until_complete
        for version, name, sql in [(0, "", "")] + known:
            # One transaction per migration, under one advisory lock: an instance that starts at the
            # same moment waits here and then finds the version applied.
            run(self._raw.execute("BEGIN"))
            try:
                conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
                )
                have = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                if have and max(have) > len(known):
                    raise DatabaseError(
                        f"the database has schema version {max(have)}, newer than this gateway knows ({len(known)})"
                    )
                if version and version not in have:
                    run(self._raw.execute(translate_ddl(sql)))
                    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                                 (version, name, time.time()))
                    applied.append(version)
                run(self._raw.execute("COMMIT"))
            except BaseException:
                self._rollback()
                raise
        return applied


class _Retry(Exception):
    def __init__(self, cause: BaseException, *, reconnect: bool):
        super().__init__(str(cause))
        self.cause = cause
        self.reconnect = reconnect
