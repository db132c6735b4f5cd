"""The media of a ``POST /send``: from the JSON body (``url`` or ``base64``) or a multipart form, stored
durably (fsync'ed under its sha256, adopted by the media store) before the message is accepted.

Every check that can refuse the request runs before the bytes are committed, so a refused request keeps
nothing: the JSON body is validated whole first; a form's fields are checked once the form has been read and
before its file is committed (``Intake.from_multipart``'s ``check``). Bytes stored for a request that is then
not accepted (a full outbox, a lost race for its Idempotency-Key) are content-addressed and unreferenced:
retention removes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from service.errors import BadRequest, RequestTimeout
from service.http.appkeys import MEDIA_INTAKE, MEDIA_STORE, SETTINGS
from service.http.body_deadline import body_deadline
from service.http.models import SendRequest
from service.http.strict_input import unknown_field
from service.http.validation import InvalidInput, group_id, message_text, phone_number
from service.media import refs
from service.media.errors import InvalidMedia
from service.media.intake import TRUE, MediaSpec, StoredMedia
from service.media.kinds import CAPTIONED
from service.media.store import Blob
from service.store import outbox
from service.store.outbox import OutboundMedia, media_identity

FORM_FIELDS = ("phone_number", "group_id", "kind", "caption", "ptt", "reply_to")


def accept_within_quota(
    conn: Any, *, quota: int, media: OutboundMedia | None, **accept: Any
) -> tuple[dict[str, Any], bool]:
    """``outbox.accept`` with the account's media quota (WA_MEDIA_QUOTA_BYTES) checked in the same transaction, so
    two sends cannot both take its last bytes; a replay of an accepted request is answered whatever the quota."""
    key = accept.get("idempotency_key")
    if media is not None and quota > 0:
        extra = accept.get("extra")
        rhash = outbox.request_hash(accept["phone_number"], accept["body"], media, extra.identity if extra else None)
        original = None if key is None else outbox.replayed(conn, accept["account"], key, rhash, accept["now"])
        if original is not None:
            return original, False
        refs.check_quota(conn, accept["account"], quota, media.sha256, media.size)
    return outbox.accept(conn, media=media, **accept)


@dataclass(frozen=True, slots=True)
class FormSend:
    """A multipart send, its file stored."""

    phone_number: str  # the recipient: a phone number, or a group's jid
    caption: str
    media: OutboundMedia
    reply_to: str | None = None


def url_identity(body: SendRequest) -> str | None:
    """The identity of a media given by URL, known before fetching (None for base64 or text)."""
    kind = body.media_kind
    source = getattr(body, kind) if kind else None
    if kind is None or source is None or source.url is None:
        return None
    return media_identity(kind, source.url, source.filename, source.mimetype, bool(body.ptt))


async def from_json(request: web.Request, body: SendRequest) -> OutboundMedia | None:
    """The body's media, fetched or decoded into the store; None for a text."""
    kind = body.media_kind
    source = getattr(body, kind) if kind else None
    if kind is None or source is None:
        return None
    spec = MediaSpec(kind=kind, mimetype=source.mimetype, filename=source.filename, ptt=bool(body.ptt))
    intake = request.app[MEDIA_INTAKE]
    if source.url is not None:
        stored = await intake.from_url(source.url, spec)
        identity = media_identity(kind, source.url, source.filename, source.mimetype, spec.ptt)
    else:
        stored = await intake.from_base64(source.base64 or "", spec)
        identity = media_identity(kind, stored.sha256, source.filename, source.mimetype, spec.ptt)
    return await _adopted(request, stored, identity)


async def from_form(request: web.Request) -> FormSend:
    """``multipart/form-data`` with the fields ``phone_number``, ``kind``, ``caption``?, ``ptt``? and the file in
    ``file``, streamed into the store (never whole in memory) within the body's deadline."""
    settings = request.app[SETTINGS]
    checked: dict[str, str] = {}

    def check(fields: dict[str, str], spec: MediaSpec) -> None:
        for name in fields:
            if name not in FORM_FIELDS:
                raise unknown_field(name, (*FORM_FIELDS, "file"), "form field")
        checked.update(_checked_fields(fields, spec, settings.max_message_chars))

    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):  # no boundary, or one aiohttp cannot use
        raise InvalidMedia("the multipart body needs a boundary in its Content-Type") from None
    try:
        async with body_deadline(request, settings.body_timeout, settings.media.body_min_rate):
            _, stored = await request.app[MEDIA_INTAKE].from_multipart(reader, check)
    except TimeoutError:
        raise RequestTimeout("The upload did not keep arriving (WA_BODY_TIMEOUT, WA_BODY_MIN_RATE).") from None
    identity = media_identity(stored.kind, stored.sha256, stored.filename, None, stored.ptt)
    media = await _adopted(request, stored, identity)
    return FormSend(checked["phone_number"], checked.get("caption", ""), media, checked.get("reply_to"))


def _checked_fields(fields: dict[str, str], spec: MediaSpec, max_chars: int) -> dict[str, str]:
    """The form's rules, as the JSON body's (SendRequest): a phone number or a group, a caption only where WhatsApp
    shows one, ``ptt`` only for audio, ``reply_to`` a message id."""
    if ("phone_number" in fields) == ("group_id" in fields):
        raise BadRequest("A message goes to a phone_number or to a group_id: exactly one of them.",
                         code="invalid_phone_number")
    try:
        recipient = (phone_number(fields["phone_number"]) if "phone_number" in fields
                     else group_id(fields["group_id"]))
    except InvalidInput as exc:
        raise BadRequest(exc.message, code=exc.code or "invalid_phone_number") from None
    out = {"phone_number": recipient}
    if "reply_to" in fields:
        reply_to = fields["reply_to"]
        if not (0 < len(reply_to) <= 64 and reply_to.isascii() and reply_to.isprintable()):
            raise BadRequest("reply_to must be a message id (GET /messages).", code="invalid_reply_to")
        out["reply_to"] = reply_to
    if "caption" in fields:
        if spec.kind not in CAPTIONED:
            raise BadRequest("caption applies to an image, a video or a document.", code="invalid_caption")
        try:
            out["caption"] = message_text(fields["caption"], max_chars)
        except InvalidInput as exc:
            raise BadRequest(exc.message, code=exc.code or "invalid_caption") from None
    if "ptt" in fields and spec.kind != "audio":
        raise BadRequest("ptt applies to audio only.", code="invalid_request")
    if "ptt" in fields and (fields["ptt"].strip().lower() in TRUE) != spec.ptt:  # the file was checked without it
        raise BadRequest("ptt must come before the file part.", code="invalid_request")
    return out


async def _adopted(request: web.Request, stored: StoredMedia, identity: str) -> OutboundMedia:
    """The stored bytes made durable in the media store proper (a remote store uploads them now)."""
    await request.app[MEDIA_STORE].adopt(Blob(stored.sha256, stored.size, stored.path))
    return OutboundMedia(kind=stored.kind, sha256=stored.sha256, mimetype=stored.mimetype, size=stored.size,
                         filename=stored.filename, ptt=stored.ptt, identity=identity)
