"""Which gateway instance serves which account: instance heartbeats and account leases. SQL only.

A lease row names its owner, a ``generation`` (the fence) and when it expires. Taking a lease over bumps the
generation; renewing or releasing never does. Everything a former owner might still do for the account
(mark a message ``sending``, write its WhatsApp keys, send) first checks ``owner`` and ``generation`` in the
same transaction, under ``FOR SHARE`` on PostgreSQL (``check``): a takeover's UPDATE waits for such a
transaction, and once it has committed the old generation matches nothing. A paused or partitioned
former owner is therefore refused by the store, whatever its clock says.

Times come from the database's clock (``now``), never a machine's own: two machines whose clocks disagree
still agree on when a lease expired.
"""

from __future__ import annotations

import time
from typing import Any


class NotOwner(Exception):
    """This instance no longer holds the account's lease at this generation (it was taken over)."""

    def __init__(self, account: str):
        super().__init__(account)
        self.account = account


def now(conn: Any) -> float:
    """The database's clock (seconds since the epoch); SQLite (one machine) uses this one's."""
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        return float(conn.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8").fetchone()[0])
    return time.time()


# --- instances ---------------------------------------------------------------------------------

def heartbeat(conn: Any, instance: str, *, started_at: float, stopping: bool = False,
              api_url: str | None = None) -> float:
    """Record that ``instance`` is alive (or stopping); returns the database's time."""
    t = now(conn)
    conn.execute(
        "INSERT INTO instances (id, started_at, heartbeat_at, stopping, api_url) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopping = excluded.stopping,"
        " api_url = excluded.api_url, started_at = excluded.started_at",
        (instance, started_at, t, int(stopping), api_url),
    )
    return t


def instances(conn: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        "SELECT id, started_at, heartbeat_at, stopping, api_url FROM instances ORDER BY id")]


def live(conn: Any, ttl: float, at: float) -> list[str]:
    """Instances that beat within ``ttl`` and are not stopping: the ones accounts are spread across."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM instances WHERE heartbeat_at > ? AND stopping = 0 ORDER BY id", (at - ttl,))]


# --- leases ------------------------------------------------------------------------------------

def ensure(conn: Any, accounts: list[str]) -> None:
    """A (free) lease row for every account, so that taking one over is always an UPDATE."""
    for account in accounts:
        conn.execute(
            "INSERT INTO leases (account, owner, generation, expires_at, updated_at) VALUES (?, NULL, 0, 0, 0)"
            " ON CONFLICT (account) DO NOTHING", (account,))


def all_leases(conn: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        "SELECT account, owner, generation, expires_at, updated_at FROM leases ORDER BY account")]


def acquire(conn: Any, account: str, instance: str, ttl: float) -> int | None:
    """Take the account's lease if nobody holds it (free, or expired), or if an earlier run of this same
    instance held it (it restarted: its leases need not wait for the TTL, and the new generation fences
    whatever of the old run might remain): the new generation, or None."""
    t = now(conn)
    row = conn.execute(
        "UPDATE leases SET owner = ?, generation = generation + 1, expires_at = ?, updated_at = ?"
        " WHERE account = ? AND (owner IS NULL OR expires_at < ? OR owner = ?) RETURNING generation",
        (instance, t + ttl, t, account, t, instance),
    ).fetchone()
    return None if row is None else int(row[0])


def renew(conn: Any, instance: str, held: dict[str, int], ttl: float) -> dict[str, int]:
    """Extend the leases this instance holds; returns those it still holds (an expired lease that nobody
    took is still ours: its generation is unchanged, so nothing happened in between)."""
    t = now(conn)
    kept = {}
    for account, generation in held.items():
        if conn.execute(
            "UPDATE leases SET expires_at = ?, updated_at = ? WHERE account = ? AND owner = ? AND generation = ?",
            (t + ttl, t, account, instance, generation),
        ).rowcount:
            kept[account] = generation
    return kept


def release(conn: Any, instance: str, held: dict[str, int]) -> list[str]:
    """Give leases back at once (a handoff, a graceful stop): the next owner need not wait for the TTL."""
    t = now(conn)
    released = []
    for account, generation in held.items():
        if conn.execute(
            "UPDATE leases SET owner = NULL, expires_at = 0, updated_at = ? WHERE account = ? AND owner = ?"
            " AND generation = ?", (t, account, instance, generation),
        ).rowcount:
            released.append(account)
    if released and getattr(conn, "dialect", "sqlite") == "postgresql":
        conn.execute("SELECT pg_notify('wa_leases', ?)", (",".join(released),))  # take them over now
    return released


def check(conn: Any, account: str, instance: str, generation: int) -> None:
    """The fence: raise NotOwner unless ``instance`` holds the account at ``generation``. On PostgreSQL the
    row is share-locked until the transaction ends, so a takeover cannot commit in between."""
    lock = " FOR SHARE" if getattr(conn, "dialect", "sqlite") == "postgresql" else ""
    row = conn.execute(f"SELECT owner, generation FROM leases WHERE account = ?{lock}", (account,)).fetchone()
    if row is None or row[0] != instance or int(row[1]) != generation:
        raise NotOwner(account)
