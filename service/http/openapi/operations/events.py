"""The documentation of the event log: ``/events`` (replay) and ``/events/stream`` (live, Server-Sent Events)."""

from __future__ import annotations

from service.http import models
from service.http.openapi.spec import AFTER, DEFAULT_NOTE, JSON, REF, TYPES, Op, Param, limit
from service.http.route_table import Handler
from service.http.views import event_log as events
from service.http.views import stream
from service.store import event_log as event_store

# The SSE events: OpenAPI 3.1 has `schema` of text/event-stream describe each event (3.2 calls it itemSchema).
_SSE_EVENT = {
    "type": "object", "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The seq."},
        "event": {"enum": list(event_store.TYPES)},
        "data": {"type": "string", "contentMediaType": JSON, "contentSchema": {
            "oneOf": [{"$ref": REF.format(model=m.__name__)} for m in
                      (models.MessageReceivedEvent, models.MessageStatusEvent, models.SessionStatusEvent,
                       models.MessageUndecryptableEvent, models.MediaStoredEvent, models.MediaFailedEvent,
                       models.MessageReactionEvent, models.MessageEditedEvent, models.MessageRevokedEvent,
                       models.PresenceEvent, models.PollVoteEvent, models.ChatReadEvent,
                       models.GroupParticipantsEvent, models.GroupUpdatedEvent)]}},
    },
}

OPERATIONS: dict[Handler, Op] = {
    events.list_events: Op("Replay the event log", "Events", {200: models.EventPage},
                           params=(AFTER, limit(events.MAX_LIMIT, 100), TYPES),
                           errors={400: ("invalid_after", "invalid_limit", "invalid_types")},
                           description="Oldest first; ask again with `after=next_after`. " + DEFAULT_NOTE),
    stream.stream: Op(
        "The event log live (Server-Sent Events)", "Events", {200: {"text/event-stream": {"schema": _SSE_EVENT}}},
        params=(Param("after", "query", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
                      "Resume after this seq (as Last-Event-ID)."), TYPES,
                Param("Last-Event-ID", "header", {"type": "string", "pattern": "^[0-9]{0,18}$"},
                      "Resume after this seq; browsers send it by themselves.")),
        errors={400: ("invalid_last_event_id", "invalid_types"), 429: ("too_many_streams",)},
        headers={429: ("Retry-After",)},
        description="Each SSE event: `id` is the seq, `event` the type, `data` the event JSON (the webhook body). "
                    "Without Last-Event-ID or after: only new events. At most WA_SSE_MAX_PER_KEY streams per API key "
                    "and WA_SSE_MAX in all: one more is 429 `too_many_streams` with Retry-After. A stream whose client "
                    "falls far behind is ended; it resumes with Last-Event-ID. " + DEFAULT_NOTE),
}
