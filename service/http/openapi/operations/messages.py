"""The documentation of messages: ``/send``, ``/messages``, ``/messages/{id}``."""

from __future__ import annotations

from service.http import models
from service.http.openapi.spec import CURSOR, DEFAULT_NOTE, FAILED_SEND, Op, Param, limit
from service.http.route_table import Handler
from service.http.validation import PHONE_EXAMPLE
from service.http.views import messages
from service.states import MESSAGE_STATUSES

OPERATIONS: dict[Handler, Op] = {
    messages.send: Op(
        "Send a text message", "Messages", {200: models.MessageOut, 202: models.MessageOut},
        body=models.SendRequest,
        params=(Param("wait", "query", {"type": "number", "minimum": 0},
                      "Seconds to wait for the server ack (default WA_SEND_WAIT, at most WA_SEND_WAIT_MAX)."),
                Param("Idempotency-Key", "header", {"type": "string", "pattern": "^[!-~]{1,255}$"},
                      "The same key within 24 h returns the original message and never sends again.")),
        errors={400: ("invalid_phone_number", "invalid_message", "message_too_long", "invalid_idempotency_key",
                      "invalid_wait"),
                409: ("not_linked", "idempotency_key_reused"), 422: FAILED_SEND, 503: ("outbox_full",)},
        headers={200: ("Location", "Idempotent-Replayed"), 202: ("Location", "Idempotent-Replayed"),
                 503: ("Retry-After",)},
        writes=True,
        description="Commits the message to the outbox, then waits briefly: 200 once WhatsApp acked it, 202 "
                    "while queued. A message that failed is 422 with its reason as the code and its `id`. 507 "
                    "`insufficient_storage` (with Retry-After) while the gateway's disk is full: nothing was "
                    "stored; send the same request again later (with its Idempotency-Key). " + DEFAULT_NOTE),
    messages.list_messages: Op(
        "List messages", "Messages", {200: models.MessageList},
        params=(Param("direction", "query", {"type": "string", "enum": ["out", "in"], "default": "out"}),
                Param("status", "query", {"type": "string", "enum": list(MESSAGE_STATUSES)}, "direction=out only."),
                Param("phone_number", "query", {"type": "string", "examples": [PHONE_EXAMPLE]}),
                limit(messages.MAX_LIMIT, 50), CURSOR),
        errors={400: ("invalid_direction", "invalid_status", "invalid_phone_number", "invalid_limit",
                      "invalid_cursor")},
        description="Newest first; pass `next_cursor` back as `cursor`. " + DEFAULT_NOTE),
    messages.get_message: Op("One message, sent or received", "Messages",
                             {200: [models.MessageOut, models.InboundMessageOut]},
                             errors={404: ("message_not_found",)}, description=DEFAULT_NOTE),
    messages.cancel: Op("Cancel a queued message", "Messages", {200: models.MessageOut},
                        errors={404: ("message_not_found",), 409: ("not_cancellable",)}, writes=True,
                        description=DEFAULT_NOTE),
}
