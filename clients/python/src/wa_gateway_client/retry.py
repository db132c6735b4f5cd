"""How the client retries: 429 and 503 honour ``Retry-After`` (capped), other waits back off with jitter."""

from __future__ import annotations

import email.utils
import random
import time


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Retry:
    """How a request is retried: ``attempts`` in all, waits of ``Retry-After`` (at most ``max_wait`` s) or
    else a capped exponential backoff with jitter."""

    def __init__(self, attempts: int = 4, base: float = 0.5, cap: float = 8.0, max_wait: float = 30.0):
        self.attempts, self.base, self.cap, self.max_wait = max(1, attempts), base, cap, max_wait

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_wait)
        return random.uniform(0, min(self.cap, self.base * 2 ** attempt))
