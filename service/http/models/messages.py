"""Messages: ``POST /send``'s body, and messages sent and received as ``/messages`` shows them."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, StrictBool, StrictStr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from service.http import validation
from service.http.models.base import RequestModel, checked, iso
from service.http.models.conversation import MAX_CARDS, ContactIn, LocationIn, PollIn, checked_vcard
from service.http.models.media import InboundMediaOut
from service.media.kinds import CAPTIONED, KINDS, Kind
from service.states import DEFAULT_ACCOUNT
from service.store.outbox_ids import is_group


class MediaSource(RequestModel):
    """Where a media's bytes come from: a ``url`` the gateway fetches, or ``base64`` data; exactly one."""

    url: StrictStr | None = None
    base64: StrictStr | None = None
    mimetype: StrictStr | None = None  # checked against the bytes' own type (400 media_type_mismatch)
    filename: StrictStr | None = None  # a document's name at the contact

    field_codes: ClassVar[dict[str, str]] = {f: "invalid_media" for f in ("url", "base64", "mimetype", "filename")}
    field_hints: ClassVar[dict[str, str]] = {f: "a string" for f in ("url", "base64", "mimetype", "filename")}

    @model_validator(mode="after")
    def _one_source(self) -> MediaSource:
        if (self.url is None) == (self.base64 is None):
            raise PydanticCustomError("wa:invalid_media", "A media takes exactly one of url and base64.")
        return self


CONTENTS = ("location", "contacts", "vcards", "poll")  # besides text and media (issue 25)


class SendRequest(RequestModel):
    """``POST /send``: one message to one phone number or one group (``group_id``): text (``message``), one media
    kind, a location, contact cards or a poll; ``reply_to`` quotes a message of the chat; ``mentions`` names
    members of a group the text mentions."""

    phone_number: StrictStr | None = None
    group_id: StrictStr | None = None
    message: StrictStr | None = None
    image: MediaSource | None = None
    video: MediaSource | None = None
    audio: MediaSource | None = None
    document: MediaSource | None = None
    sticker: MediaSource | None = None
    caption: StrictStr | None = None  # image, video, document
    ptt: StrictBool | None = None  # audio: a voice note (OGG/Opus)
    location: LocationIn | None = None
    contacts: list[ContactIn] | None = None  # cards the gateway writes
    vcards: list[StrictStr] | None = None  # cards as the caller wrote them
    poll: PollIn | None = None
    reply_to: StrictStr | None = None  # our id of the quoted message (a contact's or ours)
    mentions: list[StrictStr] | None = None  # phone numbers of group members the text mentions (@...)

    field_codes: ClassVar[dict[str, str]] = {
        "phone_number": "invalid_phone_number",
        "message": "invalid_message",
        **{kind: "invalid_media" for kind in KINDS},
        "caption": "invalid_caption",
        "ptt": "invalid_request",
        "location": "invalid_location",
        "contacts": "invalid_contacts",
        "vcards": "invalid_contacts",
        "poll": "invalid_poll",
        "reply_to": "invalid_reply_to",
        "group_id": "invalid_group_id",
        "mentions": "invalid_mentions",
    }
    field_hints: ClassVar[dict[str, str]] = {
        "phone_number": f"a string like {validation.PHONE_EXAMPLE}",
        "message": "a string",
        **{kind: 'an object with "url" or "base64"' for kind in KINDS},
        "caption": "a string",
        "ptt": "true or false",
        "location": 'an object with "latitude" and "longitude"',
        "contacts": 'a list of {"name", "phone_number"}',
        "vcards": "a list of vCard strings",
        "poll": 'an object with "question" and "options"',
        "reply_to": "a message id",
        "group_id": f"a string like {validation.GROUP_ID_EXAMPLE}",
        "mentions": f"a list of strings like {validation.PHONE_EXAMPLE}",
    }

    @field_validator("phone_number")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else checked(validation.phone_number, value)

    @field_validator("group_id")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return None if value is None else checked(validation.group_id, value)

    @field_validator("mentions")
    @classmethod
    def _mentions(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not 1 <= len(value) <= 1024:
            raise PydanticCustomError("wa:invalid_mentions", "mentions names 1 to 1,024 phone numbers.")
        try:
            return list(dict.fromkeys(validation.phone_number(v) for v in value))
        except validation.InvalidInput as exc:
            raise PydanticCustomError("wa:invalid_mentions", f"Each mention: {exc.message}") from None

    @field_validator("message", "caption")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        max_chars = (info.context or {}).get("max_message_chars", 65536)
        return None if value is None else checked(validation.message_text, value, max_chars)

    @field_validator("vcards")
    @classmethod
    def _vcards(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [checked_vcard(card) for card in value]

    @field_validator("contacts", "vcards")
    @classmethod
    def _cards(cls, value: list[object] | None) -> list[object] | None:
        if value is not None and not 1 <= len(value) <= MAX_CARDS:
            raise PydanticCustomError("wa:invalid_contacts", f"A message carries 1 to {MAX_CARDS} contact cards.")
        return value

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str | None) -> str | None:
        if value is not None and not (0 < len(value) <= 64 and value.isascii() and value.isprintable()):
            raise PydanticCustomError("wa:invalid_reply_to", "reply_to must be a message id (GET /messages).")
        return value

    @model_validator(mode="after")
    def _one_content(self) -> SendRequest:
        if (self.phone_number is None) == (self.group_id is None):
            raise PydanticCustomError("wa:invalid_phone_number",
                                      "A message goes to a phone_number or to a group_id: exactly one of them.")
        if self.mentions is not None and (self.group_id is None or self.message is None and self.caption is None):
            raise PydanticCustomError("wa:invalid_mentions", "mentions go with a text or caption sent to a group.")
        given = [kind for kind in (*KINDS, *CONTENTS) if getattr(self, kind) is not None]
        if self.message is None and not given:
            raise PydanticCustomError(
                "wa:invalid_message",
                "message is required (or one of image, video, audio, document, sticker, location, contacts, vcards,"
                " poll).")
        if len(given) + (self.message is not None) > 1:
            raise PydanticCustomError("wa:invalid_message",
                                      "A message is text, one media, a location, contact cards or a poll: one of them.")
        kind = given[0] if given else None
        if self.caption is not None and kind not in CAPTIONED:
            raise PydanticCustomError("wa:invalid_caption", "caption applies to an image, a video or a document.")
        if self.ptt is not None and kind != "audio":
            raise PydanticCustomError("wa:invalid_request", "ptt applies to audio only.")
        return self

    @property
    def media_kind(self) -> Kind | None:
        return next((kind for kind in KINDS if getattr(self, kind) is not None), None)

    @property
    def recipient(self) -> str:
        """Whom the outbox sends it to: the phone number, or the group's jid."""
        recipient = self.phone_number or self.group_id
        assert recipient is not None  # _one_content
        return recipient

    @property
    def content_kind(self) -> str | None:
        """location, contacts (``contacts`` or ``vcards``) or poll; None for text and media."""
        kind = next((kind for kind in CONTENTS if getattr(self, kind) is not None), None)
        return "contacts" if kind == "vcards" else kind


class MessageTimes(BaseModel):
    """When the message reached each step (ISO-8601 UTC), null for steps not (yet) reached."""

    queued: str | None
    sending: str | None
    sent: str | None
    delivered: str | None
    read: str | None
    failed: str | None


class MediaOut(BaseModel):
    """A message's media (``GET /media/{id}`` serves its bytes at ``url``)."""

    id: str  # the message's id
    kind: str  # image, video, audio, document, sticker
    mimetype: str
    size: int  # bytes
    sha256: str  # hex of the bytes
    filename: str | None
    caption: str | None
    ptt: bool  # a voice note
    state: str  # stored, or pruned (retention removed the bytes)
    url: str  # /media/{id}, or /accounts/{name}/media/{id}


def media_url(account: str, message_id: str) -> str:
    return f"/media/{message_id}" if account == DEFAULT_ACCOUNT else f"/accounts/{account}/media/{message_id}"


class MessageOut(BaseModel):
    """One outbound message as the API shows it (``GET /messages/{id}``, ``POST /send``)."""

    id: str
    direction: str
    type: str  # text, or the media's kind
    phone_number: str | None  # the recipient; null for a group's message (group_id)
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
    media: MediaOut | None = None  # a media message's (its caption is media.caption)
    # issue 25: a reply's quoted message (our id); the message an action (reaction, edit, revoke, read) acts on;
    # what a location, contacts, poll or action carries (absent for text and media)
    reply_to: str | None = None
    target_id: str | None = None
    group_id: str | None = None  # sent to a group
    content: dict[str, Any] | None = None
    # GET /messages/{id} of our message: what our later actions did to it (absent when none did)
    reactions: dict[str, str] | None = None  # {"me": emoji} while our reaction stands
    edits: list[str] | None = None  # the texts, the original first (message is the latest)
    revoked: bool | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any], *, with_body: bool = True) -> MessageOut:
        kind = row.get("media_kind")
        media = None if not kind else MediaOut(
            id=row["id"], kind=kind, mimetype=row["media_mimetype"], size=row["media_size"],
            sha256=row["media_sha256"], filename=row["media_filename"],
            caption=(row["body"] or None) if with_body else None, ptt=bool(row["media_ptt"]),
            state="pruned" if row.get("media_pruned_at") else "stored", url=media_url(row["account"], row["id"]))
        stored = json.loads(row["content"]) if row.get("content") else {}
        return cls(
            id=row["id"], direction=row["direction"], type=kind or row.get("action") or "text", media=media,
            reply_to=row.get("reply_to"), target_id=row.get("target_id"), content=stored.get("public"),
            phone_number=None if is_group(row["phone_number"]) else row["phone_number"],
            group_id=row["phone_number"] if is_group(row["phone_number"]) else None, status=row["status"],
            reason=row["reason"], wait_reason=row["wait_reason"] if row["status"] == "queued" else None,
            attempts=row["attempts"], whatsapp_id=row["wa_id"], created_at=iso(row["created_at"]),
            expires_at=iso(row["expires_at"]),
            timestamps=MessageTimes(**{step: iso(row[f"{step}_at"]) for step in
                                       ("queued", "sending", "sent", "delivered", "read", "failed")}),
            message=row["body"] if with_body and not kind and row["body"] else None,
        )

    def public(self) -> dict[str, Any]:
        optional = ("message", "media", "reply_to", "target_id", "content", "reactions", "edits", "revoked", "group_id")
        return self.model_dump(exclude={name for name in optional if getattr(self, name) is None})


class MessagePage(BaseModel):
    """``GET /messages``: newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""

    messages: list[MessageOut]
    next_cursor: str | None


class QuotedRef(BaseModel):
    """The message a reply quotes, by our id: a contact's (``in``) or ours (``out``)."""

    id: str
    direction: Literal["in", "out"]


class LocationOut(BaseModel):
    latitude: float | None
    longitude: float | None
    name: str | None
    address: str | None


class ContactCardOut(BaseModel):
    name: str | None
    vcard: str | None  # as the sender wrote it (vCard 3.0 from WhatsApp's apps)


class PollOut(BaseModel):
    question: str | None
    options: list[str]
    multiple: bool  # several options may be chosen


class ParticipantOut(BaseModel):
    phone_number: str | None
    lid: str | None


class EditOut(BaseModel):
    text: str | None
    timestamp: str | None  # the sender's


class InboundMessageOut(BaseModel):
    """A contact's message (``direction: "in"``), as listed and as the ``message.received`` data."""

    id: str
    direction: Literal["in"]
    whatsapp_id: str
    phone_number: str | None  # E.164, also when the contact wrote by its LID (when resolvable)
    lid: str | None
    chat_jid: str
    push_name: str | None
    type: str  # text, image, video, audio, document, sticker, location, contacts, poll, unsupported, ... (= kind)
    kind: str  # text, image, reaction, ... (kept for older clients: read type)
    text: str | None  # null when not text; a media message's caption
    timestamp: str | None  # the sender's
    offline: bool
    received_at: str | None
    media: InboundMediaOut | None = None  # a media message's (absent otherwise): its bytes at media.url
    quoted_id: str | None = None  # a reply: the WhatsApp id of the message it quotes (null otherwise)
    quoted: QuotedRef | None = None  # that message by our id, when it is one we know
    location: LocationOut | None = None  # type location only
    contacts: list[ContactCardOut] | None = None  # type contacts only
    poll: PollOut | None = None  # type poll only
    raw_type: str | None = None  # type unsupported only: WhatsApp's name of the message's content
    group_id: str | None = None  # a group's message (absent otherwise); participant is who sent it
    participant: ParticipantOut | None = None
    edits: list[EditOut] | None = None  # edited by the contact: every version, the original first (text the latest)
    revoked_at: str | None = None  # deleted by the contact for everyone (its text stays here for the record)


class MessageList(BaseModel):
    """``GET /messages``: newest first; ``direction=out`` lists sent messages, ``direction=in`` received ones."""

    messages: list[MessageOut | InboundMessageOut]
    next_cursor: str | None
