"""The document's ``webhooks``: what the gateway POSTs to a receiver, one entry per event type."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel

from service.http import models
from service.http.openapi.schemas import Schemas
from service.http.openapi.spec import JSON

WEBHOOK_EVENTS: tuple[type[BaseModel], ...] = (
    models.MessageReceivedEvent, models.MessageStatusEvent, models.SessionStatusEvent,
    models.MessageUndecryptableEvent, models.MediaStoredEvent, models.MediaFailedEvent, models.MessageReactionEvent,
    models.MessageEditedEvent, models.MessageRevokedEvent, models.PresenceEvent, models.PollVoteEvent,
    models.ChatReadEvent, models.GroupParticipantsEvent, models.GroupUpdatedEvent, models.WebhookTestEvent,
)


def event_type(model: type[BaseModel]) -> str:
    """The ``type`` an event model carries (its ``Literal``)."""
    return str(get_args(model.model_fields["type"].annotation)[0])


def webhook(schemas: Schemas, model: type[BaseModel]) -> dict[str, Any]:
    """The POST a receiver gets for one event type: the signature headers and the event as the body."""
    header = {"type": "string"}
    if model is models.WebhookTestEvent:
        description = ("POSTed by POST /webhooks/test (and /accounts/{account}/webhooks/test) to the webhooks it "
                       "names, signed per Standard Webhooks like every event, whatever types the webhook takes; "
                       "sent once and never retried. Verify the signature over the raw body.")
    else:
        description = ("POSTed to every webhook that takes this type, signed per Standard Webhooks; any 2xx is "
                       "delivered, other answers are retried or dead-lettered. Verify the signature over the raw body.")
    return {"post": {
        "summary": model.__doc__.strip() if model.__doc__ else model.__name__,
        "description": description,
        "parameters": [
            {"name": "webhook-id", "in": "header", "required": True, "schema": header,
             "description": "The event id, the same on every retry: drop duplicates by it."},
            {"name": "webhook-timestamp", "in": "header", "required": True, "schema": header,
             "description": "Seconds since the epoch of this attempt."},
            {"name": "webhook-signature", "in": "header", "required": True, "schema": header,
             "description": "`v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with the webhook's secret (an account "
                            "webhook's own; WA_WEBHOOK_SECRET for WA_WEBHOOK_URL); `v1,<a> v1,<b>` while two sign "
                            "(a rotation's overlap)."},
        ],
        "requestBody": {"required": True, "content": {JSON: {"schema": schemas.ref(model)}}},
        "responses": {"2XX": {"description": "Delivered."}},
    }}


def webhooks(schemas: Schemas) -> dict[str, Any]:
    """Every event type's entry, by type; each event's schema is in the components too."""
    docs = {event_type(m): webhook(schemas, m) for m in WEBHOOK_EVENTS}
    for m in WEBHOOK_EVENTS:
        schemas.ref(m)
    return docs
