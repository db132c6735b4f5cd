"""What a send the worker refused means for its message: the one place that reads the worker's answer.

    refused for good (service/states.py WORKER_SEND_FAILURES) -> failed, with its reason
    not_owner (this instance lost the account's lease)           -> queued for the new owner, attempt given back
    not connected (the worker is away, or WhatsApp is)           -> queued until the link is back, attempt given back
    any other 4xx but 408/409/429 (the request as given)         -> failed: rejected
    a transient failure, attempts left                           -> queued again after a backoff
    a transient failure, no attempts left                        -> failed: too_many_attempts
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service.errors import ApiError, WorkerUnavailable
from service.states import WORKER_SEND_FAILURES, FailureReason

Kind = Literal["fail", "not_owner", "not_connected", "retry"]


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    reason: str | None = None  # "fail": the FailureReason
    worker_away: bool = False  # "not_connected": the worker did not answer (else WhatsApp is not connected)


def judge(exc: ApiError, attempts: int, max_attempts: int) -> Verdict:
    reason = WORKER_SEND_FAILURES.get(exc.code)
    if reason is not None:
        return Verdict("fail", reason)
    if exc.code == "not_owner":
        return Verdict("not_owner")
    if exc.code == "not_connected" or (isinstance(exc, WorkerUnavailable) and exc.code != "worker_timeout"):
        return Verdict("not_connected", worker_away=exc.code != "not_connected")
    if 400 <= exc.status < 500 and exc.status not in (408, 409, 429):
        return Verdict("fail", FailureReason.REJECTED)
    if attempts >= max_attempts:
        return Verdict("fail", FailureReason.TOO_MANY_ATTEMPTS)
    return Verdict("retry")


def backoff(attempts: int, base: float, cap: float, draw: float) -> float:
    """Seconds before the next try after ``attempts`` tries: exponential, capped, with jitter (``draw`` in
    [0, 1) places it between half and all of the step)."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return float(delay * (0.5 + draw / 2))
