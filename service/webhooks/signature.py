"""The headers of every webhook POST (deliveries and test pings): the Standard Webhooks signature's three,
a content type and a user agent; never the API key, never a cookie."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks import Webhook

from service import __version__

USER_AGENT = f"wa-gateway/{__version__} (webhooks)"


def sign(secrets: tuple[str, ...], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: ``v1,<base64>`` per secret, space-separated (rotation)."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(s).sign(msg_id, when, body) for s in secrets)


def headers_for(secrets: tuple[str, ...], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, msg_id, timestamp, body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
