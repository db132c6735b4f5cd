"""The migrations on PostgreSQL: the same ``migrations/NNN_*.sql`` files as SQLite, translated
(``pg_sql.translate_ddl``), each applied in its own transaction with its ``schema_migrations`` row.

Every step runs under ``pg_advisory_xact_lock(MIGRATION_LOCK)``, so that instances starting together
migrate one after the other (the second finds the work done). A database whose schema is newer than this
gateway knows is refused (``DatabaseError``), as on SQLite.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from service.store.db import DatabaseError, migrations
from service.store.pg_connection import PgConnection, rollback
from service.store.pg_sql import translate_ddl

if TYPE_CHECKING:
    from asyncpg import Connection

# pg_advisory_xact_lock key of the migrations ("wagw" 1); events.EVENTS_LOCK is "wagw" 2.
MIGRATION_LOCK = 0x7761_6777_0001


def migrate(raw: Connection, loop: asyncio.AbstractEventLoop) -> list[int]:
    """Apply the migrations this database has not seen; returns the versions applied. Version 0 first:
    the bookkeeping table alone, so that even a database with nothing to do takes the lock once."""
    known = migrations()
    conn = PgConnection(raw, loop)
    applied: list[int] = []
    for version, name, sql in [(0, "", "")] + known:
        # One transaction per migration, under one advisory lock: an instance that starts at the
        # same moment waits here and then finds the version applied.
        loop.run_until_complete(raw.execute("BEGIN"))
        try:
            if _apply(conn, raw, loop, len(known), (version, name, sql)):
                applied.append(version)
            loop.run_until_complete(raw.execute("COMMIT"))
        except BaseException:
            rollback(raw, loop)
            raise
    return applied


def _apply(conn: PgConnection, raw: Connection, loop: asyncio.AbstractEventLoop, known: int,
           migration: tuple[int, str, str]) -> bool:
    """One migration inside the open transaction, unless the database has it; whether it was applied. Its
    DDL goes to ``raw`` as it is (a script of several statements, no placeholders); the rest through ``conn``."""
    version, name, sql = migration
    conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
    )
    have = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    if have and max(have) > known:
        raise DatabaseError(
            f"the database has schema version {max(have)}, newer than this gateway knows ({known})"
        )
    if not version or version in have:
        return False
    loop.run_until_complete(raw.execute(translate_ddl(sql)))
    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                 (version, name, time.time()))
    return True
