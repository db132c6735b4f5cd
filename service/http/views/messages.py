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
from service.http.views import paging, send_media
from service.http.views.context import account_of
from service.runtime.accounts import Account, Elsewhere
from service.states import DONE, FAILURE_MESSAGES, MESSAGE_STATUSES
from service.store import accounts, inbound, outbox
from service.store.db import Database

log = structlog.get_logger("gateway.messages")

MAX_LIMIT = 200
RETRY_AFTER = 5  # seconds, on 503 outbox_full
SETTLE_POLL = 0.05  # seconds between reads of a message another instance is sending


def _key(request: web.Request) -> str | None:
    if "Idempotency-Key" not in request.headers:
        return None
    try:
        return idempotency_key(request.headers["Idempotency-Key"])
    except InvalidInput as exc:
        raise BadRequest(exc.message, code="invalid_idempotency_key") from None


def _wait(request: web.Request) -> float:
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


def _answer(row: dict[str, Any], *, replayed: bool) -> web.Response:
    message = MessageOut.from_row(row, with_body=False)
    if row["status"] == "failed":
        raise ApiError(FAILURE_MESSAGES.get(row["reason"], "The message could not be sent."),
                       code=row["reason"] or "failed", status=422, details={"id": row["id"]})
    headers = {"Location": f"/messages/{row['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    status = 200 if row["status"] in DONE else 202
    return web.json_response(message.public(), status=status, headers=headers)


async def send(request: web.Request) -> web.Response:
    """parse -> (store the media) -> accept (durable) -> wait: the dispatcher of the account sends it, here or
    on its owner. Text or media as JSON, or media as a multipart form (views/send_media.py)."""
    settings = request.app[SETTINGS]
    key = _key(request)
    account = account_of(request)
    media: outbox.OutboundMedia | None
    if request.content_type == "multipart/form-data":
        wait = _wait(request)
        await _linked(request, account, key)
        form = await send_media.from_form(request)
        phone, text, media = form.phone_number, form.caption, form.media
    else:
        body = parse(SendRequest, await json_object(request, max_bytes=settings.media.send_max_body_bytes),
                     max_message_chars=settings.max_message_chars)
        wait = _wait(request)
        await _linked(request, account, key)
        phone, text = body.phone_number, body.message or body.caption or ""
        original = await _replayed(request, account, key, body)
        if original is not None:
            return _answer(original, replayed=True)
        media = await send_media.from_json(request, body)
    try:
        row, created = await _accept(request, account, phone, text, media, key)
    except outbox.OutboxFull:
        log.warning("outbox.full", limit=settings.outbox_max)
        return error_response(503, "outbox_full", "The outbox is full (WA_OUTBOX_MAX); retry later.",
                              headers={"Retry-After": str(RETRY_AFTER)})
    if isinstance(account, Account):
        row = await account.dispatcher.settle(row, wait, new=created)
    elif row["status"] not in DONE and wait > 0:  # the owner's dispatcher sends it (woken through the store)
        row = await _settled(request.app[DATABASE], account.name, row, wait)
    return _answer(row, replayed=not created)


async def _linked(request: web.Request, account: Account | Elsewhere, key: str | None) -> None:
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
    """The message a retry of a media-by-URL send accepted already: answered without fetching the URL again."""
    identity = send_media.url_identity(body)
    if key is None or identity is None:
        return None
    rhash = outbox.request_hash(body.phone_number, body.caption or "", identity)
    try:
        found: dict[str, Any] | None = await request.app[DATABASE].run(
            outbox.replayed, account.name, key, rhash, time.time())
    except outbox.KeyReused:
        raise _key_reused() from None
    return found


def _key_reused() -> Conflict:
    return Conflict("This Idempotency-Key was used with a different request within 24 hours.",
                    code="idempotency_key_reused")


async def _accept(request: web.Request, account: Account | Elsewhere, phone: str, text: str,
                  media: outbox.OutboundMedia | None, key: str | None) -> tuple[dict[str, Any], bool]:
    """The message committed to the outbox (or the one this Idempotency-Key accepted before);
    ``outbox.OutboxFull`` when there is no room."""
    settings, db, name = request.app[SETTINGS], request.app[DATABASE], account.name
    try:
        row, created = await db.run(
            send_media.accept_within_quota, quota=settings.media.store.quota_bytes, media=media,
            account=name, phone_number=phone, body=text, idempotency_key=key, now=time.time(),
            ttl=settings.message_ttl, max_outbox=settings.outbox_max,
            wait_reason=account.link.wait_reason() if isinstance(account, Account) else None,
        )
    except outbox.KeyReused:
        raise _key_reused() from None
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
        return web.json_response(MessageOut.from_row(row).public())
    received = await db.run(inbound.get, name, request.match_info["id"])
    if received is None:
        raise NotFound("No message with this id.", code="message_not_found")
    return web.json_response(inbound.public_message(received))


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
    page = MessagePage(messages=[MessageOut.from_row(r) for r in rows],
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
