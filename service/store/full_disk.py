"""A full disk as the gateway's background loops meet it (event hand-over, dispatcher, webhooks, retention).

A request that cannot write answers 507 (middlewares.py); a loop cannot answer anyone, so it keeps what it
holds and tries again at its next round, which is what makes everything resume by itself once space is back.
What it must not do is log a traceback every round: a disk stays full for minutes or hours, and a line per
second per loop would bury everything else in the log. ``FullDiskLog`` says it once when a loop's writes
start failing for lack of space, again every ``repeat`` seconds while that lasts (with how many failures it
left out), and once when a write works again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from service.store.db import storage_full

__all__ = ["FullDiskLog", "storage_full"]


class FullDiskLog:
    def __init__(self, logger: Any, event: str, *, repeat: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._log = logger
        self._event = event  # e.g. "events.store_full": the loop and the condition in one name
        self._repeat = repeat
        self._clock = clock
        self._since: float | None = None  # when the current spell of failures began
        self._logged_at = 0.0
        self._quiet = 0  # failures not logged since the last line

    @property
    def full(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, **context: Any) -> None:
        """A write of the loop failed for lack of space: logged if it is the first or ``repeat`` s passed."""
        now = self._clock()
        if self._since is None:
            self._since = now
        elif now - self._logged_at < self._repeat:
            self._quiet += 1
            return
        self._log.error(self._event, error=f"{type(exc).__name__}: {exc}"[:300], failures_not_logged=self._quiet,
                        full_for_s=round(now - self._since, 1), **context)
        self._logged_at, self._quiet = now, 0

    def ok(self) -> None:
        """A write of the loop worked: if it had been failing, one line saying the loop writes again."""
        if self._since is None:
            return
        loop = self._event.rsplit(".", 1)[0]
        self._log.info(f"{loop}.store_writable", full_for_s=round(self._clock() - self._since, 1))
        self._since, self._quiet = None, 0
