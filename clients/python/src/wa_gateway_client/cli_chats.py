"""The CLI's chats and contacts (issue 27): ``chats`` lists the account's chats, newest activity first; ``chats show
CHAT`` its newest messages (both directions, the phone's history marked), ``chats read CHAT`` sends the read receipts
for what is unread, ``chats search TEXT [--chat CHAT]`` finds messages; ``contacts`` lists the contacts the account
knows, ``contacts PHONE [--picture]`` shows one (asking WhatsApp when the account is connected).

Why two commands: a chat and a contact are two resources of the API (a group is a chat and no contact), and each
command alone answers the first question (which chats, which contacts). Message texts are printed as they are: a
terminal shows them as text, and ``--json`` gives them whole.
"""

from __future__ import annotations

import argparse
from typing import Any

from .chats import ChatMessage
from .client import AsyncClient

CHAT_ACTIONS = ("list", "show", "read", "search")


def add_commands(command: Any) -> None:
    p: argparse.ArgumentParser = command(
        "chats", cmd_chats, "list the account's chats (newest first), show a chat's messages, read it, or search")
    p.add_argument("action", nargs="?", choices=CHAT_ACTIONS, default="list")
    p.add_argument("value", nargs="?", metavar="ARG", help="show/read: the chat (+PHONE, GROUP@g.us or LID@lid); "
                                                         "search: the text")
    p.add_argument("--chat", help="search: only in this chat")
    p.add_argument("--limit", type=int, default=20)
    p = command("contacts", cmd_contacts, "list the contacts the account knows, or show one (asks WhatsApp)")
    p.add_argument("phone_number", nargs="?", help="the contact to show")
    p.add_argument("--picture", action="store_true", help="also its profile picture's URL")
    p.add_argument("--limit", type=int, default=50)


def _line(m: ChatMessage) -> list[Any]:
    who = "me" if m.direction == "out" else (m.sender.push_name or m.sender.phone_number or m.sender.lid
                                              if m.sender else "")
    marks = ",".join(k for k, on in (("history", m.history), ("edited", m.edited), ("deleted", m.revoked)) if on)
    text = m.text if m.text is not None else f"[{m.kind}]"
    return [m.sent_at, who, m.status or "", marks, text.replace("\n", " ")]


def _messages(out: Any, messages: list[ChatMessage], empty: str) -> None:
    from .cli import _table

    rows = [_line(m) for m in reversed(messages)]  # oldest at the top, as a chat reads
    out.data(messages, _table(rows, ["SENT", "FROM", "STATUS", "MARKS", "TEXT"]) if rows else empty)


async def cmd_chats(wa: AsyncClient, args: argparse.Namespace, out: Any) -> int:
    from .cli import OK, USAGE, Done, _table

    account, action = wa.account(args.account), args.action
    if action == "list":
        chats = (await account.chats(limit=args.limit)).chats
        rows = [[c.id, c.kind, c.unread_count, c.last_activity_at, c.name or ""] for c in chats]
        out.data(chats, _table(rows, ["CHAT", "KIND", "UNREAD", "LAST", "NAME"]) if rows else "no chats")
        return OK
    if not args.value:
        raise Done(USAGE, f"chats {action} takes {'TEXT' if action == 'search' else 'CHAT'}")
    if action == "show":
        page = await account.chat_messages(args.value, limit=args.limit)
        _messages(out, page.messages, f"no messages with {page.chat.id}")
    elif action == "search":
        found = await account.search_messages(args.value, chat=args.chat, limit=args.limit)
        _messages(out, found.messages, "no message matches")
    else:  # read
        read = await account.read_chat(args.value)
        out.data(read or {"chat": args.value, "unread_count": 0},
                 f"read {args.value} ({read.id})" if read else f"nothing unread in {args.value}")
    return OK


async def cmd_contacts(wa: AsyncClient, args: argparse.Namespace, out: Any) -> int:
    from .cli import OK, _table

    account = wa.account(args.account)
    if args.phone_number:
        c = await account.contact(args.phone_number, picture=args.picture)
        lines = [f"phone        {c.phone_number or ''}", f"lid          {c.lid or ''}",
                 f"push name    {c.push_name or ''}", f"name         {c.name or ''}",
                 f"on whatsapp  {'' if c.on_whatsapp is None else ('yes' if c.on_whatsapp else 'no')}"]
        if args.picture:
            lines.append(f"picture      {c.picture_url or ''}")
        out.data(c, "\n".join(lines))
        return OK
    contacts = (await account.contacts(limit=args.limit)).contacts
    rows = [[c.phone_number or c.lid, c.push_name or "", c.name or "", c.last_message_at or ""] for c in contacts]
    out.data(contacts, _table(rows, ["PHONE", "PUSH NAME", "NAME", "LAST MESSAGE"]) if rows else "no contacts")
    return OK
