"""Actions on a message and on a chat (issue 25): ``POST /messages/{id}/reaction``, ``/edit``, ``/revoke``,
``/read`` and ``POST /chats/{phone}/presence``.

Each is a row of the outbox like a send (durable before the answer, an Idempotency-Key makes a retry safe, sent in
order with the chat's messages), answered like a send with its own id. WhatsApp's rules are checked here, before
anything is stored: only our own message is edited or revoked, an edit within WA_EDIT_WINDOW_SECONDS of its sending,
a revoke within WA_REVOKE_WINDOW_SECONDS; only a contact's message is read; nothing acts on a message that failed.
The worker re-sends a stored action with its first content after a crash, so an edit never goes out twice different.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from aiohttp import web

from service.errors import ApiError, Conflict, NotFound
from service.http.appkeys import DATABASE, SETTINGS
from service.http.models import parse
from service.http.models.conversation import EditRequest, NoFieldsRequest, PresenceRequest, ReactionRequest
from service.http.validation import InvalidInput, json_object, phone_number
from service.http.views import messages
from service.http.views.context import account_of
from service.runtime.accounts import Account, Elsewhere
from service.store import outbox, outbox_targets
from service.store.outbox_targets import Target

PRESENCE_TTL = 60.0  # seconds: a typing indicator that could not go within a minute is worthless, it expires
SENT = ("sent", "delivered", "read")


# Each handler names the account first: an unknown one is 404 account_not_found whatever the body.

async def react(request: web.Request) -> web.Response:
    account = account_of(request)
    body = parse(ReactionRequest, await _body(request))
    return await act(request, account, "reaction", {"emoji": body.emoji})


async def edit(request: web.Request) -> web.Response:
    account = account_of(request)
    body = parse(EditRequest, await _body(request), max_message_chars=request.app[SETTINGS].max_message_chars)
    return await act(request, account, "edit", {"message": body.message})


async def revoke(request: web.Request) -> web.Response:
    account = account_of(request)
    await empty_body(request)
    return await act(request, account, "revoke", {})


async def read(request: web.Request) -> web.Response:
    account = account_of(request)
    await empty_body(request)
    return await act(request, account, "read", {})


async def presence(request: web.Request) -> web.Response:
    """``POST /chats/{phone}/presence``: typing, recording, paused, online or offline, as the contact sees us."""
    account = account_of(request)
    try:
        phone = phone_number(request.match_info["phone"])
    except InvalidInput as exc:
        raise ApiError(exc.message, code="invalid_phone_number", status=400) from None
    body = parse(PresenceRequest, await _body(request))
    key, wait = messages.idempotency(request), messages.wait_of(request)
    await messages.linked(request, account, key)
    content = {"worker": {"presence": {"state": body.state}}, "public": {"state": body.state}}
    extra = outbox.OutboundExtra(action="presence", content=json.dumps(content),
                                 identity=json.dumps({"presence": body.state}), ttl=PRESENCE_TTL)
    return await messages.deliver(request, account, phone, "", key, wait, extra=extra)


async def _body(request: web.Request) -> dict[str, Any]:
    return await json_object(request, max_bytes=request.app[SETTINGS].max_body_bytes)


async def empty_body(request: web.Request) -> None:
    """Revoke and read (and POST /chats/{chat}/read) take no fields: no body, or ``{}``."""
    parse(NoFieldsRequest, await json_object(request, allow_empty=True,
                                             max_bytes=request.app[SETTINGS].max_body_bytes))


async def act(request: web.Request, account: Account | Elsewhere, action: str, public: dict[str, Any], *,
              message_id: str | None = None) -> web.Response:
    """The action ``action`` on the message of the path (or ``message_id``: views/chats.py reads a chat up to its
    newest unread message): found (404), replayed for a known Idempotency-Key, checked against WhatsApp's rules
    (409), then accepted like a send."""
    db, settings = request.app[DATABASE], request.app[SETTINGS]
    key, wait = messages.idempotency(request), messages.wait_of(request)
    message_id = message_id or request.match_info["id"]
    target = await db.run(outbox_targets.find, account.name, message_id)
    if target is None:
        raise NotFound("No message with this id.", code="message_not_found")
    phone = target.chat
    if not phone:
        raise Conflict("The contact of this message is known only by its LID: its chat cannot be addressed yet.",
                       code="chat_unresolved")
    identity = json.dumps({"action": action, "target": message_id, **public}, sort_keys=True, ensure_ascii=False)
    text = public.get("message", "")
    if key is not None:
        original = await _replay(request, account.name, key, phone, text, identity)
        if original is not None:
            return messages.answer(original, replayed=True)
    await messages.linked(request, account, key)
    revoked = target.direction == "out" and await db.run(outbox_targets.revoked, account.name, message_id)
    _check(action, target, revoked=revoked, now=time.time(), edit_window=settings.edit_window,
           revoke_window=settings.revoke_window)
    extra = outbox.OutboundExtra(action=action, content=json.dumps({"worker": _worker(action, target, public),
                                                                    "public": public}),
                                 identity=identity, target_id=message_id)
    accept = None
    if action == "read":
        accept = functools.partial(outbox_targets.accept_read, chat_phone=phone, upto_seq=target.row["seq"],
                                   upto_wa_id=target.row["wa_id"])
    return await messages.deliver(request, account, phone, text, key, wait, extra=extra, accept=accept)


async def _replay(request: web.Request, account: str, key: str, phone: str, text: str,
                  identity: str) -> dict[str, Any] | None:
    rhash = outbox.request_hash(phone, text, None, identity)
    try:
        found: dict[str, Any] | None = await request.app[DATABASE].run(
            outbox.replayed, account, key, rhash, time.time())
    except outbox.KeyReused:
        raise messages.key_reused() from None
    return found


def _worker(action: str, target: Target, public: dict[str, Any]) -> dict[str, Any]:
    """The worker's fields of the action (``read``'s ids are taken in the accepting transaction)."""
    wa_id, from_me = target.row["wa_id"], target.direction == "out"
    if action == "reaction":
        key: dict[str, Any] = {"id": wa_id, "from_me": from_me}
        if not from_me and target.row.get("group_id"):
            key["participant"] = target.row["chat_jid"]  # a group's message is named with who sent it
        return {"reaction": {"key": key, "emoji": public["emoji"]}}
    if action == "edit":
        return {"edit": {"key": {"id": wa_id}, "text": public["message"]}}
    if action == "revoke":
        return {"revoke": {"key": {"id": wa_id, "from_me": True}}}
    return {"read": {"ids": [wa_id]}}


def _check(action: str, target: Target, *, revoked: bool, now: float, edit_window: float,
           revoke_window: float) -> None:
    """WhatsApp's rules for ``action`` on ``target``: a 409 with its own code for each refusal."""
    row, ours = target.row, target.direction == "out"
    if ours and row["status"] == "failed":
        raise Conflict("This message failed: it never reached the contact.", code="message_failed")
    if action == "read":
        if ours:
            raise Conflict("Only a contact's message is marked read; this one is ours.", code="not_inbound")
        if row.get("group_id"):
            raise Conflict("Marking a group's messages read is not supported yet.", code="not_supported_in_groups")
        return
    if not target.is_message:
        raise Conflict("This is an action on a message (a reaction, an edit, ...), not a message.",
                       code="not_a_message")
    if revoked or (not ours and row.get("revoked_at")):
        raise Conflict("This message was deleted for everyone.", code="message_revoked")
    if action == "reaction":
        return
    if not ours:
        raise Conflict("Only our own message can be edited or deleted for everyone.", code="not_own_message")
    if action == "edit" and (row.get("action") or row.get("media_kind")):
        raise Conflict("Only a text message can be edited.", code="not_editable")
    if row["status"] not in SENT or row["sent_at"] is None:
        raise Conflict("This message has not been sent yet: cancel it (DELETE /messages/{id}) instead.",
                       code="not_sent")
    window, code = ((edit_window, "edit_window_expired") if action == "edit"
                    else (revoke_window, "revoke_window_expired"))
    if now - row["sent_at"] > window:
        raise Conflict(f"WhatsApp allows this only within {window:g} seconds of sending the message.", code=code)
