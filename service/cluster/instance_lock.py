"""This instance's session-bound advisory lock, and the watch for other instances whose session ended.

Why: a process that dies (kill -9, OOM) loses its PostgreSQL session at once, and with it every session
lock; a lease only expires after ``WA_LEASE_TTL``. The lock is taken on the listener's connection
(pg_notify.py: a session of its own, held for the instance's life) with a new random key each time that
connection is made; ``heartbeat`` records it only while ``pg_locks`` shows it held (store/leases.py). Every
``WATCH_S`` the same connection asks which instances are ``dead`` (their recorded lock no longer held, see
leases.py); a new one wakes this keeper and, through ``wa_leases``, every other, so the preferred instance
takes the accounts over at once instead of at its next round.

While the connection is down there is no lock, and the next heartbeat records none: the others then wait
for the TTL as before, and whatever they took meanwhile (the lock vanished while this instance lived) the
keeper finds at its next renewal and drops, fenced by the generation. The lock must live on a session of its
own: through a transaction-mode pooler (PgBouncer ``pool_mode=transaction``) consecutive statements reach
different backends, which ``attached`` notices (the backend changed) and then holds no lock.

Keepalives on that session (server side, TCP only): a peer that is cut off, not dead, keeps its session
until the server gives up on it, here after about twice the TTL (``tcp_keepalives_*``; ``tcp_user_timeout``
when the server has unacknowledged data for it, e.g. a notification), so its leases have expired by then
anyway: a cut-off instance still waits out the TTL, as a paused one does.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Callable
from typing import Any

import structlog

from service.store import leases
from service.store.pg_sql import to_dollar

log = structlog.get_logger("gateway.cluster")

WATCH_S = 0.5  # how often the listener's connection asks for dead instances (one small query on pg_locks)
TRIES = 5  # random keys tried before giving up (another instance holding the same key is a 2^-31 chance)


def session_settings(ttl: float) -> dict[str, str]:
    """Server-side TCP settings of the lock's session: a silent client is given up on after ~2 TTL."""
    idle = max(1, math.ceil(ttl))
    interval = max(1, math.ceil(ttl / 4))
    return {"tcp_keepalives_idle": str(idle), "tcp_keepalives_interval": str(interval),
            "tcp_keepalives_count": "4", "tcp_user_timeout": str(2 * idle * 1000)}


class InstanceLock:
    def __init__(self, instance: str, on_dead: Callable[[], None], watch_s: float = WATCH_S):
        self.instance = instance
        self._on_dead = on_dead
        self._watch_s = watch_s
        self.held: tuple[int, int, float] | None = None  # key, backend pid, since (the database's clock)
        self._seen: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def attached(self, conn: Any) -> None:
        """The listener's connection is (again) up: take a lock on it, then watch the others."""
        if conn.get_server_version().major >= 14:  # a server-wide idle_session_timeout must not end it
            await conn.execute("SET idle_session_timeout = 0")
        for _ in range(TRIES):
            key = secrets.randbelow(2**31 - 1) + 1
            row = await conn.fetchrow(
                "SELECT pg_try_advisory_lock($1::int, $2::int) AS ok, pg_backend_pid() AS pid,"
                " EXTRACT(EPOCH FROM clock_timestamp())::float8 AS since", leases.LOCK_CLASS, key)
            if row["ok"]:
                break
        else:
            log.warning("instance_lock.not_taken", tries=TRIES)
            return
        if await conn.fetchval("SELECT pg_backend_pid()") != row["pid"]:
            log.error("instance_lock.not_a_session",
                      hint="the lock connection must be direct or session-pooled: failover waits for the TTL")
            return
        self.held = (key, int(row["pid"]), float(row["since"]))
        log.info("instance_lock.held", pid=row["pid"])
        self._task = asyncio.create_task(self._watch(conn), name="instance-lock-watch")

    def detached(self) -> None:
        """The connection is gone, and the lock with it."""
        self.held = None
        self._seen = set()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _watch(self, conn: Any) -> None:
        sql = to_dollar(leases.DEAD)
        while True:
            await asyncio.sleep(self._watch_s)
            try:
                dead = {r[0] for r in await conn.fetch(sql, self.instance, timeout=max(1.0, self._watch_s * 4))}
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a slow answer: ask again; a lost connection: the listener makes a new one
                log.warning("instance_lock.watch_failed", error=type(exc).__name__)
                if conn.is_closed():
                    return
                continue
            new = dead - self._seen
            self._seen = dead
            if new:
                log.warning("instance.dead", instances=sorted(new))
                self._on_dead()
                try:  # the others too: whichever is preferred for an account takes it now
                    await conn.execute("SELECT pg_notify('wa_leases', $1)", "dead:" + ",".join(sorted(new)))
                except Exception as exc:
                    log.warning("instance_lock.notify_failed", error=type(exc).__name__)
