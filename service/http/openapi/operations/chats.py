"""The documentation of chats and contacts (issue 27): ``/chats``, ``/chats/{chat}/messages``, ``/chats/{chat}/read``,
``/messages/search``, ``/contacts``, ``/contacts/{phone}``."""

from __future__ import annotations

from service.http import models
from service.http.models import chats as chat_models
from service.http.models import conversation
from service.http.openapi.spec import CURSOR, DEFAULT_NOTE, FAILED_SEND, Op, Param, limit
from service.http.route_table import Handler
from service.http.views import chats, contacts

_CHAT_400 = ("invalid_chat", "invalid_group_id")
_PAGE_400 = ("invalid_limit", "invalid_cursor")
_READ_PARAMS = (Param("wait", "query", {"type": "number", "minimum": 0},
                      "Seconds to wait for the send (default WA_SEND_WAIT, at most WA_SEND_WAIT_MAX)."),
                Param("Idempotency-Key", "header", {"type": "string", "pattern": "^[!-~]{1,255}$"},
                      "The same key within 24 h returns the original action and never sends it again."))
_QUERY = {"type": "string", "minLength": 1, "maxLength": chats.MAX_QUERY}
_LID_NOTE = ("A contact's LID and phone number are one chat: once the gateway learns the LID's phone (a message "
             "naming both, the phone's contacts, a history sync), the LID's chat is the phone's, and a path naming "
             "the LID answers the phone's chat. ")

OPERATIONS: dict[Handler, Op] = {
    chats.list_chats: Op(
        "List chats", "Chats", {200: chat_models.ChatPage}, params=(limit(chats.MAX_LIMIT, 50), CURSOR),
        errors={400: _PAGE_400},
        description="Newest activity first, each with its last message and unread count (live messages from the "
                    "contact not read yet: `POST /chats/{chat}/read` or the phone's own reading zero it; history "
                    "never counts). " + _LID_NOTE + DEFAULT_NOTE),
    chats.chat_messages: Op(
        "A chat's messages", "Chats", {200: chat_models.ChatMessagesPage},
        params=(limit(chats.MAX_LIMIT, 50), CURSOR), errors={400: (*_CHAT_400, *_PAGE_400), 404: ("chat_not_found",)},
        description="Newest first, both directions, with the messages a history sync brought (`history: true`). "
                    "`{chat}`: a phone number (`+1...` or `%2B1...`), a group's jid or a LID (`<digits>@lid`). "
                    + _LID_NOTE + DEFAULT_NOTE),
    chats.read: Op(
        "Mark a chat read", "Chats", {200: [models.MessageOut, chat_models.ChatRead], 202: models.MessageOut},
        body=conversation.NoFieldsRequest, body_optional=True, params=_READ_PARAMS, writes=True,
        headers={200: ("Location", "Idempotent-Replayed"), 202: ("Location", "Idempotent-Replayed"),
                 503: ("Retry-After",)},
        errors={400: (*_CHAT_400, "invalid_idempotency_key", "invalid_wait"),
                404: ("chat_not_found", "message_not_found"),
                409: ("not_supported_in_groups", "chat_unresolved", "not_linked", "idempotency_key_reused"),
                422: FAILED_SEND, 503: ("outbox_full",)},
        description="Read receipts for every unread message of the chat: the read action of "
                    "`POST /messages/{id}/read` on its newest unread message (answered like it); 200 "
                    "`{\"chat\", \"unread_count\": 0}` when nothing is unread. " + DEFAULT_NOTE),
    chats.search: Op(
        "Search messages", "Chats", {200: chat_models.SearchPage},
        params=(Param("q", "query", _QUERY, "Text to find in messages' text and captions (case-insensitive; on "
                      "SQLite for ASCII letters only).", required=True),
                Param("chat", "query", {"type": "string", "maxLength": 64}, "Only this chat's messages."),
                limit(chats.MAX_LIMIT, 50), CURSOR),
        errors={400: ("invalid_query", *_CHAT_400, *_PAGE_400)},
        description="Newest first, both directions and history. " + DEFAULT_NOTE),
    contacts.list_contacts: Op(
        "List contacts", "Chats", {200: chat_models.ContactPage},
        params=(Param("q", "query", _QUERY, "Part of a name, push name, phone number or LID."),
                limit(contacts.MAX_LIMIT, 50), CURSOR),
        errors={400: ("invalid_query", *_PAGE_400)},
        description="What the gateway learned of the account's contacts (their messages, the phone's contacts, "
                    "history syncs, lookups), by phone number then LID. " + DEFAULT_NOTE),
    contacts.get_contact: Op(
        "One contact, asked of WhatsApp", "Chats", {200: chat_models.Contact},
        params=(Param("picture", "query", {"type": "string", "enum": ["true", "false"], "default": "false"},
                      "Also its profile picture's URL (`picture_url`, null when none or refused)."),),
        worker=True, writes=True, errors={400: ("invalid_phone_number", "invalid_picture"),
                                          404: ("contact_not_found",)},
        description="While the account is connected the worker asks WhatsApp (on WhatsApp or not, its LID, its "
                    "picture) and the answer is kept; otherwise what is stored, or 404 `contact_not_found`. "
                    + DEFAULT_NOTE),
}
