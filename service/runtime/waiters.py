"""The callers waiting for an outbound message's outcome (``POST /send`` with ``wait``).

A waiter is a future per caller, keyed by message id: resolved with the message's row once it is done
(sent, or further, or failed), or with None when this process will not send it (a drain, a stop): the
caller then reads the message as it is. Bounded by WA_OUTBOX_MAX, as each waits on one accepted message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

Row = dict[str, Any]


class Waiters:
    def __init__(self) -> None:
        self._futures: dict[str, set[asyncio.Future[Row | None]]] = {}
        self.closed = False  # draining: new waiters are answered at once

    def add(self, message_id: str) -> asyncio.Future[Row | None]:
        future: asyncio.Future[Row | None] = asyncio.get_running_loop().create_future()
        if self.closed:
            future.set_result(None)
            return future
        self._futures.setdefault(message_id, set()).add(future)
        return future

    async def wait(self, message_id: str, timeout: float, then: Callable[[], None]) -> Row | None:
        """The message's row once it is done, None after ``timeout`` seconds or when this process will not send
        it (a drain). Registered before ``then`` runs (the dispatcher's wake-up), so no change is missed."""
        future = self.add(message_id)
        then()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self.forget(message_id, future)

    def forget(self, message_id: str, future: asyncio.Future[Row | None]) -> None:
        waiting = self._futures.get(message_id)
        if waiting is not None:
            waiting.discard(future)
            if not waiting:
                del self._futures[message_id]

    def resolve(self, row: Row) -> None:
        """The message is done: everyone waiting on it gets its row."""
        for future in self._futures.pop(row["id"], set()):
            if not future.done():
                future.set_result(row)

    def release(self, keep: Iterable[str] = ()) -> None:
        """Answer those waiting on messages this process will not send now (None: read it as it is)."""
        kept = set(keep)
        for message_id in [m for m in self._futures if m not in kept]:
            for future in self._futures.pop(message_id):
                if not future.done():
                    future.set_result(None)

    def __len__(self) -> int:
        return sum(len(futures) for futures in self._futures.values())
