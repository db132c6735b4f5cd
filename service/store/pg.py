"""The gateway's database on PostgreSQL (``WA_DATABASE_URL``): the same interface as ``db.Database``.

Interface. ``PostgresDatabase`` has ``open/close/submit/call/run``, ``applied`` and ``commits`` like the
SQLite ``Database``, and the store functions (``fn(conn, ...)``, SQL only) run unchanged: ``conn`` is a
small facade over one asyncpg connection (``pg_connection.PgConnection``) with ``execute(sql, params)``
returning a cursor (``fetchone``, ``fetchall``, iteration, ``rowcount``); rows are asyncpg ``Record``s, which
answer ``row["col"]``, ``row[0]``, ``dict(row)`` and ``keys()`` like ``sqlite3.Row``. ``?`` placeholders
become ``$1..$n`` (``pg_sql.to_dollar``, cached; a ``?`` inside a string literal, a quoted name or a comment
stays).
Both connection kinds carry ``dialect`` (``'sqlite'`` | ``'postgresql'``) for the few spots that differ.

Threading. One dedicated thread owns the asyncpg connection and its own event loop. The store
functions are synchronous, so that thread does not run the loop forever: it drives it with
``run_until_complete`` for each statement, from plain code, which keeps every store function
synchronous and every statement on one connection in one thread (no thread hop per statement).

Group commit, as on SQLite: the thread takes everything queued, runs it in one transaction (one failing piece
rolls back alone: see the round trips below) and commits once; a caller learns its result only after COMMIT.

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

Round trips are the cost of a batch here (each statement is one): a batch runs first with no savepoint between
its pieces, and only when one of them fails again with one per piece (BEGIN going with the first SAVEPOINT, each
RELEASE with the next SAVEPOINT), so that the failing piece fails alone; a batch of one piece never has one. An
accept is one statement (outbox_pg.py).

The event log's cursor (``events.seq``) comes from a sequence, and sequence values commit out of order
between concurrent transactions; a reader that moves a cursor past the highest ``seq`` it sees (webhook
fan-out) could skip an event that commits later with a lower ``seq``. ``events.append`` therefore takes
``conn.xact_lock(EVENTS_LOCK)`` (a transaction-scoped advisory lock; a no-op on SQLite) before it draws
a ``seq``: event-writing transactions commit in ``seq`` order, so every snapshot sees a prefix of the log.

Migrations: the same ``migrations/NNN_*.sql`` files, translated by ``pg_sql.translate_ddl`` (INTEGER ->
BIGINT, REAL -> DOUBLE PRECISION, ``INTEGER PRIMARY KEY [AUTOINCREMENT]`` -> an identity column), each
applied in its own transaction with its ``schema_migrations`` row, under ``pg_advisory_xact_lock`` so that
instances starting together migrate one after the other (the second finds the work done): ``pg_migrate``.

The URL's password is never logged nor put in an error: ``pg_url.redact_url`` replaces it, the password is
handed to asyncpg apart from the URL, and connection errors are re-raised with the password removed.

asyncpg is imported only when a connection is made (``_connect``), never at import: it costs about 60 ms
and 5 MB of RSS (measured: 57-73 ms, +5.0 MB), which a gateway on SQLite never pays.
"""

from __future__ import annotations

import asyncio
import queue
import random
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from service.store.db import DatabaseError, Work, WriterQueue
from service.store.pg_connection import Cursor, PgConnection, connection_lost, retryable, rollback
from service.store.pg_migrate import MIGRATION_LOCK, migrate
from service.store.pg_sql import to_dollar, translate_ddl
from service.store.pg_url import is_postgres_url, redact_url, scrub, split_password

if TYPE_CHECKING:
    from asyncpg import Connection

# Kept importable from here (tests, scripts): where they moved is an arrangement.
__all__ = ["MIGRATION_LOCK", "Cursor", "PgConnection", "PostgresDatabase", "is_postgres_url", "redact_url",
           "split_password", "to_dollar", "translate_ddl"]

RETRIES = 30  # attempts of one batch on serialization failures / deadlocks before its callers get the error
RECONNECTS = 2  # new connections one batch may try after losing one (or a statement timing out)
# plan_cache_mode: a prepared statement is planned for its actual parameters every time. A generic plan
# made while a table was young (no statistics yet) can pick an index on ``account`` alone for
# ``account = $1 AND id = $2`` and then scan a whole account per lookup for as long as the connection lives
# (measured: 4.5 times slower at 2,000 messages, and growing with the account).
SERVER_SETTINGS = {"application_name": "wa-gateway", "plan_cache_mode": "force_custom_plan"}


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
        self.resends = 0  # batches run again with savepoints because one of their pieces failed (tests)
        self._queue: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._raw: Connection | None = None

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.url!r})"

    # --- opening -----------------------------------------------------------------------------
    def _connect(self) -> Connection:
        import asyncpg  # only now, never at import: see the module's docstring (measured cost)

        assert self._loop is not None
        try:
            return self._loop.run_until_complete(asyncpg.connect(
                self._dsn, password=self._password, timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
                statement_cache_size=512, server_settings=SERVER_SETTINGS,
            ))
        except Exception as exc:  # noqa: BLE001 - re-raised without the password, and without the chain
            # No local of this frame holds the password (a traceback renderer that shows locals is safe).
            reason = scrub(str(exc), (self._password or "",))
            raise DatabaseError(f"cannot connect to PostgreSQL at {self.url}: {type(exc).__name__}: {reason}") from None

    def open(self) -> PostgresDatabase:
        """Connect and migrate in the writer thread; raise here (``DatabaseError``) when that fails."""
        started: Future[list[int]] = Future()
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
    def _main(self, started: Future[list[int]]) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            try:
                self._raw = self._connect()
                applied = migrate(self._raw, self._loop)
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

    def _run_batch(self, batch: list[Work]) -> None:
        error: BaseException | None = None
        reconnects = 0
        savepoints = False  # until a piece fails: see _attempt
        for attempt in range(RETRIES):
            if self._raw is None or self._raw.is_closed():
                try:
                    self._raw = self._connect()
                except DatabaseError as exc:
                    error = exc
                    break
            try:
                results = self._attempt(batch, savepoints=savepoints)
            except _PieceFailed:
                savepoints = True  # the batch again, each piece in its savepoint, so that the failing one fails alone
                self.resends += 1
                continue
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
                if connection_lost(exc) or (self._raw is not None and self._raw.is_closed()):
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

    def _attempt(self, batch: list[Work], *, savepoints: bool) -> list[tuple[Future[Any], bool, Any]]:
        """One try at the whole batch in one SERIALIZABLE transaction; ``_Retry`` when it may run again.

        Round trips are what a batch costs. Without ``savepoints`` the pieces run one after the other with none
        between them, and the first piece that fails ends the try (``_PieceFailed``: the caller runs the batch
        again with them; the pieces are pure SQL, as for a retry): a savepoint per piece was one round trip in
        two of an accept (outbox_pg.py). With them, BEGIN and the first savepoint go as one, and so do each
        RELEASE and the next SAVEPOINT. A batch of one piece needs no savepoint at all."""
        loop, raw = self._loop, self._raw
        assert loop is not None and raw is not None
        conn = PgConnection(raw, loop)
        results: list[tuple[Future[Any], bool, Any]] = []
        run = loop.run_until_complete
        multi = len(batch) > 1
        marks = multi and savepoints
        try:
            run(raw.execute("BEGIN ISOLATION LEVEL SERIALIZABLE" + ("; SAVEPOINT piece" if marks else "")))
            for i, (fn, args, kwargs, future) in enumerate(batch):
                if i and marks:
                    run(raw.execute("RELEASE SAVEPOINT piece; SAVEPOINT piece"))
                held = set(conn.locks)
                try:
                    value = fn(conn, *args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller, or the batch retried
                    if retryable(exc) or connection_lost(exc):
                        raise
                    if not multi:  # the transaction was this one piece: nothing to commit
                        self._rollback()
                        return [(future, False, exc)]
                    if not marks:
                        raise _PieceFailed() from exc
                    run(raw.execute("ROLLBACK TO SAVEPOINT piece"))
                    conn.locks = held  # locks taken in a rolled-back savepoint are released with it
                    results.append((future, False, exc))
                else:
                    results.append((future, True, value))
        except BaseException as exc:
            self._rollback()
            if retryable(exc) or connection_lost(exc):
                raise _Retry(exc, reconnect=connection_lost(exc)) from exc
            raise
        try:
            run(raw.execute("COMMIT"))
        except BaseException as exc:
            if retryable(exc):  # refused at commit: nothing holds, the batch may run again
                self._rollback()
                raise _Retry(exc, reconnect=False) from exc
            raise  # lost during COMMIT: it may have committed; never run it twice
        self.commits += 1
        return results

    def _rollback(self) -> None:
        assert self._loop is not None
        rollback(self._raw, self._loop)


class _PieceFailed(Exception):
    """A piece of a batch run without savepoints failed: the batch runs again with them."""


class _Retry(Exception):
    def __init__(self, cause: BaseException, *, reconnect: bool):
        super().__init__(str(cause))
        self.cause = cause
        self.reconnect = reconnect
