"""Webhook deliveries as ``/webhooks/deliveries`` shows them, and the redrive of failed ones."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, StrictStr

from service.http.models.base import RequestModel, iso


class DeliveryOut(BaseModel):
    """One webhook delivery: one event to one endpoint (``GET /webhooks/deliveries/{id}``)."""

    id: str
    endpoint: str  # as configured, with credentials and query values hidden
    active: bool  # the endpoint is configured now (a removed endpoint's deliveries are not attempted)
    event_id: str  # the webhook-id header
    event_type: str
    subject: str | None  # the contact the event concerns (deliveries to one endpoint go in order per contact)
    status: str  # pending, delivered, failed (dead-lettered)
    attempts: int
    next_attempt_at: str | None  # pending only
    last_attempt_at: str | None
    last_status_code: int | None  # always null for a key scoped to an account
    # Why the last attempt failed, or why it was dead-lettered; a scoped key sees only "address not allowed"
    # (the gateway refused the address) or "not delivered", never what a receiver answered.
    last_error: str | None
    created_at: str
    delivered_at: str | None
    failed_at: str | None
    updated_at: str
    event: dict[str, Any] | None = None  # the body sent (GET of one delivery only)

    @classmethod
    def from_row(cls, row: dict[str, Any], *, endpoint: str, active: bool, with_event: bool = False) -> DeliveryOut:
        return cls(
            id=row["id"], endpoint=endpoint, active=active, event_id=row["event_id"], event_type=row["event_type"],
            subject=row["subject"], status=row["status"], attempts=row["attempts"],
            next_attempt_at=iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
            last_attempt_at=iso(row["last_attempt_at"]), last_status_code=row["last_status_code"],
            last_error=row["last_error"], created_at=iso(row["created_at"]),
            delivered_at=iso(row["delivered_at"]), failed_at=iso(row["failed_at"]),
            updated_at=iso(row["updated_at"]),
            event=json.loads(row["payload"]) if with_event else None,
        )

    def public(self) -> dict[str, Any]:
        return self.model_dump(exclude={"event"} if self.event is None else set())


class DeliveryPage(BaseModel):
    """``GET /webhooks/deliveries``: newest first; pass ``next_cursor`` back as ``cursor``."""

    deliveries: list[DeliveryOut]
    next_cursor: str | None


class RedriveRequest(RequestModel):
    """``POST /webhooks/deliveries/retry``: every failed delivery, or only those of ``endpoint``."""

    endpoint: StrictStr | None = None

    field_codes: ClassVar[dict[str, str]] = {"endpoint": "invalid_endpoint"}
    field_hints: ClassVar[dict[str, str]] = {"endpoint": "a configured webhook URL (a string)"}


class RedriveOut(BaseModel):
    retried: int
