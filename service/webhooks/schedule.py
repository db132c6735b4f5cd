"""When a delivery goes again, or not at all: the retry policy, its capped exponential backoff with jitter,
``Retry-After`` honoured on 429/503, and the decision an attempt's outcome leads to.

Pure functions of the outcome and the clock (no I/O), so that the worker only records what they decide.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from service.settings import Settings

RETRYABLE = frozenset({408, 409, 425, 429})
RETRY_AFTER_CODES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Policy:
    timeout: float = 10.0
    max_attempts: int = 12
    max_age: float = 86400.0
    retry_base: float = 5.0
    retry_max: float = 3600.0
    concurrency: int = 4
    keep: float = 7 * 86400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(timeout=settings.webhook_timeout, max_attempts=settings.webhook_max_attempts,
                   max_age=settings.webhook_max_age, retry_base=settings.webhook_retry_base,
                   retry_max=settings.webhook_retry_max, concurrency=settings.webhook_concurrency,
                   keep=settings.webhook_keep)


def backoff(attempts: int, policy: Policy, rand: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: doubled each time, capped, with
    equal jitter (between half and all of it) so that many deliveries failing together spread out."""
    delay: float = min(policy.retry_max, policy.retry_base * 2 ** min(attempts - 1, 62))
    jitter = rand.uniform(0, delay / 2) if rand is not None else random.uniform(0, delay / 2)
    return delay / 2 + jitter


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or bad."""
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
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def decide(row: dict[str, Any], status_code: int | None, error: str | None, retry_after_s: float | None, now: float,
           policy: Policy) -> tuple[str, float | None, str | None]:
    """What an attempt's outcome means: ("delivered", None, None), ("retry", next_attempt_at, error)
    or ("failed", None, reason). ``row`` holds the delivery after the attempt was counted."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered", None, None
    if status_code is not None:
        error = f"HTTP {status_code}"
        if 400 <= status_code < 500 and status_code not in RETRYABLE:
            return "failed", None, f"rejected: {error}"
    if row["attempts"] >= policy.max_attempts:
        return "failed", None, f"max_attempts: {error}"
    if now >= row["expires_at"]:
        return "failed", None, f"max_age: {error}"
    if retry_after_s is not None and status_code in RETRY_AFTER_CODES:
        delay = min(retry_after_s, policy.retry_max)
    else:
        delay = backoff(row["attempts"], policy)
    # The last attempt falls at the deadline rather than after it.
    return "retry", min(now + delay, row["expires_at"]), error
