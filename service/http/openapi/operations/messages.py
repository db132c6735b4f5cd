"""The documentation of messages: ``/send``, ``/messages``, ``/messages/{id}``."""

from __future__ import annotations

from service.http import models
from service.http.openapi.spec import CURSOR, DEFAULT_NOTE, FAILED_SEND, Op, Param, limit
from service.http.route_table import Handler
from service.http.validation import GROUP_ID_EXAMPLE, PHONE_EXAMPLE
from service.http.views import messages
from service.media.kinds import KINDS
from service.states import MESSAGE_STATUSES

MEDIA_REFUSED = ("invalid_media", "media_type_mismatch", "media_type_not_allowed", "media_url_refused")
# POST /send as multipart/form-data (views/send_media.py): kind (and ptt) before the file.
SEND_FORM = {
    "type": "object", "required": ["kind", "file"], "additionalProperties": False,
    "properties": {
        "phone_number": {"type": "string", "examples": [PHONE_EXAMPLE], "description": "Or group_id."},
        "group_id": {"type": "string", "examples": [GROUP_ID_EXAMPLE], "description": "Or phone_number."},
        "reply_to": {"type": "string", "description": "The id of a message of this chat the media replies to."},
        "kind": {"type": "string", "enum": list(KINDS)},
        "caption": {"type": "string", "description": "image, video, document"},
        "ptt": {"type": "string", "enum": ["true", "false"], "description": "audio: a voice note (OGG/Opus)"},
        "file": {"type": "string", "format": "binary", "description": "The media; its part's filename is a "
                                                                        "document's name at the contact."},
    },
}

OPERATIONS: dict[Handler, Op] = {
    messages.send: Op(
        "Send a message: text, media, a location, contact cards or a poll", "Messages",
        {200: models.MessageOut, 202: models.MessageOut},
        body=models.SendRequest, form=SEND_FORM,
        params=(Param("wait", "query", {"type": "number", "minimum": 0},
                      "Seconds to wait for the server ack (default WA_SEND_WAIT, at most WA_SEND_WAIT_MAX)."),
                Param("Idempotency-Key", "header", {"type": "string", "pattern": "^[!-~]{1,255}$"},
                      "The same key within 24 h returns the original message and never sends again.")),
        errors={400: ("invalid_phone_number", "invalid_message", "message_too_long", "invalid_idempotency_key",
                      "invalid_wait", "invalid_caption", "invalid_request", *MEDIA_REFUSED,
                      "invalid_location", "invalid_contacts", "invalid_poll", "invalid_reply_to", "invalid_group_id",
                      "invalid_mentions"),
                404: ("message_not_found",),
                409: ("not_linked", "idempotency_key_reused", "message_failed", "not_a_message"),
                413: ("media_too_large",),
                422: (*FAILED_SEND, "media_fetch_failed", "media_fetch_timeout"), 503: ("outbox_full",)},
        headers={200: ("Location", "Idempotent-Replayed"), 202: ("Location", "Idempotent-Replayed"),
                 503: ("Retry-After",)},
        writes=True,
        description="Text (`message`) or one media (`image`, `video`, `audio`, `document`, `sticker`: `url` or "
                    "`base64`, or a multipart form with the file in `file`), stored before the answer; or a "
                    "`location`, `contacts` (or `vcards`), a `poll`; `reply_to` quotes a message of the chat. "
                    "Commits the message to the outbox, then waits briefly: 200 once WhatsApp acked it, 202 "
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
