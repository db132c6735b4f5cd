"""Messages: ``POST /send`` (commit to the outbox, then wait briefly for the server ack),
``GET /messages`` (``direction=out``: the outbox; ``direction=in``: what contacts sent),
``GET /messages/{id}`` (either), ``DELETE /messages/{id}``."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import structlog
from aiohttp import web

from service.errors import ApiError, BadRequest, Conflict, NotFound, error_response
from service.http.appkeys import DATABASE, SETTINGS
from service.http.models import MessageOut, MessagePage, SendRequest, parse
from service.http.validation import (
    InvalidInput,
    idempotency_key,
    json_object,
    phone_number,
)
from service.http.views import paging, send_content, send_media, text_send
from service.http.views.context import account_of
from service.runtime.accounts import Account, Elsewhere
from service.states import DONE, FAILURE_MESSAGES, MESSAGE_STATUSES
from service.store import accounts, inbound, outbox, outbox_targets
from service.store.db import Database

log = structlog.get_logger("gateway.messages")

MAX_LIMIT = 200
RETRY_AFTER = 5  # seconds, on 503 outbox_full
SETTLE_POLL = 0.05  # seconds between reads of a message another instance is sending


def idempotency(request: web.Request) -> str | None:
    if "Idempotency-Key" not in request.headers:
        return None
    try:
        return idempotency_key(request.headers["Idempotency-Key"])
    except InvalidInput as exc:
        raise BadRequest(exc.message, code="invalid_idempotency_key") from None


def wait_of(request: web.Request) -> float:
    settings = request.app[SETTINGS]
    raw = request.query.get("wait")
    if raw is None:
        return settings.send_wait
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or value > settings.send_wait_max:
        raise BadRequest(f"wait must be a number of seconds from 0 to {settings.send_wait_max:g}.",
                         code="invalid_wait")
    return value


def answer(row: dict[str, Any], *, replayed: bool) -> web.Response:
    if row["status"] == "failed":
        raise ApiError(FAILURE_MESSAGES.get(row["reason"], "The message could not be sent."),
                       code=row["reason"] or "failed", status=422, details={"id": row["id"]})
    headers = {"Location": f"/messages/{row['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    status = 200 if row["status"] in DONE else 202
    return web.json_response(text_send.public_message(row), status=status, headers=headers)


async def send(request: web.Request) -> web.Response:
    """parse -> (store the media) -> accept (durable) -> wait: the dispatcher of the account sends it, here or
    on its owner. Text, media, a location, contact cards or a poll as JSON (views/send_content.py), or media as a
    multipart form (views/send_media.py)."""
    settings = request.app[SETTINGS]
    key = idempotency(request)
    account = account_of(request)
    media: outbox.OutboundMedia | None
    extra: outbox.OutboundExtra | None = None
    if request.content_type == "multipart/form-data":
        wait = wait_of(request)
        await linked(request, account, key)
        form = await send_media.from_form(request)
        phone, text, media = form.phone_number, form.caption, form.media
        extra = await send_content.reply_extra(request, account.name, phone, form.reply_to)
    else:
        raw = await json_object(request, max_bytes=settings.media.send_max_body_bytes)
        plain = text_send.plain_text(raw, settings.max_message_chars)
        if plain is not None:  # the commonest send, checked by the same rules without the model (text_send.py)
            wait = wait_of(request)
            await linked(request, account, key)
            return await deliver(request, account, *plain, key, wait)
        body = parse(SendRequest, raw, max_message_chars=settings.max_message_chars)
        wait = wait_of(request)
        await linked(request, account, key)
        phone, text = body.recipient, body.message or body.caption or ""
        original = await _replayed(request, account, key, body)
        if original is not None:
            return answer(original, replayed=True)
        extra = await send_content.extra_of(request, account.name, body)
        media = await send_media.from_json(request, body)
    return await deliver(request, account, phone, text, key, wait, media=media, extra=extra)


async def deliver(request: web.Request, account: Account | Elsewhere, phone: str, text: str, key: str | None,
                  wait: float, *, media: outbox.OutboundMedia | None = None, extra: outbox.OutboundExtra | None = None,
                  accept: Any = None) -> web.Response:
    """Accept (durable), then wait up to ``wait`` for the send, and answer like ``POST /send``: also the door of
    the actions on a message (views/message_actions.py). ``accept``: the store function that accepts (default
    ``send_media.accept_within_quota``)."""
    settings = request.app[SETTINGS]
    try:
        row, created = await _accept(request, account, phone, text, media, key, extra=extra, accept=accept)
    except outbox.OutboxFull:
        log.warning("outbox.full", limit=settings.outbox_max)
        return error_response(503, "outbox_full", "The outbox is full (WA_OUTBOX_MAX); retry later.",
                              headers={"Retry-After": str(RETRY_AFTER)})
    if isinstance(account, Account):
        row = await account.dispatcher.settle(row, wait, new=created)
    elif row["status"] not in DONE and wait > 0:  # the owner's dispatcher sends it (woken through the store)
        row = await _settled(request.app[DATABASE], account.name, row, wait)
    return answer(row, replayed=not created)


async def linked(request: web.Request, account: Account | Elsewhere, key: str | None) -> None:
    """409 ``not_linked`` when nothing would ever send for the account (before any media is fetched or
    stored). A connected account is linked without asking the store; a replay of an accepted request is
    answered even when the account was unlinked since."""
    if isinstance(account, Account) and account.link.connected:
        return
    db = request.app[DATABASE]
    if key is not None and await db.run(outbox.key_in_use, account.name, key, time.time()):
        return
    if await _refuses_sends(db, account):
        raise Conflict("No WhatsApp account is linked: POST /connect and scan the QR code first.",
                       code="not_linked")


async def _replayed(request: web.Request, account: Account | Elsewhere, key: str | None,
                    body: SendRequest) -> dict[str, Any] | None:
    """The message a retry accepted already: answered without fetching a media URL again, nor checking a reply's
    quoted message again (it may have changed since). Not for base64 media: its identity needs its bytes."""
    media, extra = send_media.url_identity(body), send_content.identity(body)
    if key is None or (media is None and body.media_kind is not None) or (media is None and extra is None):
        return None
    rhash = outbox.request_hash(body.recipient, body.message or body.caption or "", media, extra)
    try:
        found: dict[str, Any] | None = await request.app[DATABASE].run(
            outbox.replayed, account.name, key, rhash, time.time())
    except outbox.KeyReused:
        raise key_reused() from None
    return found


def key_reused() -> Conflict:
    return Conflict("This Idempotency-Key was used with a different request within 24 hours.",
                    code="idempotency_key_reused")


async def _accept(request: web.Request, account: Account | Elsewhere, phone: str, text: str,
                  media: outbox.OutboundMedia | None, key: str | None, *, extra: outbox.OutboundExtra | None,
                  accept: Any) -> tuple[dict[str, Any], bool]:
    """The message committed to the outbox (or the one this Idempotency-Key accepted before);
    ``outbox.OutboxFull`` when there is no room."""
    settings, db, name = request.app[SETTINGS], request.app[DATABASE], account.name
    try:
        fn, limits = (accept, {}) if accept is not None else \
            (send_media.accept_within_quota, {"quota": settings.media.store.quota_bytes, "media": media})
        row, created = await db.run(
            fn, **limits, extra=extra,
            account=name, phone_number=phone, body=text, idempotency_key=key, now=time.time(),
            ttl=settings.message_ttl, max_outbox=settings.outbox_max,
            wait_reason=account.link.wait_reason() if isinstance(account, Account) else None,
        )
    except outbox.KeyReused:
        raise key_reused() from None
    if created:
        # One line per accepted message, not two: the request's own line (http.request) carries its ids.
        structlog.contextvars.bind_contextvars(message_id=row["id"], whatsapp_id=row["wa_id"])
        log.debug("message.accepted")
    return row, created


async def _refuses_sends(db: Database, account: Account | Elsewhere) -> bool:
    """Whether nothing would ever send for the account now: its link's judgement here, or, when another
    instance serves it, that instance's last word in the store."""
    if isinstance(account, Account):
        return await account.link.refuses_sends()
    return await db.run(accounts.is_linked, account.name) is False


async def _settled(db: Database, name: str, row: dict[str, Any], wait: float) -> dict[str, Any]:
    """The message once another instance's dispatcher sent it (or failed it), read from the shared store,
    or as it is after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        await asyncio.sleep(min(SETTLE_POLL, max(0.0, deadline - time.monotonic())))
        now: dict[str, Any] | None = await db.run(outbox.get, name, row["id"])
        row = now or row
        if row["status"] in DONE:
            break
    return row


async def get_message(request: web.Request) -> web.Response:
    db, name = request.app[DATABASE], account_of(request).name
    row = await db.run(outbox.get, name, request.match_info["id"])
    if row is not None:
        changes = await db.run(outbox_targets.history, name, row["id"])
        return web.json_response(_with_history(MessageOut.from_row(row), changes).public())
    received = await db.run(inbound.get, name, request.match_info["id"])
    if received is None:
        raise NotFound("No message with this id.", code="message_not_found")
    return web.json_response(inbound.public_message(received))


def _with_history(message: MessageOut, changes: dict[str, Any]) -> MessageOut:
    """Our message with what our reactions, edits and revokes did to it; an edited text shows its latest version."""
    if not changes:
        return message
    if changes.get("edits"):
        changes = {**changes, "message": changes["edits"][-1]}
    return message.model_copy(update=changes)


def _cursor(seq: int) -> str:
    return paging.encode("m1", seq)


def _seq(cursor: str) -> int:
    return paging.decode("m1", cursor)


async def list_messages(request: web.Request) -> web.Response:
    name = account_of(request).name
    query = request.query
    direction = query.get("direction", "out")
    if direction not in ("out", "in"):
        raise BadRequest("direction must be out or in.", code="invalid_direction")
    status = query.get("status")
    if status is not None and direction == "in":
        raise BadRequest("status applies to direction=out only.", code="invalid_status")
    if status is not None and status not in MESSAGE_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(MESSAGE_STATUSES)}.", code="invalid_status")
    phone = query.get("phone_number")
    if phone is not None:
        try:
            phone = phone_number(phone)
        except InvalidInput as exc:
            raise BadRequest(exc.message, code=exc.code or "invalid_phone_number") from None
    limit = paging.limit(query, MAX_LIMIT)
    before = _seq(query["cursor"]) if "cursor" in query else None
    if direction == "in":
        rows = await request.app[DATABASE].run(
            inbound.list_messages, name, phone_number=phone, limit=limit + 1, before_seq=before)
        more = len(rows) > limit
        rows = rows[:limit]
        return web.json_response({"messages": [inbound.public_message(r) for r in rows],
                                  "next_cursor": _cursor(rows[-1]["seq"]) if more else None})
    rows = await request.app[DATABASE].run(
        outbox.list_messages, name, direction=direction, status=status, phone_number=phone,
        limit=limit + 1, before_seq=before,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    changes = await request.app[DATABASE].run(outbox_targets.histories, name, [r["id"] for r in rows])
    page = MessagePage(messages=[_with_history(MessageOut.from_row(r), changes.get(r["id"], {})) for r in rows],
                       next_cursor=_cursor(rows[-1]["seq"]) if more else None)
    return web.json_response({"messages": [m.public() for m in page.messages], "next_cursor": page.next_cursor})


async def cancel(request: web.Request) -> web.Response:
    account = account_of(request)
    name = account.name
    message_id = request.match_info["id"]
    try:
        row = await request.app[DATABASE].run(outbox.cancel, name, message_id, time.time())
    except outbox.NotCancellable as exc:
        raise Conflict(f"The message is {exc.status} already; only a queued message can be cancelled.",
                       code="not_cancellable") from None
    if row is None:
        raise NotFound("No message with this id.", code="message_not_found")
    log.info("message.cancelled", message_id=message_id)
    if isinstance(account, Account):  # served elsewhere: its dispatcher finds it cancelled in the store
        account.dispatcher.changed(row)
    return web.json_response(MessageOut.from_row(row).public())
