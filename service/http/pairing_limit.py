"""How often an account may ask WhatsApp for a pairing code (``POST /connect {"phone_number"}``).

WhatsApp limits how many codes one number may ask for, and answers a number that asked too often with
``429 rate-overlimit`` for a while it does not name (the worker turns that into 429 ``pairing_rate_limited``).
A client that loops on POST /connect would run into that and keep the number locked out, so the gateway
spaces the codes itself, per account: one every ``WA_PAIRING_CODE_INTERVAL`` seconds and at most
``WA_PAIRING_CODES_PER_HOUR`` in any hour. Once WhatsApp has refused, the account asks no more for
``WHATSAPP_HOLD`` seconds. Over a limit the answer is 429 ``pairing_rate_limited`` with ``Retry-After``,
and WhatsApp is not asked.

In memory, per gateway process: the owner of an account serves its POST /connect (others forward it), and
a restart forgets the counts, which WhatsApp's own limit still backs.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from service.errors import ApiError

HOUR = 3600.0
# After WhatsApp's own refusal, which says nothing of when it ends: a whole window of ours.
WHATSAPP_HOLD = HOUR


class PairingRateLimited(ApiError):
    status = 429
    code = "pairing_rate_limited"

    def __init__(self, message: str, retry_after: float):
        super().__init__(message, details={"retry_after": math.ceil(retry_after)})
        self.retry_after = math.ceil(retry_after)


@dataclass
class _Account:
    asked: deque[float] = field(default_factory=deque)  # when its codes were asked for, within the hour
    held_until: float = 0.0  # WhatsApp refused: nothing asked before this


class PairingLimit:
    def __init__(self, interval: float, per_hour: int, *, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.per_hour = per_hour
        self._clock = clock
        self._accounts: dict[str, _Account] = {}

    def _account(self, name: str) -> _Account:
        account = self._accounts.setdefault(name, _Account())
        now = self._clock()
        while account.asked and now - account.asked[0] >= HOUR:
            account.asked.popleft()
        return account

    def take(self, name: str) -> float:
        """Counts a code asked for ``name`` now and returns its token for ``give_back``; raises
        PairingRateLimited (nothing counted) when it is too soon."""
        account = self._account(name)
        now = self._clock()
        wait = 0.0
        why = ""
        if account.held_until > now:
            wait, why = account.held_until - now, "WhatsApp refused the last one (too many for this number)"
        elif account.asked and now - account.asked[-1] < self.interval:
            wait, why = account.asked[-1] + self.interval - now, f"one per {self.interval:g} s"
        elif len(account.asked) >= self.per_hour:
            wait, why = account.asked[0] + HOUR - now, f"at most {self.per_hour} an hour"
        if wait > 0:
            raise PairingRateLimited(f"No new pairing code for account {name} yet ({why}); retry after "
                                     f"{math.ceil(wait)} s (a code already shown stays valid until it expires).",
                                     retry_after=wait)
        account.asked.append(now)
        return now

    def give_back(self, name: str, token: float) -> None:
        """The request asked WhatsApp for no code after all (a linked account, an error on the way)."""
        account = self._accounts.get(name)
        if account is not None and token in account.asked:
            account.asked.remove(token)

    def refused(self, name: str) -> PairingRateLimited:
        """WhatsApp refused the code: hold the account, and the answer for the client."""
        self._account(name).held_until = self._clock() + WHATSAPP_HOLD
        return PairingRateLimited(f"WhatsApp refuses new pairing codes for account {name}'s number for now (too "
                                  f"many were asked for lately); the gateway asks no more for {WHATSAPP_HOLD:g} s.",
                                  retry_after=WHATSAPP_HOLD)
