"""Stopping a background task: cancel it and wait until it has ended, whatever it ended with."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """A loop's stop: its own failure was logged where it happened, so a stop never raises it again."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
