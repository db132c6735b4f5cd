"""An account's chats (issue 27): ``GET /chats``, ``GET /chats/{chat}/messages``, ``POST /chats/{chat}/read``,
``GET /messages/search``. Read from the store alone (store/chat_reads.py): they answer the same whether the account
is connected or not, here or on another instance.

A chat in the path is a phone number (``+1...``, or ``%2B1...``), a group's jid or a LID (``<digits>@lid``). A LID
whose phone the gateway has learned IS the phone's chat: ``/chats/<lid>@lid/messages`` answers the phone's chat
(its ``chat.id`` says so), so that a link kept from before the merge still works.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from service.errors import BadRequest, Conflict, NotFound
from service.http.appkeys import DATABASE
from service.http.models import chats as shown
from service.http.validation import InvalidInput, group_id, phone_number
from service.http.views import message_actions, paging
from service.http.views.context import account_of
from service.store import chat_index, chat_reads, contact_profiles

MAX_LIMIT = 200
MAX_QUERY = 200
LID = re.compile(r"[0-9]{1,40}@lid")
T = TypeVar("T")


def chat_id(raw: str) -> str:
    """The path's chat, normalized: 400 ``invalid_group_id`` for a malformed group, ``invalid_chat`` otherwise."""
    if raw.endswith("@g.us"):
        try:
            return group_id(raw)
        except InvalidInput as exc:
            raise BadRequest(exc.message, code="invalid_group_id") from None
    if LID.fullmatch(raw):
        return raw
    try:
        return phone_number(raw)
    except InvalidInput:
        raise BadRequest("chat must be a phone number like +1234567890, a group id like 120363012345678901@g.us, or "
                         "a LID like 123456789012345@lid.", code="invalid_chat") from None


def encode_cursor(prefix: str, at: float, tail: str | int) -> str:
    """A page's position: the last row's time (exact: ``repr`` of the float) and its tie-breaker."""
    return base64.urlsafe_b64encode(f"{prefix}:{at!r}:{tail}".encode()).decode().rstrip("=")


def decode_cursor(prefix: str, cursor: str, tail: Callable[[str], T]) -> tuple[float, T]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, at, rest = text.split(":", 2)
        value = float(at)
        if found != prefix or not math.isfinite(value) or not rest:
            raise ValueError
        return value, tail(rest)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor must be a next_cursor from an earlier page.", code="invalid_cursor") from None


def _seq(text: str) -> int:
    if not text.isdigit() or len(text) > 19:
        raise ValueError(text)
    return int(text)


def _messages_page(rows: list[dict[str, Any]], limit: int, prefix: str) -> tuple[list[dict[str, Any]], str | None]:
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1]["index"] if more else None
    return [shown.chat_message(r) for r in rows], encode_cursor(prefix, last["at"], last["seq"]) if last else None


async def list_chats(request: web.Request) -> web.Response:
    name = account_of(request).name
    limit = paging.limit(request.query, MAX_LIMIT)
    before = decode_cursor("c1", request.query["cursor"], str) if "cursor" in request.query else None
    rows = await request.app[DATABASE].run(chat_reads.list_chats, name, limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor("c1", rows[-1]["last_activity_at"], rows[-1]["id"]) if more else None
    return web.json_response({"chats": [shown.chat(r) for r in rows], "next_cursor": cursor})


def _chat(conn: Any, account: str, raw: str) -> dict[str, Any] | None:
    """The chat ``raw`` names (a LID's phone chat once merged), with its details; None when there is none."""
    row = chat_index.get(conn, account, chat_index.resolve(conn, account, raw))
    return None if row is None else chat_reads.with_details(conn, account, [row])[0]


async def chat_messages(request: web.Request) -> web.Response:
    name = account_of(request).name
    raw = chat_id(request.match_info["chat"])
    limit = paging.limit(request.query, MAX_LIMIT)
    before = decode_cursor("h1", request.query["cursor"], _seq) if "cursor" in request.query else None
    db = request.app[DATABASE]
    row = await db.run(_chat, name, raw)
    if row is None:
        raise NotFound("No chat with this contact or group.", code="chat_not_found")
    rows = await db.run(chat_reads.chat_messages, name, row["id"], limit=limit + 1, before=before)
    messages, cursor = _messages_page(rows, limit, "h1")
    return web.json_response({"chat": shown.chat(row), "messages": messages, "next_cursor": cursor})


async def read(request: web.Request) -> web.Response:
    """Reads the chat up to its newest unread message: the read action of ``POST /messages/{id}/read`` on it (202,
    or 200 once sent); 200 ``{"chat", "unread_count": 0}`` when nothing is unread."""
    account = account_of(request)
    raw = chat_id(request.match_info["chat"])
    await message_actions.empty_body(request)
    db = request.app[DATABASE]
    row = await db.run(_chat, account.name, raw)
    if row is None:
        raise NotFound("No chat with this contact or group.", code="chat_not_found")
    if row["kind"] == "group":
        raise Conflict("Marking a group's messages read is not supported yet.", code="not_supported_in_groups")
    newest = await db.run(chat_index.newest_unread, account.name, row["id"])
    if newest is None:
        return web.json_response({"chat": row["id"], "unread_count": 0})
    if not row["id"].startswith("+"):
        raise Conflict("The contact of this chat is known only by its LID: its chat cannot be addressed yet.",
                       code="chat_unresolved")
    return await message_actions.act(request, account, "read", {}, message_id=newest["id"])


async def search(request: web.Request) -> web.Response:
    name = account_of(request).name
    q = request.query.get("q", "")
    if not 1 <= len(q) <= MAX_QUERY or not q.strip() or "\x00" in q:
        raise BadRequest(f"q must be 1 to {MAX_QUERY} characters of the text to find.", code="invalid_query")
    chat = chat_id(request.query["chat"]) if "chat" in request.query else None
    limit = paging.limit(request.query, MAX_LIMIT)
    before = decode_cursor("s1", request.query["cursor"], _seq) if "cursor" in request.query else None
    db = request.app[DATABASE]
    if chat is not None:
        chat = await db.run(chat_index.resolve, name, chat)
    rows, go_on = await db.run(chat_reads.search, name, contact_profiles.like(q), chat=chat, limit=limit + 1,
                               before=before, window=chat_reads.SEARCH_WINDOW)
    messages, cursor = _messages_page(rows, limit, "s1")
    if cursor is None and go_on is not None:  # the request read its window of messages: the next one goes on
        cursor = encode_cursor("s1", go_on[0], go_on[1])
    return web.json_response({"messages": messages, "next_cursor": cursor})
