"""Chats and contacts (issue 27): an account's conversations as an inbox shows them, a chat's history both ways, search,
and what the account knows of a contact. Mixed into :class:`AsyncAccount` (and so into the blocking ``Account``).

    for chat in (await wa.chats()).chats:                        # newest activity first
        print(chat.id, chat.name, chat.unread_count)
    async for message in wa.iter_chat_messages("+14155550123"):  # newest first, history included
        print(message.direction, message.text)
    await wa.read_chat("+14155550123")                          # read receipts for everything unread
    who = await wa.contact("+14155550123", picture=True)         # asks WhatsApp when the account is connected

Why it is shaped like this:
- A chat's id is what the gateway names it: a phone number, a group's jid, or a LID while no phone is known. A LID
  whose phone the gateway learned answers the phone's chat (``page.chat.id`` says which), so ids kept from before
  still work.
- Pages are cursors (``next_cursor``), never offsets: a page stays right while new messages arrive.
- Reading a chat is a message of the outbox like any other (it sends read receipts): :meth:`read_chat` answers the
  accepted read, or ``None`` when nothing was unread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import Field

from .models import Message, _Model

if TYPE_CHECKING:
    from .client import AsyncClient


class ChatPerson(_Model):
    phone_number: str | None = None
    lid: str | None = None
    push_name: str | None = None


class ReplyRef(_Model):
    id: str | None = None  # ours, when the gateway knows the quoted message
    wa_id: str | None = None


class Reaction(_Model):
    sender: str = Field(alias="from")  # "me" (the account) or the contact's phone number (or LID)
    emoji: str


class ChatMessage(_Model):
    """One message of a chat, ours (``direction`` out) or a contact's (in), live or from the phone's history."""

    id: str
    wa_id: str | None = None
    chat: str
    direction: Literal["in", "out"]
    sender: ChatPerson | None = Field(default=None, alias="from")  # a contact's message: who (in a group too)
    kind: str = "text"
    text: str | None = None
    content: dict[str, Any] | None = None
    media: dict[str, Any] | None = None
    reply_to: ReplyRef | None = None
    status: str | None = None  # ours: the outbox status; a contact's: received or read
    reactions: list[Reaction] = Field(default_factory=list)
    edited: bool = False
    revoked: bool = False
    sent_at: str | None = None
    history: bool = False


class Chat(_Model):
    id: str
    kind: Literal["contact", "group"] = "contact"
    name: str | None = None
    phone_number: str | None = None
    lid: str | None = None
    last_message: ChatMessage | None = None
    last_activity_at: str | None = None
    unread_count: int = 0


class ChatPage(_Model):
    chats: list[Chat]
    next_cursor: str | None = None


class ChatMessagesPage(_Model):
    chat: Chat
    messages: list[ChatMessage]
    next_cursor: str | None = None


class SearchPage(_Model):
    messages: list[ChatMessage]
    next_cursor: str | None = None


class Contact(_Model):
    phone_number: str | None = None
    lid: str | None = None
    push_name: str | None = None
    name: str | None = None
    on_whatsapp: bool | None = None  # None: never asked
    checked_at: str | None = None
    last_message_at: str | None = None
    picture_url: str | None = None  # only when asked for (picture=True)


class ContactPage(_Model):
    contacts: list[Contact]
    next_cursor: str | None = None


def _params(**values: Any) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items() if v is not None}


class ChatMethods:
    """The chats and contacts endpoints of one account; needs its ``_client`` and ``_p`` (the prefix)."""

    _client: AsyncClient

    def _p(self, path: str) -> str:
        raise NotImplementedError

    async def _chat_get(self, path: str, **params: Any) -> Any:
        return await self._client.request("GET", self._p(path), params=_params(**params))

    async def chats(self, *, limit: int | None = None, cursor: str | None = None) -> ChatPage:
        """One page of the account's chats, newest activity first."""
        return ChatPage.model_validate(await self._chat_get("/chats", limit=limit, cursor=cursor))

    async def chat_messages(self, chat: str, *, limit: int | None = None,
                            cursor: str | None = None) -> ChatMessagesPage:
        """One page of a chat's messages, newest first, both directions and the phone's history;
        :class:`errors.ChatNotFound` when the account has none with it."""
        data = await self._chat_get(f"/chats/{quote(chat, safe='')}/messages", limit=limit, cursor=cursor)
        return ChatMessagesPage.model_validate(data)

    async def iter_chat_messages(self, chat: str, *, page_size: int | None = None) -> AsyncIterator[ChatMessage]:
        """Every message of a chat, newest first, page after page."""
        cursor = None
        while True:
            page = await self.chat_messages(chat, limit=page_size, cursor=cursor)
            for message in page.messages:
                yield message
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def read_chat(self, chat: str) -> Message | None:
        """Read receipts for every unread message of a contact's chat: the accepted read (an outbox message), or
        ``None`` when nothing was unread. Groups: :class:`errors.NotSupportedInGroups`."""
        data = await self._client.request("POST", self._p(f"/chats/{quote(chat, safe='')}/read"), json={})
        return Message.model_validate(data) if "id" in data else None

    async def search_messages(self, q: str, *, chat: str | None = None, limit: int | None = None,
                              cursor: str | None = None) -> SearchPage:
        """Messages whose text or caption contains ``q`` (case-insensitive), newest first, in one chat or all."""
        return SearchPage.model_validate(await self._chat_get("/messages/search", q=q, chat=chat, limit=limit,
                                                         cursor=cursor))

    async def contacts(self, *, q: str | None = None, limit: int | None = None,
                       cursor: str | None = None) -> ContactPage:
        """The contacts the account knows (who wrote, the phone's address book, push names), by phone number."""
        return ContactPage.model_validate(await self._chat_get("/contacts", q=q, limit=limit, cursor=cursor))

    async def contact(self, phone_number: str, *, picture: bool = False) -> Contact:
        """What the account knows of a number; asks WhatsApp (on WhatsApp? its LID, its picture with
        ``picture=True``) when the account is connected. :class:`errors.ContactNotFound` when nothing is known and the
        account cannot ask."""
        path = f"/contacts/{quote(phone_number, safe='')}"
        return Contact.model_validate(await self._chat_get(path, picture=True if picture else None))
