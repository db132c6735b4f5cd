"""Messages: ``POST /send``'s body, and messages sent and received as ``/messages`` shows them."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, StrictStr, ValidationInfo, field_validator

from service.http import validation
from service.http.models.base import RequestModel, checked, iso


class SendRequest(RequestModel):
    """``POST /send``: one text message to one phone number."""

    phone_number: StrictStr
    message: StrictStr

    field_codes: ClassVar[dict[str, str]] = {
        "phone_number": "invalid_phone_number",
        "message": "invalid_message",
    }
    field_hints: ClassVar[dict[str, str]] = {
        "phone_number": f"a string like {validation.PHONE_EXAMPLE}",
        "message": "a string",
    }

    @field_validator("phone_number")
    @classmethod
    def _phone(cls, value: str) -> str:
        return checked(validation.phone_number, value)

    @field_validator("message")
    @classmethod
    def _message(cls, value: str, info: ValidationInfo) -> str:
        max_chars = (info.context or {}).get("max_message_chars", 65536)
        return checked(validation.message_text, value, max_chars)


class MessageTimes(BaseModel):
    """When the message reached each step (ISO-8601 UTC), null for steps not (yet) reached."""

    queued: str | None
    sending: str | None
    sent: str | None
    delivered: str | None
    read: str | None
    failed: str | None


class MessageOut(BaseModel):
    """One outbound message as the API shows it (``GET /messages/{id}``, ``POST /send``)."""

    id: str
    direction: str
    phone_number: str
    status: str  # queued, sending, sent, delivered, read, failed
    reason: str | None  # why failed: not_on_whatsapp, expired, too_many_attempts, cancelled, rejected; while
    # sent: no_delivery_receipt (no receipt WA_DELIVERY_RECEIPT_BOUND after the server took it)
    # why still queued (service/states.py WaitReason): not_connected, whatsapp_unreachable, not_linked (the
    # account's link), retry_backoff, rate_limited, new_contact_budget, resend_after_restart
    wait_reason: str | None
    attempts: int
    whatsapp_id: str
    created_at: str
    expires_at: str
    timestamps: MessageTimes
    message: str | None = None  # the text: shown by GET, never echoed by POST /send

    @classmethod
    def from_row(cls, row: dict[str, Any], *, with_body: bool = True) -> MessageOut:
        return cls(
            id=row["id"], direction=row["direction"], phone_number=row["phone_number"], status=row["status"],
            reason=row["reason"], wait_reason=row["wait_reason"] if row["status"] == "queued" else None,
            attempts=row["attempts"], whatsapp_id=row["wa_id"], created_at=iso(row["created_at"]),
            expires_at=iso(row["expires_at"]),
            timestamps=MessageTimes(**{step: iso(row[f"{step}_at"]) for step in
                                       ("queued", "sending", "sent", "delivered", "read", "failed")}),
            message=row["body"] if with_body else None,
        )

    def public(self) -> dict[str, Any]:
        return self.model_dump(exclude={"message"} if self.message is None else set())


class MessagePage(BaseModel):
    """``GET /messages``: newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""

    messages: list[MessageOut]
    next_cursor: str | None


class InboundMessageOut(BaseModel):
    """A contact's message (``direction: "in"``), as listed and as the ``message.received`` data."""

    id: str
    direction: Literal["in"]
    whatsapp_id: str
    phone_number: str | None  # E.164, also when the contact wrote by its LID (when resolvable)
    lid: str | None
    chat_jid: str
    push_name: str | None
    kind: str  # text, image, reaction, ...
    text: str | None  # null when not text
    timestamp: str | None  # the sender's
    offline: bool
    received_at: str | None


class MessageList(BaseModel):
    """``GET /messages``: newest first; ``direction=out`` lists sent messages, ``direction=in`` received ones."""

    messages: list[MessageOut | InboundMessageOut]
    next_cursor: str | None
