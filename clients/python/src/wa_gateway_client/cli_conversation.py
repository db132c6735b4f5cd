"""The CLI's conversation (issue 25): ``send PHONE TEXT --reply-to ID``, ``send PHONE --location LAT,LON``,
``send PHONE --poll QUESTION --option A --option B``, ``send PHONE --contact NAME=+PHONE`` / ``--vcard FILE``, and
the actions on a message: ``react ID EMOJI`` (``""`` removes), ``edit ID TEXT``, ``revoke ID``, ``read ID``,
``presence PHONE STATE``.

Why these shapes: the kinds of content are options of ``send`` like the media ones (cli_media.py), so that
``--reply-to``, ``--idempotency-key``, ``--wait`` and ``--wait-delivered`` work with all of them; an action names
the message it acts on first, as ``media download ID`` does. Every action prints its own id and status like a send.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .client import AsyncAccount, AsyncClient
from .conversation import PRESENCE_STATES
from .models import Message


def add_send_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reply-to", metavar="ID", help="quote this message of the chat (a contact's or ours; any kind)")
    p.add_argument("--location", metavar="LAT,LON", help="send a place, e.g. 38.7223,-9.1393")
    p.add_argument("--location-name", metavar="NAME", help="--location: the place's name")
    p.add_argument("--location-address", metavar="ADDRESS", help="--location: its address")
    p.add_argument("--poll", dest="poll_question", metavar="QUESTION",
                   help="send a poll; its options with --option (2 to 12)")
    p.add_argument("--option", action="append", metavar="TEXT", help="--poll: one option (repeat it)")
    p.add_argument("--multiple", action="store_true", help="--poll: several options may be chosen")
    p.add_argument("--contact", action="append", metavar="NAME=PHONE",
                   help="send a contact card, e.g. 'Ana=+14155550199' (repeat for several)")
    p.add_argument("--vcard", action="append", metavar="FILE", help="send the vCard in FILE (repeat for several)")


def wanted(args: argparse.Namespace) -> list[str]:
    """The content options given (location, poll, contact, vcard)."""
    return [name for name, dest in (("location", "location"), ("poll", "poll_question"), ("contact", "contact"),
                                    ("vcard", "vcard")) if getattr(args, dest, None)]


async def send(account: AsyncAccount, args: argparse.Namespace) -> Message:
    """A location, a poll or contact cards, as the options say."""
    from .cli import USAGE, Done  # the CLI's own: imported late, cli.py imports this module

    given = wanted(args)
    if len(given) > 1 or args.message is not None:
        extra = given[1:] if len(given) > 1 else [f"TEXT {args.message!r}"]
        raise Done(USAGE, f"send --{given[0]} takes no {', '.join(extra)}: one content per message")
    common: dict[str, Any] = dict(reply_to=args.reply_to, idempotency_key=args.idempotency_key, wait=args.wait)
    if given == ["location"]:
        latitude, longitude = _coordinates(args.location)
        return await account.send_location(args.phone_number, latitude, longitude, name=args.location_name,
                                           address=args.location_address, **common)
    if given == ["poll"]:
        return await account.send_poll(args.phone_number, args.poll_question, args.option or [], multiple=args.multiple,
                                       **common)
    if given == ["contact"]:
        return await account.send_contacts(args.phone_number, [_card(c) for c in args.contact], **common)
    vcards = []
    for name in args.vcard:
        try:
            vcards.append(Path(name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise Done(USAGE, f"--vcard {name}: {getattr(exc, 'strerror', None) or exc}") from None
    return await account.send_contacts(args.phone_number, vcards=vcards, **common)


def _coordinates(text: str) -> tuple[float, float]:
    from .cli import USAGE, Done

    try:
        latitude, longitude = (float(part) for part in text.split(","))
    except ValueError:
        raise Done(USAGE, f"--location {text!r}: give LAT,LON, e.g. 38.7223,-9.1393") from None
    return latitude, longitude


def _card(text: str) -> tuple[str, str]:
    from .cli import USAGE, Done

    name, sep, phone = text.rpartition("=")
    if not sep or not name.strip() or not phone.strip():
        raise Done(USAGE, f"--contact {text!r}: give NAME=PHONE, e.g. 'Ana=+14155550199'")
    return name.strip(), phone.strip()


def add_commands(command: Any) -> None:
    """``react``, ``edit``, ``revoke``, ``read``, ``presence``, registered through the CLI's ``command``."""
    where = "the message's id (GET /messages, `messages`, `messages --direction in`)"

    def action(name: str, run: Any, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = command(name, run, help)
        if name != "presence":
            p.add_argument("message_id", help=where)
        p.add_argument("--idempotency-key", help="repeat the action safely across runs (default: one per run)")
        p.add_argument("--wait", type=float, help="seconds the gateway waits for WhatsApp's ack (0: return at once)")
        return p

    p = action("react", cmd_react, "react to a message with an emoji ('' removes our reaction)")
    p.add_argument("emoji", help="one emoji, or '' to remove")
    p = action("edit", cmd_edit, "replace the text of a text message we sent (within WhatsApp's 15 minutes)")
    p.add_argument("text", help="the new text, or - to read it from stdin")
    action("revoke", cmd_revoke, "delete a message we sent, for everyone")
    action("read", cmd_read, "mark a contact's message read, and every earlier one of that chat (blue ticks)")
    p = action("presence", cmd_presence, "show a contact that we are typing, recording, paused, online or away")
    p.add_argument("phone_number", help="+E.164, e.g. +14155550123")
    p.add_argument("state", choices=PRESENCE_STATES)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return dict(idempotency_key=args.idempotency_key, wait=args.wait)


def _done(out: Any, message: Message) -> int:
    from .cli import OK

    target = f" on {message.target_id}" if message.target_id else ""
    out.data(message, f"{message.id} {message.type}{target} {message.status}"
             + (" (replayed)" if message.replayed else ""))
    return OK


async def cmd_react(wa: AsyncClient, args: argparse.Namespace, out: Any) -> int:
    return _done(out, await wa.account(args.account).react(args.message_id, args.emoji, **_options(args)))


async def cmd_edit(wa: AsyncClient, args: argparse.Namespace, out: Any) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    return _done(out, await wa.account(args.account).edit(args.message_id, text, **_options(args)))


async def cmd_revoke(wa: AsyncClient, args: argparse.Namespace, out: Any) -> int:
    return _done(out, await wa.account(args.account).revoke(args.message_id, **_options(args)))


async def cmd_read(wa: AsyncClient, args: argparse.Namespace, out: Any) -> int:
    return _done(out, await wa.account(args.account).read(args.message_id, **_options(args)))


async def cmd_presence(wa: AsyncClient, args: argparse.Namespace, out: Any) -> int:
    return _done(out, await wa.account(args.account).presence(args.phone_number, args.state, **_options(args)))
