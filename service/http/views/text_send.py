"""The commonest ``POST /send``, a text to a phone number, without building pydantic models: the accept path's
hot route (bench/accept.py measures it). Same rules, same answers; the models stay the contract.

``plain_text`` takes a body that is exactly ``{"phone_number": str, "message": str}`` and checks it with the very
functions the model's validators call (validation.phone_number, validation.message_text); anything else (another
field, another type, a value those rules refuse) is None, and the caller parses the body with ``SendRequest``,
which answers its usual 400. ``public_message`` is ``MessageOut.from_row(row, with_body=False).public()`` for a
text row (no media, action, content, reply or group), and that model for every other row. Tests hold both
against the models (tests/app/outbox/test_text_send.py).
"""

from __future__ import annotations

from typing import Any

from service.http.models import MessageOut
from service.http.models.base import iso
from service.http.validation import InvalidInput, message_text, phone_number
from service.store.outbox_ids import is_group

TEXT_FIELDS = frozenset({"phone_number", "message"})
STEPS = ("queued", "sending", "sent", "delivered", "read", "failed")
# The columns that make a row more than a text to a phone number (MessageOut shows them).
_NOT_TEXT = ("media_kind", "action", "content", "reply_to", "target_id")


def plain_text(body: dict[str, Any], max_chars: int) -> tuple[str, str] | None:
    """(recipient, text) of a valid plain text send, or None (the model decides, and names any problem)."""
    if body.keys() != TEXT_FIELDS:
        return None
    phone, text = body["phone_number"], body["message"]
    if type(phone) is not str or type(text) is not str:  # strict, as the model: no subclass, no coercion
        return None
    try:
        return phone_number(phone), message_text(text, max_chars)
    except InvalidInput:
        return None


def public_message(row: dict[str, Any]) -> dict[str, Any]:
    """What ``POST /send`` shows of the message (never its text)."""
    if any(row.get(column) for column in _NOT_TEXT) or is_group(row["phone_number"]):
        return MessageOut.from_row(row, with_body=False).public()
    status = row["status"]
    return {
        "id": row["id"], "direction": row["direction"], "type": "text", "phone_number": row["phone_number"],
        "status": status, "reason": row["reason"], "wait_reason": row["wait_reason"] if status == "queued" else None,
        "attempts": row["attempts"], "whatsapp_id": row["wa_id"], "created_at": iso(row["created_at"]),
        "expires_at": iso(row["expires_at"]),
        "timestamps": {step: iso(row[f"{step}_at"]) for step in STEPS},
    }
