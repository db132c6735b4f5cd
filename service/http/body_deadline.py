"""How long a request body may take: ``WA_BODY_TIMEOUT`` for a small body, and more for a large one as long as
it keeps coming at ``WA_BODY_MIN_RATE`` bytes per second.

One fixed timeout cannot serve both a 200-byte JSON body (which a client that trickles it should not hold open
for long) and a 20 MB upload from a slow link. So the deadline is ``start + timeout + received / rate``, moved
forward as bytes arrive (aiohttp counts them in ``request.content.total_bytes``): a body that stalls or trickles
is cut off soon after ``timeout``, one that flows is never cut off for being large.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from aiohttp import web

CHECK_EVERY = 0.25  # seconds between moves of the deadline


@asynccontextmanager
async def body_deadline(request: web.Request, timeout: float, min_rate: float) -> AsyncIterator[None]:
    """Raises TimeoutError (from the ``async with``) once the body is behind its deadline."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(start + timeout) as scope:

        async def extend() -> None:
            while True:
                await asyncio.sleep(CHECK_EVERY)
                scope.reschedule(start + timeout + request.content.total_bytes / min_rate)

        mover = asyncio.create_task(extend(), name="body-deadline")
        try:
            yield
        finally:
            mover.cancel()
            with suppress(asyncio.CancelledError):
                await mover
