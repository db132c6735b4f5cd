"""The store functions' view of one asyncpg connection, so that they run unchanged on PostgreSQL.

``PgConnection.execute(sql, params)`` takes the store's ``?`` placeholders and returns a ``Cursor``
(``fetchone``, ``fetchall``, iteration, ``rowcount``) like ``sqlite3``; rows are asyncpg ``Record``s,
which answer ``row["col"]``, ``row[0]``, ``dict(row)`` and ``keys()`` like ``sqlite3.Row``. The store
functions are synchronous: each statement is driven on the writer thread's own loop with
``run_until_complete``.

asyncpg itself is imported only when a connection is made (``pg.PostgresDatabase._connect``) or judged
(``connection_lost``), never at import: importing it costs about 60 ms and 5 MB of RSS (measured: 57-73 ms,
+5.0 MB, 23 modules), which a gateway on SQLite never pays (``db.store_errors`` looks for it in
``sys.modules``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from service.store.pg_sql import to_dollar

if TYPE_CHECKING:
    from asyncpg import Connection

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

_RETURNS_ROWS = re.compile(r"^\s*(SELECT|WITH|VALUES|SHOW|TABLE|EXPLAIN)\b|\bRETURNING\b", re.I)


class Cursor:
    """What ``execute`` returns: the rows (all fetched at once) and the number of rows affected."""

    __slots__ = ("_rows", "_pos", "rowcount")
    lastrowid = None  # not on PostgreSQL: use RETURNING

    def __init__(self, rows: list[Any], rowcount: int):
        self._rows = rows
        self._pos = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    def fetchall(self) -> list[Any]:
        rest = self._rows[self._pos:]
        self._pos = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row


def _rowcount(status: str) -> int:
    """``UPDATE 3`` / ``INSERT 0 1`` / ``DELETE 0`` -> the count (-1 when the command has none)."""
    last = status.rsplit(" ", 1)[-1] if status else ""
    return int(last) if last.isdigit() else -1


class PgConnection:
    """The store functions' view of the connection: ``execute(sql, params)`` with ``?`` placeholders."""

    dialect = "postgresql"

    def __init__(self, raw: Connection, loop: asyncio.AbstractEventLoop):
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


def retryable(exc: BaseException) -> bool:
    """A serialization failure or a deadlock: the whole transaction may run again."""
    return getattr(exc, "sqlstate", None) in RETRYABLE_SQLSTATES


def connection_lost(exc: BaseException) -> bool:
    """The connection is gone (or a statement got no answer): make a new one."""
    import asyncpg  # loaded already (a connection was made): see the module's docstring

    return isinstance(exc, (OSError, asyncpg.exceptions.ConnectionDoesNotExistError,
                            asyncpg.exceptions.InterfaceError, asyncpg.exceptions.PostgresConnectionError))


def rollback(raw: Connection | None, loop: asyncio.AbstractEventLoop) -> None:
    """End the open transaction; a connection that cannot is dropped (and made again by the next batch)."""
    if raw is None or raw.is_closed():
        return
    try:
        loop.run_until_complete(raw.execute("ROLLBACK"))
    except Exception:  # noqa: BLE001 - a broken connection is dropped and made again
        raw.terminate()
