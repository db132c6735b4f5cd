"""The store's write probe (``GET /health``): SQL only (no HTTP, no aiohttp imports).

One UPSERT of the single ``health_probe`` row. Run through ``Database.run`` it takes the writer's lock
and commits like any real write, so it fails exactly when they would (a read-only or full disk, a lock
another process holds, a broken file).
"""

from __future__ import annotations

import sqlite3


def write(conn: sqlite3.Connection, now: float) -> int:
    """Record a probe at ``now``; returns how many probes have committed (this one included)."""
    conn.execute(
        "INSERT INTO health_probe (id, written_at, writes) VALUES (1, ?, 1) "
        "ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at, writes = health_probe.writes + 1",
        (now,),
    )
    writes: int = conn.execute("SELECT writes FROM health_probe WHERE id = 1").fetchone()[0]
    return writes
