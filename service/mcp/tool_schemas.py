"""What an agent reads about each tool: its description and its input's JSON Schema (draft 2020-12).

Written for a model that has never seen the gateway: each description says what the tool does, what it answers
and which other tool to use before or after; each property says its format with an example. The schemas are
strict (``additionalProperties: false``, bounds as the API's) so that a malformed call is refused before
anything reaches the gateway; what needs the gateway's knowledge (is this number on WhatsApp, is this message
id in this chat) is the gateway's to answer, with its error code.
"""

from __future__ import annotations

from typing import Any

PHONE = {"type": "string", "pattern": r"^\+?[0-9 ()./-]{6,32}$",
         "description": "A phone number in international format, e.g. +14155550123."}
GROUP_ID = {"type": "string", "pattern": r"^[0-9]{5,40}(-[0-9]{5,20})?@g\.us$",
            "description": "A WhatsApp group id, e.g. 120363041234567890@g.us (from list_chats or groups)."}
CHAT = {"type": "string", "minLength": 1, "maxLength": 64,
        "description": "A chat id as list_chats gives it: a contact's phone number (+14155550123), a group id "
                       "(...@g.us) or, for a contact known only by its WhatsApp LID, <digits>@lid."}
ACCOUNT = {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,30}[a-z0-9]$",
           "description": "The gateway account (a linked WhatsApp number) to act on. Leave it out: a key scoped "
                          "to one account always acts on that account; the admin key acts on `default` unless "
                          "told otherwise."}
LIMIT = {"type": "integer", "minimum": 1, "maximum": 100, "default": 20, "description": "How many to return."}
CURSOR = {"type": "string", "minLength": 1, "maxLength": 512,
          "description": "The next_cursor of the previous answer, to get the next (older) page."}
MESSAGE_ID = {"type": "string", "minLength": 1, "maxLength": 64,
              "description": "The gateway's id of a message (the `id` in read_messages or send_message answers)."}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {"account": ACCOUNT, **properties},
                              "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


LOCATION = {
    "type": "object", "additionalProperties": False, "required": ["latitude", "longitude"],
    "description": "A place to share as a map pin (instead of, not with, text).",
    "properties": {"latitude": {"type": "number", "minimum": -90, "maximum": 90},
                   "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                   "name": {"type": "string", "maxLength": 1000}, "address": {"type": "string", "maxLength": 1000}},
}
POLL = {
    "type": "object", "additionalProperties": False, "required": ["question", "options"],
    "description": "A poll (instead of text): a question and 2 to 12 distinct options.",
    "properties": {"question": {"type": "string", "minLength": 1, "maxLength": 255},
                   "options": {"type": "array", "minItems": 2, "maxItems": 12, "uniqueItems": True,
                               "items": {"type": "string", "minLength": 1, "maxLength": 100}},
                   "multiple": {"type": "boolean", "default": False,
                                "description": "Whether a voter may choose several options."}},
}

SEND = _object({
    "to": {**PHONE, "description": "The contact to write to: a phone number in international format, e.g. "
                                   "+14155550123. Give either `to` or `group_id`."},
    "group_id": {**GROUP_ID, "description": "The group to write to (instead of `to`), e.g. 120363041234567890@g.us."},
    "text": {"type": "string", "minLength": 1, "maxLength": 65536,
             "description": "The message text. Give exactly one of text, location or poll."},
    "reply_to": {**MESSAGE_ID, "description": "Quote this message of the same chat (its `id` from read_messages)."},
    "location": LOCATION,
    "poll": POLL,
    "mentions": {"type": "array", "minItems": 1, "maxItems": 1024, "items": PHONE,
                 "description": "Group messages only: the members the text @mentions, as phone numbers."},
    "idempotency_key": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$",
                        "description": "Any unique string you choose for this message. Retrying with the same key "
                                       "never sends twice: the first message is answered again."},
    "dry_run": {"type": "boolean", "default": False,
                "description": "true: validate and answer what would be sent, without sending anything."},
})

SCHEMAS: dict[str, dict[str, Any]] = {
    "status": _object({}),
    "send_message": SEND,
    "list_chats": _object({"limit": LIMIT, "cursor": CURSOR}),
    "read_messages": _object({"chat": CHAT, "limit": LIMIT, "cursor": CURSOR}, ("chat",)),
    "search_messages": _object({
        "query": {"type": "string", "minLength": 1, "maxLength": 200,
                  "description": "Words to find (case-insensitive, anywhere in a message's text or caption)."},
        "chat": {**CHAT, "description": "Search only this chat (its id from list_chats)."},
        "limit": LIMIT, "cursor": CURSOR}, ("query",)),
    "get_contact": _object({"phone_number": PHONE,
                            "picture": {"type": "boolean", "default": False,
                                        "description": "Also fetch the profile picture's URL (slower)."}},
                           ("phone_number",)),
    "mark_read": _object({"chat": {**CHAT, "description": "The contact chat whose unread messages to mark read "
                                                          "(blue ticks for the sender). Not for groups."}},
                         ("chat",)),
    "groups": _object({"group_id": {**GROUP_ID, "description": "Give it to get one group with its members; leave "
                                                               "it out to list the account's groups."}}),
    "logout": _object({}),
    "revoke_message": _object({"message_id": MESSAGE_ID}, ("message_id",)),
    "leave_group": _object({"group_id": GROUP_ID}, ("group_id",)),
}

DESCRIPTIONS = {
    "status": "The WhatsApp account's state: whether it is linked and connected (state `connected`), its phone "
              "number, and while it waits to be linked how to link it. Call it first when a tool answers "
              "not_linked or not_connected.",
    "send_message": "Send one WhatsApp message to a contact (`to`) or a group (`group_id`): text, a location or a "
                    "poll, optionally quoting a message (`reply_to`). Answers the message with its `id` and `status` "
                    "(queued, sent, delivered, read, failed). Each send uses one unit of this key's hourly send "
                    "budget; a dry run uses none and sends nothing. Give an `idempotency_key` so that a retry "
                    "after a timeout never sends twice.",
    "list_chats": "The account's chats, most recent activity first: each with its `id` (use it as `chat` in "
                  "read_messages, search_messages, mark_read), its name, its last message and its unread count.",
    "read_messages": "A chat's messages, newest first, both directions (`direction` in = from the contact, out = "
                     "ours), with sender, text, time and status. Page back with `cursor` = the answer's "
                     "next_cursor. Reading does not mark anything read: use mark_read for that.",
    "search_messages": "Find messages whose text contains `query` (case-insensitive), in every chat or in one "
                       "(`chat`), newest first. Each call reads a bounded stretch of the history: an answer may "
                       "hold few or no matches and still a next_cursor; call again with `cursor` = next_cursor "
                       "until it is null to search everything.",
    "get_contact": "What the account knows about a phone number: whether it is on WhatsApp, its push name and "
                   "saved name, its WhatsApp LID, when it last wrote, and with picture=true its profile picture URL.",
    "mark_read": "Mark a contact chat's unread messages as read (the sender sees blue ticks). Answers the "
                 "unread count left (0).",
    "groups": "Without group_id: the groups the account is in (id, subject, size). With group_id: that group, "
              "with its members and admins.",
    "logout": "DESTRUCTIVE: log the account out of WhatsApp. It stops sending and receiving until a person links "
              "it again by scanning a QR code.",
    "revoke_message": "DESTRUCTIVE: delete one of our sent messages for everyone (WhatsApp allows it for about 2.5 "
                      "days after sending).",
    "leave_group": "DESTRUCTIVE: leave a group. The account gets no more of its messages until someone adds it back.",
}
