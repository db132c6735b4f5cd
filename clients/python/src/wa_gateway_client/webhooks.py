"""Verifying the gateway's webhooks in a backend: Standard Webhooks signatures (standardwebhooks.com).

The gateway signs ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 under the endpoint's secret
(``whsec_`` + base64: an account webhook's own, shown by ``add_webhook`` / ``rotate_webhook_secret``;
``WA_WEBHOOK_SECRET`` for the operator's ``WA_WEBHOOK_URL``) and sends ``webhook-signature: v1,<base64>``;
during a rotation's overlap two (``v1,<new> v1,<old>``): a verifier holding either accepts it. A receiver checks
one signature matches, and that the timestamp is recent (a replayed old request is refused). Delivery
is at least once: a retried delivery keeps its ``webhook-id``, so store it and skip repeats.

Standard library only (the test suite checks it against the ``standardwebhooks`` reference package):

    verifier = WebhookVerifier(hook.secret)   # the secret add_webhook showed; [new, old] while rotating
    event = verifier.verify(body_bytes, request.headers)   # raises InvalidSignature
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from .models import Event

PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


class InvalidSignature(Exception):
    """The request is not a webhook of this gateway (or it is too old): answer 400/401 and drop it."""


def _key(secret: str) -> bytes:
    raw = secret[len(PREFIX):] if secret.startswith(PREFIX) else secret
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ followed by base64") from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<base64>`` signature of one message (what the gateway sends), e.g. for a receiver's tests."""
    payload = body.encode() if isinstance(body, str) else body
    digest = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookVerifier:
    """Verifies with any of ``secrets`` (a list, or one comma-separated string), so a receiver can rotate."""

    def __init__(self, secrets: str | list[str] | tuple[str, ...], *, tolerance: float = TOLERANCE_SECONDS):
        values = secrets.split(",") if isinstance(secrets, str) else list(secrets)
        self._keys = [_key(s.strip()) for s in values if s.strip()]
        if not self._keys:
            raise ValueError("no webhook secret given")
        self.tolerance = tolerance

    def add(self, secret: str) -> None:
        """Accept one more secret too (e.g. the new one of a rotation, before the old one ends)."""
        key = _key(secret.strip())
        if key not in self._keys:
            self._keys.append(key)

    def verify(self, body: bytes | str, headers: Mapping[str, str], *, now: float | None = None) -> Event:
        """The event of a genuine, recent delivery; :class:`InvalidSignature` otherwise."""
        lower = {k.lower(): v for k, v in headers.items()}
        msg_id, stamp, given = (lower.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
        if not msg_id or not stamp or not given:
            raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
        try:
            timestamp = int(stamp)
        except ValueError:
            raise InvalidSignature("webhook-timestamp is not a number") from None
        if abs((time.time() if now is None else now) - timestamp) > self.tolerance:
            raise InvalidSignature("webhook-timestamp is too old or in the future")
        payload = body.encode() if isinstance(body, str) else body
        signed = f"{msg_id}.{timestamp}.".encode() + payload
        expected = [base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()) for k in self._keys]
        for part in given.split():
            version, _, value = part.partition(",")
            if version == "v1" and any(hmac.compare_digest(value.encode(), e) for e in expected):
                return Event.model_validate(_body(payload))
        raise InvalidSignature("no signature matches")


def _body(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except ValueError:
        raise InvalidSignature("the body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidSignature("the body is not a JSON object")
    return data
