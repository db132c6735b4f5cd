"""Typed results: what the gateway answers, as pydantic models (the gateway's /openapi.json is the source).

Every model keeps fields it does not know (``extra="allow"``) so that a newer gateway's additions reach the
caller instead of breaking the parse; ``.raw`` style access is ``model.model_dump()``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Reconnect(_Model):
    attempt: int = 0
    scheduled: bool = False
    next_retry_ms: int | None = None
    next_retry_at: str | None = None
    delays_ms: list[int] = Field(default_factory=list)


class Status(_Model):
    """An account's WhatsApp session: ``state`` is one of stopped, connecting, qr, connected, logged_out..."""

    connected: bool
    state: str
    phone_number: str | None = None
    name: str | None = None
    qr: str | None = None  # the QR payload while state is qr (render it, never log it)
    qr_image: str | None = None  # the same as a PNG data URL
    pairing_code: str | None = None  # while state is pairing_code: the code to type on the phone, ABCD-EFGH
    last_error: str | None = None
    link: dict[str, Any] | None = None
    reconnect: Reconnect | None = None
    # In state whatsapp_unreachable: {"cause": dns|refused|tls|proxy|timeout|network, "detail", "since", "attempts"}
    unreachable: dict[str, Any] | None = None


class Disconnected(Status):
    unlinked: bool = False


class Timestamps(_Model):
    queued: str | None = None
    sending: str | None = None
    sent: str | None = None
    delivered: str | None = None
    read: str | None = None
    failed: str | None = None


class Media(_Model):
    """The media of a message (issue 24): what it is and where its bytes are. ``state`` is ``stored`` (the
    bytes are on the gateway: download them), ``downloading`` (an inbound file the gateway is still fetching
    from WhatsApp) or ``failed`` (``error`` says why); ``url`` is the gateway path that serves the bytes."""

    id: str
    kind: str  # image, video, audio, document, sticker
    mimetype: str | None = None
    size: int | None = None
    sha256: str | None = None  # hex of the plain bytes; also the ETag of GET /media/{id}
    filename: str | None = None
    caption: str | None = None
    ptt: bool | None = None  # a voice note
    seconds: int | None = None
    width: int | None = None
    height: int | None = None
    state: str = "stored"
    url: str | None = None
    error: str | None = None


class Message(_Model):
    """A message sent through the outbox (``direction`` ``out``)."""

    id: str
    direction: Literal["out"] = "out"
    phone_number: str | None = None  # None for a message to a group (``group_id``)
    group_id: str | None = None
    status: str  # queued, sending, sent, delivered, read, failed
    reason: str | None = None
    wait_reason: str | None = None
    attempts: int = 0
    whatsapp_id: str
    created_at: str
    expires_at: str | None = None
    timestamps: Timestamps = Field(default_factory=Timestamps)
    message: str | None = None  # the text (the latest, when edited)
    type: str = "text"  # or the media kind, location, contacts, poll; an action: reaction, edit, revoke, read, presence
    media: Media | None = None
    replayed: bool = False  # the answer of an earlier request with the same Idempotency-Key
    reply_to: str | None = None  # a reply: our id of the message it quotes
    target_id: str | None = None  # an action (reaction, edit, revoke, read): the id of the message it acts on
    # what a location, contacts, poll or action carries: {"location": {...}}, {"contacts": [...], "vcards": [...]},
    # {"poll": {...}}, {"emoji"}, {"message"} (edit), {} (revoke), {"ids": [...]} (read), {"state"} (presence)
    content: dict[str, Any] | None = None
    reactions: dict[str, str] | None = None  # GET of our message: {"me": emoji} while our reaction stands
    edits: list[str] | None = None  # GET of our message, once edited: its texts, the original first
    revoked: bool | None = None  # GET of our message: deleted for everyone


class Location(_Model):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None


class ContactCard(_Model):
    name: str | None = None
    vcard: str | None = None  # as the sender wrote it


class Poll(_Model):
    question: str | None = None
    options: list[str] = Field(default_factory=list)
    multiple: bool = False  # several options may be chosen


class Quoted(_Model):
    """The message a reply quotes, by our id: a contact's (``in``) or ours (``out``)."""

    id: str
    direction: Literal["in", "out"]


class Edit(_Model):
    text: str | None = None
    timestamp: str | None = None  # the sender's


class InboundMessage(_Model):
    """A message a contact sent (``direction`` ``in``)."""

    id: str
    direction: Literal["in"] = "in"
    whatsapp_id: str
    phone_number: str | None = None
    lid: str | None = None
    chat_jid: str | None = None
    push_name: str | None = None
    kind: str = "text"
    text: str | None = None  # the caption of a media message
    type: str | None = None
    media: Media | None = None
    timestamp: str | None = None
    offline: bool = False
    received_at: str | None = None
    quoted_id: str | None = None  # a reply: WhatsApp's id of the message it quotes
    quoted: Quoted | None = None  # that message by our id, when the gateway knows it
    location: Location | None = None  # type location
    contacts: list[ContactCard] | None = None  # type contacts
    poll: Poll | None = None  # type poll
    raw_type: str | None = None  # type unsupported: WhatsApp's name of the content
    edits: list[Edit] | None = None  # edited by the contact: every version, the original first (text: the latest)
    revoked_at: str | None = None  # deleted by the contact for everyone (its text stays for the record)


def message_of(data: dict[str, Any]) -> Message | InboundMessage:
    return InboundMessage.model_validate(data) if data.get("direction") == "in" else Message.model_validate(data)


class Page(_Model):
    """One page of a listing; ``next_cursor`` asks for the next (None: this was the last)."""

    items: list[Any]
    next_cursor: str | None = None


class MessageAction(_Model):
    """What a contact did to a message (``message.reaction``, ``message.edited``, ``message.revoked``): that
    message by WhatsApp's id and, when the gateway knows it, by ours (``direction`` ``in``: the contact's own
    message, ``out``: one we sent)."""

    whatsapp_id: str  # the reaction's, edit's or revoke's own
    message_id: str | None = None
    message_whatsapp_id: str | None = None
    direction: str | None = None
    phone_number: str | None = None
    lid: str | None = None
    chat_jid: str | None = None
    timestamp: str | None = None
    emoji: str | None = None  # a reaction's ("" when the contact removed it)
    text: str | None = None  # an edit's new text


class Presence(_Model):
    """A contact typing (``composing``), ``recording``, ``paused``, ``available`` or ``unavailable``."""

    phone_number: str | None = None
    lid: str | None = None
    chat_jid: str | None = None
    state: str
    last_seen: str | None = None


class PollVote(_Model):
    """A contact's vote on our poll: the names chosen (``[]``: withdrawn); ``options`` None with ``error``
    (``poll_unknown``, ``undecryptable``) when it could not be read."""

    poll_id: str | None = None  # our id of the poll
    whatsapp_id: str | None = None  # the poll's
    phone_number: str | None = None
    lid: str | None = None
    options: list[str] | None = None
    error: str | None = None


class ChatRead(_Model):
    """The account's own phone read a contact's messages (on another device than the gateway)."""

    phone_number: str | None = None
    lid: str | None = None
    message_ids: list[str] = Field(default_factory=list)  # ours (GET /messages/{id})
    whatsapp_ids: list[str] = Field(default_factory=list)


_TYPED: dict[str, type[_Model]] = {"message.reaction": MessageAction, "message.edited": MessageAction,
                                   "message.revoked": MessageAction, "presence": Presence, "poll.vote": PollVote,
                                   "chat.read": ChatRead}


class Event(_Model):
    """One event of the durable log, as GET /events, the SSE stream and webhooks deliver it."""

    id: str
    type: str  # message.received, message.status, session.status, message.undecryptable, media.stored, media.failed,
    # message.reaction, message.edited, message.revoked, presence, poll.vote, chat.read (webhook.test: webhooks only)
    account: str | None = None
    timestamp: str | None = None
    seq: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def message(self) -> InboundMessage | None:
        return InboundMessage.model_validate(self.data) if self.type == "message.received" else None

    @property
    def media(self) -> Media | None:
        """The media of a ``message.received``, ``media.stored`` or ``media.failed`` event's message (the
        message's id is ``data["id"]``: download it once ``media.stored`` came)."""
        media = self.data.get("media") if self.type in ("message.received", "media.stored", "media.failed") else None
        return Media.model_validate(media) if isinstance(media, dict) else None

    def _typed(self, *types: str) -> Any:
        return _TYPED[self.type].model_validate(self.data) if self.type in types else None

    @property
    def action(self) -> MessageAction | None:
        """A ``message.reaction``, ``message.edited`` or ``message.revoked`` event's data."""
        action: MessageAction | None = self._typed("message.reaction", "message.edited", "message.revoked")
        return action

    @property
    def presence(self) -> Presence | None:
        presence: Presence | None = self._typed("presence")
        return presence

    @property
    def poll_vote(self) -> PollVote | None:
        vote: PollVote | None = self._typed("poll.vote")
        return vote

    @property
    def chat_read(self) -> ChatRead | None:
        read: ChatRead | None = self._typed("chat.read")
        return read


class EventPage(_Model):
    events: list[Event]
    next_after: int


class AccountProxy(_Model):
    url: str | None = None  # scheme://[***@]host:port; None: a direct connection
    source: str | None = None  # "account" (its own proxy_url, or "direct") or "global" (WA_PROXY_URL, or none)


class Account(_Model):
    name: str
    shard: int | None = None
    created_at: str | None = None
    state: str | None = None
    connected: bool | None = None
    phone_number: str | None = None
    proxy: AccountProxy | None = None  # the proxy of its WhatsApp connection, without credentials


class AccountDeleted(_Model):
    name: str
    deleted: bool
    unlinked: bool


class Key(_Model):
    id: str
    prefix: str
    label: str | None = None
    created_at: str | None = None
    revoked_at: str | None = None
    last_used_at: str | None = None


class KeyCreated(_Model):
    """A new scoped key: ``key`` is shown once, here only."""

    id: str
    key: str
    prefix: str
    label: str | None = None
    account: str
    created_at: str | None = None


class Webhook(_Model):
    id: str
    url: str
    events: list[str] = Field(default_factory=list)
    created_at: str | None = None
    active: bool = True
    deleted: bool | None = None
    secret: str | None = None  # its own signing secret: in add_webhook's answer only (shown once)


class WebhookSecret(_Model):
    """A webhook's new signing secret (rotate_webhook_secret), shown once; the old one signs beside it until
    ``previous_valid_until``."""

    id: str
    secret: str
    previous_valid_until: str | None = None


class WebhookTestResult(_Model):
    endpoint: str
    id: str | None = None
    ok: bool
    status_code: int | None = None
    error: str | None = None
    elapsed_ms: float | None = None
    webhook_id: str | None = None


class Delivery(_Model):
    id: str
    endpoint: str
    active: bool
    event_id: str
    event_type: str
    subject: str | None = None
    status: str  # pending, delivered, failed
    attempts: int
    next_attempt_at: str | None = None
    last_attempt_at: str | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: str
    delivered_at: str | None = None
    failed_at: str | None = None
    updated_at: str | None = None
    event: dict[str, Any] | None = None


class Health(_Model):
    """GET /health: states for anyone; with the admin key also pids, errors, webhooks and the store."""

    status: Literal["ok", "degraded"]
    reasons: list[str] = Field(default_factory=list)
    uptime_seconds: float | None = None
    version: str | None = None
    worker: dict[str, Any] = Field(default_factory=dict)
    whatsapp: dict[str, Any] = Field(default_factory=dict)
    accounts: dict[str, int] = Field(default_factory=dict)
    shards: list[dict[str, Any]] = Field(default_factory=list)
    webhooks: dict[str, Any] | None = None
    store: dict[str, Any] | None = None


class Ready(_Model):
    """GET /health/ready: ``ready`` is False with ``error`` saying why (the answer was a 503)."""

    status: Literal["ready", "not_ready"]
    worker: str | None = None
    whatsapp: str | None = None
    error: dict[str, Any] | None = None

    @property
    def ready(self) -> bool:
        return self.status == "ready"
