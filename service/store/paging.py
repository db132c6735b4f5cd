"""Newest-first pages by ``seq``, the one listing shape of every table the API pages through."""

from __future__ import annotations

import sqlite3
from typing import Any


def newest_first(conn: sqlite3.Connection, select: str, filters: dict[str, Any], *, limit: int,
                 before_seq: int | None = None) -> list[dict[str, Any]]:
    """``select`` (``SELECT ... FROM t``) with ``column = value`` for each filter that is not None,
    rows before ``before_seq`` (the last row of the previous page), newest first."""
    clauses, args = [], []
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if before_seq is not None:
        clauses.append("seq < ?")
        args.append(before_seq)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return [dict(r) for r in conn.execute(f"{select}{where} ORDER BY seq DESC LIMIT ?", (*args, limit))]
