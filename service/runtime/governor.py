"""The send governor: how fast an account may send, so that WhatsApp does not restrict it.

WhatsApp restricts accounts that send many messages quickly, above all to numbers that never wrote to them.
Per account the governor applies:

- a token bucket: up to ``burst`` sends at once, refilled at ``rate_per_minute``;
- a random pause of up to ``jitter`` seconds after each send, so sends do not go out on a machine's beat;
- an optional budget of first messages per rolling 24 hours to numbers that never wrote to this account
  (``first_contact``);
- for sends to groups, a second bucket of their own (``group_burst`` at ``group_rate_per_minute``): one group
  message reaches every member, so WhatsApp watches them more closely; they also take from the account's bucket.

A message over the budget waits (it stays queued, with the reason), it is not dropped.

The dispatcher asks ``delay_for`` before each send and reports it with ``record_send``; nothing here sleeps or
does I/O, so the policy is a pure function of the recorded sends and the clock. After a restart the dispatcher
gives back the first-contact sends of the last 24 hours with ``restore`` so the budget survives crashes.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from service.states import WaitReason
from service.store.outbox_ids import is_group

DAY = 24 * 3600.0
RATE_LIMITED = WaitReason.RATE_LIMITED
NEW_CONTACT_BUDGET = WaitReason.NEW_CONTACT_BUDGET
_EPSILON = 1e-9  # float refills never quite reach a whole token: close enough is a token


@dataclass(frozen=True, slots=True)
class GovernorPolicy:
    burst: int = 10
    rate_per_minute: float = 30.0
    jitter: float = 1.0  # seconds, upper bound of the pause after each send
    new_contacts_per_day: int | None = None  # None: no budget
    group_burst: int = 5
    group_rate_per_minute: float = 10.0


@dataclass
class _Account:
    tokens: float
    refilled_at: float
    not_before: float = 0.0  # the jitter pause after the last send
    first_contacts: deque[float] = field(default_factory=deque)  # send times within the last 24 h


class Governor:
    def __init__(self, policy: GovernorPolicy, rng: random.Random | None = None):
        if policy.burst < 1 or policy.rate_per_minute <= 0 or policy.jitter < 0:
            raise ValueError("burst >= 1, rate_per_minute > 0 and jitter >= 0 are required")
        if policy.group_burst < 1 or policy.group_rate_per_minute <= 0:
            raise ValueError("group_burst >= 1 and group_rate_per_minute > 0 are required")
        self.policy = policy
        self._rng = rng or random.Random()
        self._accounts: dict[str, _Account] = {}
        self._groups: dict[str, _Account] = {}  # per account: the bucket of its sends to groups

    @staticmethod
    def _refill(state: _Account, burst: int, rate_per_minute: float, now: float) -> None:
        if now > state.refilled_at:
            state.tokens = min(float(burst), state.tokens + (now - state.refilled_at) * rate_per_minute / 60.0)
            state.refilled_at = now

    def _group_bucket(self, account: str, now: float) -> _Account:
        state = self._groups.get(account)
        if state is None:
            state = self._groups[account] = _Account(tokens=float(self.policy.group_burst), refilled_at=now)
        self._refill(state, self.policy.group_burst, self.policy.group_rate_per_minute, now)
        return state

    def _account(self, account: str, now: float) -> _Account:
        state = self._accounts.get(account)
        if state is None:
            state = self._accounts[account] = _Account(tokens=float(self.policy.burst), refilled_at=now)
        self._refill(state, self.policy.burst, self.policy.rate_per_minute, now)
        while state.first_contacts and state.first_contacts[0] <= now - DAY:
            state.first_contacts.popleft()
        return state

    def delay_for(self, account: str, phone: str, first_contact: bool, now: float) -> tuple[float, str | None]:
        """Seconds to wait before this send may go (0: now) and why, when it must wait."""
        state = self._account(account, now)
        budget = self.policy.new_contacts_per_day
        if first_contact and budget is not None and len(state.first_contacts) >= budget:
            if not state.first_contacts:  # a budget of 0: first contacts never go; look again in a day
                return DAY, NEW_CONTACT_BUDGET
            # The oldest first contact of the window must age out before another one may go.
            return max(0.0, state.first_contacts[0] + DAY - now), NEW_CONTACT_BUDGET
        wait = 0.0
        if state.tokens < 1.0 - _EPSILON:
            wait = (1.0 - state.tokens) / (self.policy.rate_per_minute / 60.0)
        wait = max(wait, state.not_before - now)
        if is_group(phone):
            group = self._group_bucket(account, now)
            if group.tokens < 1.0 - _EPSILON:
                wait = max(wait, (1.0 - group.tokens) / (self.policy.group_rate_per_minute / 60.0))
        return (wait, RATE_LIMITED) if wait > _EPSILON else (0.0, None)

    def record_send(self, account: str, phone: str, first_contact: bool, now: float) -> None:
        state = self._account(account, now)
        state.tokens -= 1.0  # may go below zero if a caller did not wait: the debt is paid by waiting
        state.not_before = now + self._rng.uniform(0.0, self.policy.jitter)
        if is_group(phone):
            self._group_bucket(account, now).tokens -= 1.0
        if first_contact:
            state.first_contacts.append(now)

    def restore(self, account: str, first_contact_sends: list[float], now: float) -> None:
        """Give back the first-contact send times of the last 24 hours (from the store, after a restart)."""
        state = self._account(account, now)
        recent = sorted(t for t in first_contact_sends if t > now - DAY)
        state.first_contacts = deque(recent)
