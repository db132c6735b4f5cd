"""A wake-up call for readers of the event log (the SSE stream, webhook delivery).

Writers call ``notify()`` after a commit that added events; readers ``wait(timeout)`` and then read
the store. It carries no data, so a missed call costs at most one timeout: the store is the truth.
"""

from __future__ import annotations

import asyncio


class Notifier:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        # Wake everyone waiting now; later waiters wait for the next call.
        self._event.set()
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        """Take this before reading the store, then ``wait(timeout, it)``: a notify that comes between
        the read and the wait is not missed."""
        return self._event

    async def wait(self, timeout: float, event: asyncio.Event | None = None) -> bool:
        """True when notified within ``timeout`` seconds (or since ``event`` was taken)."""
        event = event or self._event
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
