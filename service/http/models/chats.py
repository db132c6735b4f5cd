"""Chats and contacts (issue 27): ``GET /chats``, ``GET /chats/{chat}/messages``, ``GET /messages/search``,
``GET /contacts`` as the API shows them. One message shape for both directions and the history (``ChatMessage``),
built from what store/chat_reads.py fills in."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.http.models.base import iso
from service.http.models.messages import MessageOut
from service.store import inbound_media


class ChatPerson(BaseModel):
    """Who sent a contact's message (in a group: the participant)."""

    phone_number: str | None
    lid: str | None
    push_name: str | None


class ReplyRef(BaseModel):
    """The message a reply quotes: ours by ``id`` when we know it, WhatsApp's ``wa_id``."""

    id: str | None
    wa_id: str | None


class ReactionOut(BaseModel):
    """A standing reaction: ``from`` is ``me`` (the account) or the contact (its phone number, or its LID)."""

    from_: str = Field(alias="from")
    emoji: str


class ChatMessage(BaseModel):
    """One message of a chat, ours or a contact's, live or from the phone's history (``history``: true; a history
    message never was a ``message.received`` and never counted as unread)."""

    id: str
    wa_id: str | None
    chat: str
    direction: Literal["in", "out"]
    from_: ChatPerson | None = Field(alias="from")  # a contact's message's sender; null for ours
    kind: str  # text, image, video, audio, document, sticker, location, contacts, poll, unknown, ...
    text: str | None  # the text, or a media's caption
    content: dict[str, Any] | None  # a location, contact cards or a poll
    media: dict[str, Any] | None  # as GET /messages/{id} shows it (its bytes at media.url); null for history
    reply_to: ReplyRef | None
    status: str | None  # ours: the outbox status; a contact's: received, or read once read
    reactions: list[ReactionOut]
    edited: bool
    revoked: bool
    sent_at: str
    history: bool


def _out(row: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    shown = MessageOut.from_row(row)
    stored = json.loads(row["content"]) if row.get("content") else {}
    quoted = stored.get("worker", {}).get("quoted") or {}
    edits = ours.get("edits")
    return {"wa_id": row["wa_id"], "from": None, "kind": shown.type,
            "text": edits[-1] if edits else (row["body"] or None), "content": shown.content,
            "media": shown.media.model_dump() if shown.media else None,
            "reply_to": {"id": row["reply_to"], "wa_id": quoted.get("id")} if row.get("reply_to") else None,
            "status": row["status"], "edited": bool(edits), "revoked": bool(ours.get("revoked"))}


def _in(row: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    return {"wa_id": row["wa_id"], "from": {"phone_number": row["phone_number"], "lid": row["lid"],
                                            "push_name": row["push_name"]},
            "kind": row["kind"], "text": row["body"], "content": json.loads(row["content"]) if row["content"] else None,
            "media": inbound_media.public(row["media"]) if row.get("media") else None,
            "reply_to": {"id": row["quoted_id"], "wa_id": row["quoted_wa_id"]} if row.get("quoted_wa_id") else None,
            "status": "read" if row["read_at"] is not None else "received", "edited": bool(row["edits"]),
            "revoked": row["revoked_at"] is not None}


def _history(row: dict[str, Any]) -> dict[str, Any]:
    person = None if row["direction"] == "out" else {"phone_number": row["phone_number"], "lid": row["lid"],
                                                      "push_name": row["push_name"]}
    return {"wa_id": row["wa_id"], "from": person, "kind": row["kind"], "text": row["body"],
            "content": json.loads(row["content"]) if row["content"] else None, "media": None, "reply_to": None,
            "status": row["status"] or ("received" if row["direction"] == "in" else None), "edited": False,
            "revoked": False}


def chat_message(item: dict[str, Any]) -> dict[str, Any]:
    """A filled index row (store/chat_reads.fill) as the API shows it."""
    index, row, ours, source = item["index"], item["row"], item["ours"], item["source"]
    shown = _out(row, ours) if source == "out" else _in(row, ours) if source == "in" else _history(row)
    reactions = [{"from": "me", "emoji": ours["reaction"]}] if ours.get("reaction") else []
    if index.get("reactions"):
        reactions += [{"from": who, "emoji": emoji} for who, emoji in json.loads(index["reactions"]).items()]
    direction = {"out": "out", "in": "in"}.get(source) or row["direction"]
    return {"id": row["id"], "wa_id": shown.pop("wa_id"), "chat": index["chat"], "direction": direction, **shown,
            "reactions": reactions, "sent_at": iso(index["at"]), "history": source == "history"}


class Chat(BaseModel):
    """A chat: a contact's (``id`` its phone number, or its LID while no phone is known) or a group's (its jid).
    ``name``: the group's subject, else the contact's name as the phone knows it, else its push name."""

    id: str
    kind: Literal["contact", "group"]
    name: str | None
    phone_number: str | None
    lid: str | None
    last_message: ChatMessage | None
    last_activity_at: str
    unread_count: int


def chat(row: dict[str, Any]) -> dict[str, Any]:
    """A chat row with its profile and last message (store/chat_reads.with_details) as the API shows it."""
    profile = row.get("profile") or {}
    name = row["name"] if row["kind"] == "group" else (profile.get("name") or profile.get("push_name"))
    return {"id": row["id"], "kind": row["kind"], "name": name,
            "phone_number": row["id"] if row["id"].startswith("+") else None,
            "lid": row["lid"] or profile.get("lid"),
            "last_message": chat_message(row["last"]) if row.get("last") else None,
            "last_activity_at": iso(row["last_activity_at"]), "unread_count": row["unread_count"]}


class ChatPage(BaseModel):
    """``GET /chats``: newest activity first; pass ``next_cursor`` back as ``cursor``."""

    chats: list[Chat]
    next_cursor: str | None


class ChatMessagesPage(BaseModel):
    """``GET /chats/{chat}/messages``: the chat, and its messages newest first."""

    chat: Chat
    messages: list[ChatMessage]
    next_cursor: str | None


class SearchPage(BaseModel):
    """``GET /messages/search``: matching messages, newest first."""

    messages: list[ChatMessage]
    next_cursor: str | None


class ChatRead(BaseModel):
    """``POST /chats/{chat}/read`` when nothing was unread."""

    chat: str
    unread_count: int


class Contact(BaseModel):
    """What the account knows of a contact. ``on_whatsapp``/``checked_at``: from the last live lookup (null: never
    asked). ``picture_url`` only with ``?picture=true`` (null: none, or its owner's privacy refuses it)."""

    phone_number: str | None
    lid: str | None
    push_name: str | None
    name: str | None
    on_whatsapp: bool | None
    checked_at: str | None
    last_message_at: str | None
    picture_url: str | None = None


def contact(row: dict[str, Any]) -> dict[str, Any]:
    on = row["on_whatsapp"]
    return {"phone_number": row["phone_number"], "lid": row["lid"], "push_name": row["push_name"],
            "name": row["name"], "on_whatsapp": None if on is None else bool(on), "checked_at": iso(row["checked_at"]),
            "last_message_at": iso(row["last_message_at"])}


class ContactPage(BaseModel):
    """``GET /contacts``: by phone number (then LIDs); pass ``next_cursor`` back as ``cursor``."""

    contacts: list[Contact]
    next_cursor: str | None
