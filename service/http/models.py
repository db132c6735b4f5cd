"""The request bodies of the public API as pydantic v2 models (strict: a number is no string).

A model only describes; the rules themselves live in ``validation.py`` so that they can be shared
with tests and the worker's vectors. ``parse`` turns the first problem into the API's one error
shape, with a code per field (``invalid_phone_number``, ``invalid_message``, ...) and a message that
never echoes the input back.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from service.errors import BadRequest
from service.http import validation
from service.states import WorkerState
from service.store.event_log import TYPES as EVENT_TYPES

M = TypeVar("M", bound="RequestModel")


class RequestModel(BaseModel):
    # Unknown fields are ignored (clients may send more than we read); known ones are strict.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    # The error code for a problem with each field, and how to describe the expected type.
    field_codes: ClassVar[dict[str, str]] = {}
    field_hints: ClassVar[dict[str, str]] = {}


_OURS = "wa:"  # prefix of the error types our rules raise, followed by an optional code


def _custom(rule, value, *args):
    try:
        return rule(value, *args)
    except validation.InvalidInput as exc:
        # The error type carries our code; the message is ours, never pydantic's or the input.
        raise PydanticCustomError(_OURS + (exc.code or ""), exc.message) from None


class ConnectRequest(RequestModel):
    """``POST /connect``: no fields yet; the body, if any, must be a JSON object."""


class DisconnectRequest(RequestModel):
    """``POST /disconnect``: no fields yet; the body, if any, must be a JSON object."""


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
        return _custom(validation.phone_number, value)

    @field_validator("message")
    @classmethod
    def _message(cls, value: str, info: ValidationInfo) -> str:
        max_chars = (info.context or {}).get("max_message_chars", 65536)
        return _custom(validation.message_text, value, max_chars)


def parse(model: type[M], body: dict[str, Any], **context: Any) -> M:
    """Validate ``body`` against ``model`` or raise a 400 for its first problem."""
    try:
        return model.model_validate(body, strict=True, context=context)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        code = model.field_codes.get(field, "invalid_request")
        kind = first["type"]
        if kind.startswith(_OURS):  # one of ours, raised by a rule in validation.py
            message = first["msg"]
            code = kind.removeprefix(_OURS) or code
        elif kind == "missing":
            message = f"{field} is required."
        else:  # a wrong type (strict: no coercion), or a string pydantic cannot take
            message = f"{field} must be {model.field_hints.get(field, 'valid')}."
        raise BadRequest(message, code=code) from None


# --- messages (responses) ---------------------------------------------------------------------------

def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    wait_reason: str | None  # why still queued: not_connected, retry_backoff, rate_limited, new_contact_budget, ...
    attempts: int
    whatsapp_id: str
    created_at: str
    expires_at: str
    timestamps: MessageTimes
    message: str | None = None  # the text: shown by GET, never echoed by POST /send

    @classmethod
    def from_row(cls, row: dict, *, with_body: bool = True) -> MessageOut:
        return cls(
            id=row["id"], direction=row["direction"], phone_number=row["phone_number"], status=row["status"],
            reason=row["reason"], wait_reason=row["wait_reason"] if row["status"] == "queued" else None,
            attempts=row["attempts"], whatsapp_id=row["wa_id"], created_at=_iso(row["created_at"]),
            expires_at=_iso(row["expires_at"]),
            timestamps=MessageTimes(**{step: _iso(row[f"{step}_at"]) for step in
                                       ("queued", "sending", "sent", "delivered", "read", "failed")}),
            message=row["body"] if with_body else None,
        )

    def public(self) -> dict:
        return self.model_dump(exclude={"message"} if self.message is None else set())


class MessagePage(BaseModel):
    """``GET /messages``: newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""

    messages: list[MessageOut]
    next_cursor: str | None


# --- webhook deliveries (responses) ------------------------------------------------------------------

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
    event: dict | None = None  # the body sent (GET of one delivery only)

    @classmethod
    def from_row(cls, row: dict, *, endpoint: str, active: bool, with_event: bool = False) -> DeliveryOut:
        import json

        return cls(
            id=row["id"], endpoint=endpoint, active=active, event_id=row["event_id"], event_type=row["event_type"],
            subject=row["subject"], status=row["status"], attempts=row["attempts"],
            next_attempt_at=_iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
            last_attempt_at=_iso(row["last_attempt_at"]), last_status_code=row["last_status_code"],
            last_error=row["last_error"], created_at=_iso(row["created_at"]),
            delivered_at=_iso(row["delivered_at"]), failed_at=_iso(row["failed_at"]),
            updated_at=_iso(row["updated_at"]),
            event=json.loads(row["payload"]) if with_event else None,
        )

    def public(self) -> dict:
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


# --- accounts and scoped keys ------------------------------------------------------------------------

class AccountCreateRequest(RequestModel):
    """``POST /accounts``: a new account's name (``validation.account_name``)."""

    name: StrictStr

    field_codes: ClassVar[dict[str, str]] = {"name": "invalid_account_name"}
    field_hints: ClassVar[dict[str, str]] = {"name": f"a string like {validation.ACCOUNT_NAME_EXAMPLE}"}

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _custom(validation.account_name, value)


class KeyCreateRequest(RequestModel):
    """``POST /accounts/{account}/keys``: an optional label to tell keys apart in a listing."""

    label: StrictStr | None = None

    field_codes: ClassVar[dict[str, str]] = {"label": "invalid_label"}
    field_hints: ClassVar[dict[str, str]] = {"label": "a string of at most 100 characters"}

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        return None if value is None else _custom(validation.key_label, value)


class KeyOut(BaseModel):
    """A scoped key as listed: never its value or its hash."""

    id: str
    prefix: str  # the key's first characters, to recognise it
    label: str | None
    created_at: str
    revoked_at: str | None
    last_used_at: str | None

    @classmethod
    def from_row(cls, row: dict) -> KeyOut:
        return cls(id=row["id"], prefix=row["prefix"], label=row["label"], created_at=_iso(row["created_at"]),
                   revoked_at=_iso(row["revoked_at"]), last_used_at=_iso(row["last_used_at"]))


class KeyCreated(BaseModel):
    """``POST /accounts/{account}/keys`` (201): the only answer that shows the key itself."""

    id: str
    key: str
    prefix: str
    label: str | None
    account: str
    created_at: str

    @classmethod
    def from_row(cls, row: dict, *, key: str) -> KeyCreated:
        return cls(id=row["id"], key=key, prefix=row["prefix"], label=row["label"], account=row["account"],
                   created_at=_iso(row["created_at"]))


# --- the rest of the public contract (responses the views build as dicts; see service/http/openapi.py) ----
# Each model mirrors what its view returns today; tests/test_openapi.py validates real answers against
# the document built from these models.

class WebhookCreateRequest(RequestModel):
    """``POST /accounts/{account}/webhooks``: a URL and, optionally, the event types it gets (default all)."""

    url: StrictStr = Field(json_schema_extra={"format": "uri", "maxLength": 2048,
                                              "examples": ["https://backend.example.com/wa-events"]})
    events: list[StrictStr] | None = Field(default=None, json_schema_extra={"examples": [["message.received"]]})

    field_codes: ClassVar[dict[str, str]] = {"url": "invalid_url", "events": "invalid_events"}
    field_hints: ClassVar[dict[str, str]] = {"url": "an http:// or https:// URL (a string)",
                                             "events": f"a list of event types ({', '.join(EVENT_TYPES)})"}


class ErrorDetail(BaseModel):
    """``code`` is machine-readable (see each operation's list), ``message`` for humans. Some errors add
    fields beside them (a failed send's ``id``; a worker's ``state``, ``attempt``, ...)."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorResponse(BaseModel):
    """The one error shape of every 4xx and 5xx answer."""

    error: ErrorDetail


class Reconnect(BaseModel):
    attempt: int
    scheduled: bool
    next_retry_ms: int | None
    next_retry_at: str | None
    delays_ms: list[int]


class LinkState(BaseModel):
    """While connected: whether the link demonstrably works (the worker's link-monitor.js)."""

    model_config = ConfigDict(extra="allow")

    alive: bool
    last_frame_age_ms: int
    probe_pending_ms: int | None
    probes: int
    buffering_ms: int
    events_stuck: bool
    reason: str | None = None  # when dead
    message: str | None = None


# fenced: in a cluster, the account's lease moved to another instance; this one sends and writes nothing for it


class SessionStatus(BaseModel):
    """``GET /status``, ``POST /connect``: the account's WhatsApp session (from its worker)."""

    model_config = ConfigDict(extra="allow")

    connected: bool
    state: WorkerState
    phone_number: str | None
    name: str | None
    qr: str | None = Field(description="the raw QR string while state is qr")
    qr_image: str | None = Field(description="the QR as a PNG data URL while state is qr")
    last_error: str | None
    link: LinkState | None = None
    reconnect: Reconnect


class DisconnectOut(SessionStatus):
    """``POST /disconnect``: the status after the logout, and whether WhatsApp unlinked the device."""

    unlinked: bool


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


class MessageStatusData(BaseModel):
    id: str
    whatsapp_id: str
    phone_number: str
    status: str  # sent, delivered, read or failed
    reason: str | None


class SessionStatusData(BaseModel):
    state: str | None
    phone_number: str | None
    last_error: str | None


class MessageUndecryptableData(BaseModel):
    whatsapp_id: str
    phone_number: str | None
    lid: str | None
    chat_jid: str
    timestamp: str | None  # the sender's
    attempts: int  # copies that failed to decrypt (the first and the contact's resends)
    error: str | None  # the last decryption error


class _Event(BaseModel):
    id: str  # evt_...; also the webhook-id header
    account: str
    timestamp: str


class MessageReceivedEvent(_Event):
    """A contact's message, once."""

    type: Literal["message.received"]
    data: InboundMessageOut


class MessageStatusEvent(_Event):
    """A message we sent became sent, delivered, read or failed."""

    type: Literal["message.status"]
    data: MessageStatusData


class SessionStatusEvent(_Event):
    """The WhatsApp session changed state."""

    type: Literal["session.status"]
    data: SessionStatusData


class MessageUndecryptableEvent(_Event):
    """A contact's message that could not be decrypted, even after retry receipts and resends."""

    type: Literal["message.undecryptable"]
    data: MessageUndecryptableData


class LoggedMessageReceived(MessageReceivedEvent):
    seq: int


class LoggedMessageStatus(MessageStatusEvent):
    seq: int


class LoggedSessionStatus(SessionStatusEvent):
    seq: int


class LoggedMessageUndecryptable(MessageUndecryptableEvent):
    seq: int


class EventPage(BaseModel):
    """``GET /events``: oldest first; ask again with ``after=next_after``."""

    events: list[Annotated[LoggedMessageReceived | LoggedMessageStatus | LoggedSessionStatus | LoggedMessageUndecryptable,
                           Field(discriminator="type")]]
    next_after: int


class AccountOut(BaseModel):
    """An account with its WhatsApp state (null while its worker does not answer)."""

    name: str
    shard: int
    created_at: str | None
    state: str | None
    connected: bool | None
    phone_number: str | None


class AccountList(BaseModel):
    accounts: list[AccountOut]


class AccountDeleted(BaseModel):
    name: str
    deleted: bool
    unlinked: bool


class KeyList(BaseModel):
    keys: list[KeyOut]


class WebhookOut(BaseModel):
    """An account's webhook: the URL with credentials and query values hidden, never the secret."""

    id: str  # whe_...
    url: str
    events: list[str]
    created_at: str | None
    active: bool


class WebhookCreated(WebhookOut):
    """``POST /accounts/{account}/webhooks``: the webhook and its signing secret, shown this once."""

    secret: str = Field(json_schema_extra={"examples": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]})


class WebhookRotateRequest(RequestModel):
    """``POST /accounts/{account}/webhooks/{id}/rotate-secret``: how long (seconds) the old secret keeps
    signing beside the new one (0: it stops at once)."""

    overlap: int = Field(default=86400, ge=0, le=7 * 86400)

    field_codes: ClassVar[dict[str, str]] = {"overlap": "invalid_overlap"}
    field_hints: ClassVar[dict[str, str]] = {"overlap": "whole seconds from 0 to 604800"}


class WebhookSecretOut(BaseModel):
    """A webhook's new signing secret, shown this once; until ``previous_valid_until`` every delivery carries
    a signature with the old one too (``webhook-signature: v1,<new> v1,<old>``)."""

    id: str
    secret: str
    previous_valid_until: str | None


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class WebhookDeleted(WebhookOut):
    deleted: bool


class WebhookTestRequest(RequestModel):
    """``POST /webhooks/test``: one ``url`` (the global route only), one configured ``endpoint`` (its id or its
    URL as configured or as listed), or neither: every configured endpoint."""

    url: StrictStr | None = Field(default=None, json_schema_extra={
        "format": "uri", "maxLength": 2048, "examples": ["http://127.0.0.1:8080/wa-events"]})
    endpoint: StrictStr | None = Field(default=None, json_schema_extra={"examples": ["whe_01JD5Z3Q8M2B4C6D8E0F2G4H6J"]})

    field_codes: ClassVar[dict[str, str]] = {"url": "invalid_url", "endpoint": "invalid_endpoint"}
    field_hints: ClassVar[dict[str, str]] = {"url": "an http:// or https:// URL (a string)",
                                             "endpoint": "a webhook id or URL (a string)"}


class WebhookTestResult(BaseModel):
    """Whether one endpoint took its test ping (sent once, not stored, never retried). ``status_code``,
    ``error`` and ``elapsed_ms`` come with the admin key only: a key scoped to an account learns delivered
    (``ok``) or not, never what a receiver answered."""

    endpoint: str  # the URL with credentials and query values hidden
    id: str | None  # the account webhook's id (whe_...); null for a WA_WEBHOOK_URL endpoint or a given url
    ok: bool  # delivered: the endpoint answered 2xx
    status_code: int | None = None  # admin only; null when no answer came (refused address, timeout, ...)
    error: str | None = None  # admin only: HTTP <status>, address not allowed, connect: <reason>, timeout, ...
    elapsed_ms: float | None = None  # admin only
    webhook_id: str  # the webhook-id header of the ping


class WebhookTestOut(BaseModel):
    """``POST /webhooks/test``: one result per endpoint pinged (none when no endpoint is configured)."""

    results: list[WebhookTestResult]


class WebhookTestData(BaseModel):
    account: str | None  # the endpoint's account; null for a WA_WEBHOOK_URL endpoint or a given url
    endpoint: str  # the URL pinged, credentials and query values hidden


class WebhookTestEvent(BaseModel):
    """A test ping (POST /webhooks/test): sent once on request, never stored or retried."""

    id: str  # evt_...; also the webhook-id header
    type: Literal["webhook.test"]
    account: str | None
    timestamp: str
    data: WebhookTestData


class HealthWatchdog(BaseModel):
    restarts: int
    next_delay_seconds: float | None
    last_restart_at: float | None
    last_error: str | None


class HealthWorker(BaseModel):
    """``state`` is supervisord's state name; the other fields only with an admin key."""

    state: str
    pid: int | None = None
    uptime_seconds: float | None = None
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    restarts: int | None = None
    exit_status: int | None = None
    watchdog: HealthWatchdog | None = None


class HealthWhatsApp(BaseModel):
    state: str
    link: LinkState | None = None  # admin key only


class HealthShard(BaseModel):
    name: str
    state: str
    pid: int | None = None  # this and below: admin key only
    restarts: int | None = None
    rss_bytes: int | None = None
    accounts: list[str] | None = None


class HealthWebhook(BaseModel):
    active: bool
    pending: int
    failed: int
    account: str | None = None
    url: str | None = None


class HealthStore(BaseModel):
    """Whether a real write to the gateway's database committed just now (within a short timeout)."""

    writable: bool
    error: str | None = Field(default=None, description="why not (e.g. database is locked); absent when writable")


class HealthOut(BaseModel):
    """``GET /health``: without a key, states only; with an admin key, details (pids, errors, webhooks, store)."""

    status: Literal["ok", "degraded"]
    reasons: list[str]
    uptime_seconds: float
    version: str
    worker: HealthWorker
    whatsapp: HealthWhatsApp
    accounts: dict[str, int]  # accounts by WhatsApp state
    shards: list[HealthShard]
    webhooks: dict[str, HealthWebhook] | None = None  # admin key only
    store: HealthStore | None = None  # admin key only (an unwritable store is a reason without a key too)


class LiveOut(BaseModel):
    status: Literal["ok"]


class ReadyProblem(BaseModel):
    code: Literal["worker_not_running", "whatsapp_not_connected", "whatsapp_link_dead", "whatsapp_events_stuck",
                  "shutting_down"]
    message: str


class ReadyOut(BaseModel):
    """``GET /health/ready``: 200 ready, or 503 not_ready with the reason as ``error``."""

    status: Literal["ready", "not_ready"]
    worker: str
    whatsapp: str
    error: ReadyProblem | None = None
