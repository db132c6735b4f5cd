"""The public API's bodies as pydantic v2 models (strict: a number is no string), one module per resource.

They validate requests (``parse``) and they are the contract: ``service/http/openapi/`` builds the
document from them. Each response model mirrors what its view returns; tests/app/test_openapi.py validates
real answers against that document. Import from here (``from service.http.models import SendRequest``):
which module holds a model is an arrangement, not part of its name.
"""

from __future__ import annotations

from service.http.models.accounts import (
    AccountCreateRequest,
    AccountDeleted,
    AccountList,
    AccountOut,
    AccountUpdateRequest,
    KeyCreated,
    KeyCreateRequest,
    KeyList,
    KeyOut,
    KeyUpdateRequest,
)
from service.http.models.base import RequestModel, iso, parse
from service.http.models.deliveries import DeliveryOut, DeliveryPage, RedriveOut, RedriveRequest
from service.http.models.errors import ErrorDetail, ErrorResponse
from service.http.models.event_types import (
    ChatReadData,
    ChatReadEvent,
    EventPage,
    GroupParticipantsData,
    GroupParticipantsEvent,
    GroupPerson,
    GroupUpdatedData,
    GroupUpdatedEvent,
    LoggedMediaFailed,
    LoggedMediaStored,
    LoggedMessageReceived,
    LoggedMessageStatus,
    LoggedMessageUndecryptable,
    LoggedSessionStatus,
    MediaFailedEvent,
    MediaStoredEvent,
    MessageActionData,
    MessageEditedData,
    MessageEditedEvent,
    MessageReactionData,
    MessageReactionEvent,
    MessageReceivedEvent,
    MessageRevokedEvent,
    MessageStatusData,
    MessageStatusEvent,
    MessageUndecryptableData,
    MessageUndecryptableEvent,
    PollVoteData,
    PollVoteEvent,
    PresenceData,
    PresenceEvent,
    SessionStatusData,
    SessionStatusEvent,
)
from service.http.models.health import (
    HealthOut,
    HealthShard,
    HealthStore,
    HealthWatchdog,
    HealthWebhook,
    HealthWhatsApp,
    HealthWorker,
    LiveOut,
    ReadyOut,
    ReadyProblem,
)
from service.http.models.media import InboundMediaOut
from service.http.models.messages import (
    InboundMessageOut,
    MessageList,
    MessageOut,
    MessagePage,
    MessageTimes,
    SendRequest,
)
from service.http.models.session import (
    ConnectRequest,
    DisconnectOut,
    DisconnectRequest,
    LinkState,
    Reconnect,
    SessionStatus,
)
from service.http.models.webhooks import (
    WebhookCreated,
    WebhookCreateRequest,
    WebhookDeleted,
    WebhookList,
    WebhookOut,
    WebhookRotateRequest,
    WebhookSecretOut,
    WebhookTestData,
    WebhookTestEvent,
    WebhookTestOut,
    WebhookTestRequest,
    WebhookTestResult,
)

__all__ = [
    "AccountCreateRequest", "AccountDeleted", "AccountList", "AccountOut", "AccountUpdateRequest", "ChatReadData",
    "ChatReadEvent", "ConnectRequest",
    "DeliveryOut", "DeliveryPage", "DisconnectOut", "DisconnectRequest", "ErrorDetail", "ErrorResponse", "EventPage",
    "GroupParticipantsData", "GroupParticipantsEvent", "GroupPerson", "GroupUpdatedData", "GroupUpdatedEvent",
    "HealthOut", "HealthShard", "HealthStore", "HealthWatchdog", "HealthWebhook", "HealthWhatsApp", "HealthWorker",
    "InboundMediaOut", "InboundMessageOut", "KeyCreateRequest", "KeyCreated", "KeyList", "KeyOut", "LinkState",
    "KeyUpdateRequest",
    "LiveOut", "LoggedMediaFailed", "LoggedMediaStored", "LoggedMessageReceived", "LoggedMessageStatus",
    "LoggedMessageUndecryptable", "LoggedSessionStatus", "MediaFailedEvent", "MediaStoredEvent", "MessageList",
    "MessageActionData", "MessageEditedData", "MessageEditedEvent", "MessageOut", "MessagePage", "MessageReactionData",
    "MessageReactionEvent", "MessageReceivedEvent", "MessageRevokedEvent", "MessageStatusData", "MessageStatusEvent",
    "MessageTimes", "MessageUndecryptableData", "MessageUndecryptableEvent", "PollVoteData", "PollVoteEvent",
    "PresenceData", "PresenceEvent",
    "ReadyOut", "ReadyProblem", "Reconnect", "RedriveOut", "RedriveRequest", "RequestModel", "SendRequest",
    "SessionStatus", "SessionStatusData", "SessionStatusEvent",
    "WebhookCreateRequest", "WebhookCreated", "WebhookDeleted", "WebhookList", "WebhookOut", "WebhookRotateRequest",
    "WebhookSecretOut", "WebhookTestData", "WebhookTestEvent", "WebhookTestOut", "WebhookTestRequest",
    "WebhookTestResult", "iso", "parse",
]
