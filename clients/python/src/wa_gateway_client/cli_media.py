"""The CLI's media (issue 24): ``send PHONE --image PATH`` (or ``--video``, ``--audio``, ``--voice``,
``--document``, ``--sticker``; an ``http(s)://`` value is a URL the gateway fetches) and
``media download MESSAGE_ID [-o PATH]``.

Why a URL is told by its scheme and not by a ``--url`` flag: ``--url`` is already the gateway's address, an
option every command takes before or after its name. A local file whose name starts with ``https:`` is
given as ``./https:...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .client import AsyncAccount, AsyncClient
from .models import Message

# option -> (kind, voice note)
OPTIONS = {"image": ("image", False), "video": ("video", False), "audio": ("audio", False),
           "voice": ("audio", True), "document": ("document", False), "sticker": ("sticker", False)}


def add_send_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    for option, (kind, ptt) in OPTIONS.items():
        what = "a voice note (OGG/Opus)" if ptt else {"image": "an image", "audio": "audio"}.get(kind, f"a {kind}")
        group.add_argument(f"--{option}", metavar="PATH|URL", help=f"send {what}: a file, or an http(s) URL")
    p.add_argument("--caption", help="the media's caption (not for audio, voice or stickers)")
    p.add_argument("--filename", help="the name the contact sees (documents; default: the file's name)")
    p.add_argument("--mimetype", help="the type, when the gateway should not tell it from the bytes")


def wanted(args: argparse.Namespace) -> tuple[str, str, bool] | None:
    """``(kind, path or URL, voice note)`` when a media option was given."""
    for option, (kind, ptt) in OPTIONS.items():
        value = getattr(args, option, None)
        if value is not None:
            return kind, value, ptt
    return None


async def send(account: AsyncAccount, args: argparse.Namespace, media: tuple[str, str, bool]) -> Message:
    from .cli import USAGE, Done  # the CLI's own: imported late, cli.py imports this module

    kind, source, ptt = media
    if args.message is not None:
        raise Done(USAGE, f"send with media takes no TEXT ({args.message!r}): give it as --caption")
    options: dict[str, Any] = dict(caption=args.caption, filename=args.filename, mimetype=args.mimetype,
                                   ptt=True if ptt else None, reply_to=getattr(args, "reply_to", None),
                                   idempotency_key=args.idempotency_key, wait=args.wait)
    if source.startswith(("http://", "https://")):
        return await account.send_media(args.phone_number, kind, url=source, **options)
    path = Path(source)
    if not path.is_file():
        raise Done(USAGE, f"--{_option(args)}: {source}: no such file")
    try:
        return await account.send_media(args.phone_number, kind, path=path, **options)
    except OSError as exc:
        raise Done(USAGE, f"--{_option(args)}: {source}: {exc.strerror or exc}") from None


def _option(args: argparse.Namespace) -> str:
    return next(o for o in OPTIONS if getattr(args, o, None) is not None)


def add_command(command: Any) -> None:
    """``media download``, registered through the CLI's ``command`` (its global options and timeout)."""
    p = command("media", cmd_media, "download a message's media (waits up to --timeout while the gateway is "
                                     "still downloading it from WhatsApp)")
    p.add_argument("action", choices=("download",))
    p.add_argument("message_id", help="the message's id (GET /messages, `messages --direction in`)")
    p.add_argument("-o", "--output", help="a file (replaced), a directory, or - for stdout (default: the "
                                          "file's own name in the current directory, never replacing one)")


async def cmd_media(wa: AsyncClient, args: argparse.Namespace, out: Any) -> int:
    from .cli import OK, USAGE, Done

    account = wa.account(args.account)
    if args.output == "-":
        async for chunk in account.iter_media(args.message_id, wait=args.timeout):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return OK
    if args.output is not None and not Path(args.output).parent.is_dir():
        raise Done(USAGE, f"-o {args.output}: no such directory {Path(args.output).parent}")
    try:
        saved = await account.download_media(args.message_id, args.output, wait=args.timeout)
    except OSError as exc:
        raise Done(USAGE, f"cannot write {args.output or 'here'}: {exc.strerror or exc}") from None
    out.data({"path": str(saved.path), "size": saved.size, "sha256": saved.sha256, "mimetype": saved.mimetype,
              "filename": saved.filename},
             f"{saved.path}  {saved.size} bytes  {saved.mimetype or '?'}  sha256 {saved.sha256}")
    return OK
