"""Which database the gateway opens: PostgreSQL when ``WA_DATABASE_URL`` is set, else the SQLite file in the
data dir. Both engines have the same interface (``db.WriterQueue``), so nothing else needs to know.

Importing this imports both engines' modules, but neither the PostgreSQL driver: ``pg.py`` loads asyncpg
only when it connects, so a gateway on SQLite never does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from service.settings import Settings
from service.store.db import Database
from service.store.pg import PostgresDatabase


def open_database(settings_or_url: Settings | str, path: Path | None = None,
                  **kwargs: Any) -> Database:
    """``PostgresDatabase(url)`` when a PostgreSQL URL is given, else ``Database(path)`` (not yet opened).
    Accepts a ``Settings`` (its ``database_url`` and ``db_path``) or a URL and a path.

    Typed as ``Database``: the gateway is written against that one interface (``db.WriterQueue`` with
    ``dialect``, ``applied`` and ``commits``), which ``PostgresDatabase`` has too without being its subclass."""
    url = str(getattr(settings_or_url, "database_url", settings_or_url) or "")
    if path is None:
        path = getattr(settings_or_url, "db_path", None)
    if url:
        return cast(Database, PostgresDatabase(url, **kwargs))
    if path is None:
        raise TypeError("open_database: no PostgreSQL URL and no SQLite path")
    return Database(path, **kwargs)
