"""PostgreSQL's LISTEN/NOTIFY for a cluster of gateway instances: new work is signalled, not polled for.

``outbox.accept`` notifies ``wa_outbox`` with the account (delivered when its transaction commits), so the
instance that serves the account sends a message another instance accepted at once; releasing a lease
notifies ``wa_leases``, so the other instances take it over at once instead of at their next round. The
pollers stay as the fallback: a notification lost while this connection was down costs at most one poll.

The same connection, a session of its own for the instance's life, holds the instance's advisory lock
(``lock``: instance_lock.py), taken again each time the connection is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from service.cluster.instance_lock import InstanceLock

log = structlog.get_logger("gateway.pg_listener")

OUTBOX = "wa_outbox"
LEASES = "wa_leases"
KEYS = "wa_keys"
RECONNECT_MAX = 10.0


class PgListener:
    def __init__(self, url: str, handlers: dict[str, Callable[[str], None]], lock: InstanceLock | None = None,
                 server_settings: dict[str, str] | None = None):
        self._url = url  # holds the password: never logged
        self._handlers = handlers
        self._lock = lock
        self._server_settings = server_settings
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pg-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def _dispatch(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        handler = self._handlers.get(channel)
        if handler is None:
            return
        try:
            handler(str(payload))
        except Exception:  # a handler's bug must not end the listener
            log.exception("pg_listener.handler_failed", channel=channel)

    async def _run(self) -> None:
        import asyncpg  # only a cluster (WA_DATABASE_URL) loads the PostgreSQL driver

        delay = 0.5
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._url, timeout=10, server_settings=self._server_settings)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, closed=closed: closed.set())
                for channel in self._handlers:
                    await conn.add_listener(channel, self._dispatch)
                if self._lock is not None:
                    await self._lock.attached(conn)
                self.connected.set()
                log.info("pg_listener.listening", channels=sorted(self._handlers))
                delay = 0.5
                await closed.wait()
                log.warning("pg_listener.connection_lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarting, unreachable: retry with backoff
                log.warning("pg_listener.connect_failed", error=type(exc).__name__, retry_in_s=delay)
            finally:
                self.connected.clear()
                if self._lock is not None:
                    self._lock.detached()
                if conn is not None and not conn.is_closed():
                    await conn.close(timeout=5)
            await asyncio.sleep(delay)
            delay = min(RECONNECT_MAX, delay * 2)
