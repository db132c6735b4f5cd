"""Which gateway instance serves which account: instance heartbeats and account leases. SQL only.

A lease row names its owner, a ``generation`` (the fence) and when it expires. Taking a lease over bumps the
generation; renewing or releasing never does. Everything a former owner might still do for the account
(mark a message ``sending``, write its WhatsApp keys, send) first checks ``owner`` and ``generation`` in the
same transaction, under ``FOR SHARE`` on PostgreSQL (``check``): a takeover's UPDATE waits for such a
transaction, and once it has committed the old generation matches nothing. A paused or partitioned
former owner is therefore refused by the store, whatever its clock says.

Times come from the database's clock (``now``), never a machine's own: two machines whose clocks disagree
still agree on when a lease expired.

A dead process, not only an expired lease (PostgreSQL). Each instance holds a session-level advisory lock
``(LOCK_CLASS, key)`` on a connection of its own (cluster/instance_lock.py); ``heartbeat`` records it in the
instance's row only while ``pg_locks`` shows it held. An instance is ``dead`` to another when the lock its
row names is no longer held although it beat after the other took its own lock, which the other still
holds: its session ended while the server stayed up (a PostgreSQL restart ends every session, the other's
too, so it is no evidence). Its leases are then free at once (``acquire``), fenced by a new generation as
after an expiry. A paused or cut-off instance keeps its session (the kernel answers keepalives for a
stopped process; the server holds a silent peer's session for at least twice the TTL, instance_lock.py),
so its accounts still wait for the TTL.
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

LOCK_CLASS = 22337  # the first key of every instance's advisory lock ("WA"); the second is its ``lock_key``


def _held(key: str, pid: str) -> str:
    """SQL: the instance lock ``key`` is held by backend ``pid`` (SQL expressions: columns or ``?``)."""
    return ("EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
            f" AND l.classid = {LOCK_CLASS} AND l.objid::bigint = {key} AND l.pid = {pid}"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))")


# Instances whose session ended while the asking one (``me``, the parameter) kept its own: see the docstring.
DEAD = ("SELECT p.id FROM instances p JOIN instances me ON me.id = ? WHERE p.id <> me.id AND p.stopping = 0"
        " AND p.lock_key IS NOT NULL AND me.lock_key IS NOT NULL AND p.heartbeat_at > me.lock_since"
        f" AND {_held('me.lock_key', 'me.lock_pid')} AND NOT {_held('p.lock_key', 'p.lock_pid')}")


def heartbeat(conn: Any, instance: str, *, started_at: float, stopping: bool = False,
              api_url: str | None = None, lock: tuple[int, int, float] | None = None) -> float:
    """Record that ``instance`` is alive (or stopping), and on PostgreSQL the advisory lock it holds
    (``lock``: key, backend pid, since) if ``pg_locks`` agrees: a lock lost unnoticed (its connection just
    dropped) is never vouched for by a fresh beat. Returns the database's time."""
    t = now(conn)
    conn.execute(
        "INSERT INTO instances (id, started_at, heartbeat_at, stopping, api_url, lock_key, lock_pid, lock_since)"
        " VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL)"
        " ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopping = excluded.stopping,"
        " api_url = excluded.api_url, started_at = excluded.started_at, lock_key = NULL, lock_pid = NULL,"
        " lock_since = NULL",
        (instance, started_at, t, int(stopping), api_url),
    )
    if lock is not None and getattr(conn, "dialect", "sqlite") == "postgresql":
        conn.execute(
            f"UPDATE instances SET lock_key = ?, lock_pid = ?, lock_since = ? WHERE id = ? AND {_held('?', '?')}",
            (*lock, instance, lock[0], lock[1]),
        )
    return t


def instances(conn: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        "SELECT id, started_at, heartbeat_at, stopping, api_url FROM instances ORDER BY id")]


def dead(conn: Any, instance: str) -> list[str]:
    """Instances whose PostgreSQL session ended (killed, crashed) as ``instance`` sees it; [] on SQLite."""
    if getattr(conn, "dialect", "sqlite") != "postgresql":
        return []
    return [r[0] for r in conn.execute(DEAD, (instance,))]


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
    """Take the account's lease if nobody holds it (free, or expired, or its owner is ``dead``), or if an
    earlier run of this same instance held it (it restarted: its leases need not wait for the TTL, and the
    new generation fences whatever of the old run might remain): the new generation, or None."""
    t = now(conn)
    postgres = getattr(conn, "dialect", "sqlite") == "postgresql"
    owner_dead = f" OR owner IN ({DEAD})" if postgres else ""
    row = conn.execute(
        "UPDATE leases SET owner = ?, generation = generation + 1, expires_at = ?, updated_at = ?"
        f" WHERE account = ? AND (owner IS NULL OR expires_at < ? OR owner = ?{owner_dead}) RETURNING generation",
        (instance, t + ttl, t, account, t, instance, *((instance,) if postgres else ())),
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
