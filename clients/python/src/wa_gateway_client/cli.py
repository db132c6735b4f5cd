"""``wa-gateway-client``: the gateway from a terminal or a script (also ``wa-gateway <command>`` on the
gateway's own host, with its URL and key filled in).

    wa-gateway-client status | connect | send PHONE TEXT [--reply-to ID] | send PHONE --image PATH
                      | send PHONE --location LAT,LON | --poll Q --option A --option B | --contact NAME=PHONE
                      | react ID EMOJI | edit ID TEXT | revoke ID | read ID | presence PHONE STATE | messages
                      | media download ID | logout | accounts | health | api-key | selftest
                      [--url URL] [--api-key KEY] [--account NAME] [--json]

Human lines by default; ``--json`` prints the gateway's JSON (errors as ``{"error": {...}}``) for scripts.
Exit codes (also in the README):
  0 done; 1 failed (a selftest check failed, a send ended failed, the account was logged out while linking);
  2 usage; 3 gateway unreachable; 4 key missing, refused or not allowed (401/403); 5 request refused (other
  4xx, e.g. not found, conflict); 6 gateway error (5xx); 7 timed out waiting (connect, send --wait-delivered).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

from . import cli_chats, cli_conversation, cli_groups, cli_media, errors, linking
from .client import DEFAULT_URL, AsyncClient
from .models import Account, InboundMessage, Message
from .selftest import Options, Result, run_selftest

OK, FAILED, USAGE, UNREACHABLE, AUTH, REFUSED, SERVER, TIMEOUT = range(8)
HTTP_TIMEOUT = 75.0  # beyond the longest wait a send may ask the gateway for (60 s)


class Done(Exception):
    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code = code


def exit_code(exc: errors.GatewayError) -> int:
    if isinstance(exc, errors.GatewayUnreachable):
        return UNREACHABLE
    if isinstance(exc, (errors.AuthenticationError, errors.PermissionDeniedError)):
        return AUTH
    if isinstance(exc, errors.SendFailed):
        return FAILED
    if isinstance(exc, errors.ServerError) or exc.status >= 500 or isinstance(exc, errors.UnexpectedResponse):
        return SERVER
    return REFUSED


def api_key(args: argparse.Namespace) -> str | None:
    """--api-key, else WA_API_KEY, else the file named by --api-key-file / WA_API_KEY_FILE."""
    if args.api_key:
        given: str = args.api_key
        return given
    if os.environ.get("WA_API_KEY"):
        return os.environ["WA_API_KEY"].split(",")[0].strip()
    path = args.api_key_file or os.environ.get("WA_API_KEY_FILE")
    if path:
        try:
            return Path(path).read_text().split()[0]
        except (OSError, IndexError):
            raise Done(USAGE, f"cannot read an API key from {path}") from None
    return None


# --- output -------------------------------------------------------------------------------------------
class Out:
    def __init__(self, as_json: bool):
        self.as_json = as_json

    def data(self, value: Any, human: str) -> None:
        if self.as_json:
            print(json.dumps(_plain(value), indent=2, sort_keys=True))
        elif human:
            print(human)

    def note(self, text: str) -> None:
        """Progress for people: stderr with --json, so stdout stays one JSON document."""
        print(text, file=sys.stderr if self.as_json else sys.stdout, flush=True)


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in cells)


def _status_lines(name: str, s: Any) -> str:
    lines = [f"account  {name}", f"state    {s.state}"]
    if s.phone_number:
        lines.append(f"phone    {s.phone_number}")
    if s.last_error:
        lines.append(f"error    {s.last_error}")
    return "\n".join(lines)


# --- commands -----------------------------------------------------------------------------------------
async def cmd_status(wa: AsyncClient, args: argparse.Namespace, out: Out) -> int:
    status = await wa.account(args.account).status()
    out.data(status, _status_lines(args.account, status))
    return OK


async def cmd_connect(wa: AsyncClient, args: argparse.Namespace, out: Out) -> int:
    """Start linking, print each state change and QR as it comes, return when linked (linking.py)."""
    return await linking.connect(wa.account(args.account), args.account, args.timeout, args.poll, out, args.phone)


async def cmd_send(wa: AsyncClient, args: argparse.Namespace, out: Out) -> int:
    account = wa.account(args.account)
    if (media := cli_media.wanted(args)) is not None:
        if kinds := cli_conversation.wanted(args):
            raise Done(USAGE, f"send with media takes no --{kinds[0]}: one content per message")
        message = await cli_media.send(account, args, media)
    elif cli_conversation.wanted(args):
        message = await cli_conversation.send(account, args)
    elif args.message is None:
        raise Done(USAGE, "send needs a TEXT (- reads stdin), a media option (--image PATH, ...), --location, "
                          "--poll, --contact or --vcard")
    else:
        text = sys.stdin.read() if args.message == "-" else args.message
        message = await account.send(args.phone_number, text, reply_to=args.reply_to,
                                     idempotency_key=args.idempotency_key, wait=args.wait)
    if args.wait_delivered:
        deadline = time.monotonic() + args.timeout
        while message.status not in ("delivered", "read", "failed"):
            if time.monotonic() > deadline:
                out.data(message, f"{message.id} {message.status}: not delivered within {args.timeout:g} s")
                return TIMEOUT
            await asyncio.sleep(args.poll)
            message = cast(Message, await account.message(message.id))  # the id of a sent message: outbound
        if message.status == "failed":
            out.data(message, f"{message.id} failed: {message.reason}")
            return FAILED
    out.data(message, f"{message.id} {message.status}" + (" (replayed)" if message.replayed else ""))
    return OK


async def cmd_messages(wa: AsyncClient, args: argparse.Namespace, out: Out) -> int:
    account = wa.account(args.account)
    items: list[Message | InboundMessage] = []
    async for message in account.iter_messages(direction=args.direction, status=args.status,
                                               phone_number=args.phone_number, limit=min(args.limit, 200)):
        items.append(message)
        if len(items) >= args.limit:
            break
    if args.direction == "in":
        # A listing of one direction holds messages of that direction only.
        rows = [[m.received_at, m.phone_number or m.lid, m.kind, _short(m.text)]
                for m in cast(list[InboundMessage], items)]
        human = _table(rows, ["RECEIVED", "FROM", "KIND", "TEXT"])
    else:
        rows = [[m.created_at, m.id, m.phone_number, m.type + (f" {m.target_id}" if m.target_id else ""), m.status,
                 m.reason or m.wait_reason or ""] for m in cast(list[Message], items)]
        human = _table(rows, ["CREATED", "ID", "TO", "TYPE", "STATUS", "WHY"])
    out.data(items, human)
    return OK


def _short(text: str | None, width: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


async def cmd_logout(wa: AsyncClient, args: argparse.Namespace, out: Out) -> int:
    result = await wa.account(args.account).logout()
    out.data(result, f"account {args.account} logged out" + (" and unlinked at WhatsApp" if result.unlinked else ""))
    return OK


async def cmd_accounts(wa: AsyncClient, args: argparse.Namespace, out: Out) -> int:
    if args.action == "create":
        account = await wa.create_account(_name(args), proxy_url=args.proxy_url)
        out.data(account, f"created {account.name} on shard {account.shard}; link it with "
                          f"`connect --account {account.name}`")
    elif args.action == "delete":
        deleted = await wa.delete_account(_name(args))
        out.data(deleted, f"deleted {deleted.name}" + (" (unlinked at WhatsApp)" if deleted.unlinked else ""))
    elif args.action in ("show", "proxy"):
        name = _name(args)  # proxy: --proxy-url URL or direct; without it, back to WA_PROXY_URL
        account = await (wa.set_account_proxy(name, args.proxy_url) if args.action == "proxy" else wa.get_account(name))
        out.data(account, _table([_row(account)], ["NAME", "STATE", "PHONE", "SHARD", "PROXY"]))
    else:
        accounts = await wa.accounts()
        out.data(accounts, _table([_row(a) for a in accounts], ["NAME", "STATE", "PHONE", "SHARD", "PROXY"]))
    return OK


def _row(a: Account) -> list[Any]:
    proxy = a.proxy.url if a.proxy else None
    return [a.name, a.state, a.phone_number, a.shard, proxy or "direct"]


def _name(args: argparse.Namespace) -> str:
    if not args.name:
        raise Done(USAGE, f"accounts {args.action} needs a NAME")
    name: str = args.name
    return name


async def cmd_health(wa: AsyncClient, args: argparse.Namespace, out: Out) -> int:
    health = await wa.health()
    lines = [f"status    {health.status}" + (f" ({'; '.join(health.reasons)})" if health.reasons else ""),
             f"version   {health.version}   up {health.uptime_seconds:.0f} s",
             f"whatsapp  {health.whatsapp.get('state')}",
             "accounts  " + ", ".join(f"{n} {s}" for s, n in sorted(health.accounts.items())),
             "shards    " + ", ".join(f"{s['name']} {s['state']}" for s in health.shards)]
    if health.store is not None:
        lines.append(f"store     {'writable' if health.store.get('writable') else 'NOT writable'}")
    out.data(health, "\n".join(lines))
    return OK if health.status == "ok" else FAILED


async def cmd_api_key(wa: AsyncClient, args: argparse.Namespace, out: Out) -> int:
    account = wa.account(args.account)
    if args.action == "create":
        created = await account.create_key(args.label)
        out.data(created, f"{created.key}\n(id {created.id}, scoped to account {created.account}; shown once)")
    elif args.action == "list":
        keys = await account.keys()
        out.data(keys, _table([[k.id, k.prefix, k.label, k.created_at, k.last_used_at, k.revoked_at] for k in keys],
                              ["ID", "PREFIX", "LABEL", "CREATED", "LAST USED", "REVOKED"]))
    elif args.action == "revoke":
        if not args.id:
            raise Done(USAGE, "api-key revoke needs the key's ID")
        key = await account.revoke_key(args.id)
        out.data(key, f"revoked {key.id}")
    else:  # show: the key this command uses, so a script can reuse what the operator configured
        if not wa.api_key:
            raise Done(AUTH, "no API key: give --api-key, WA_API_KEY or WA_API_KEY_FILE")
        out.data({"api_key": wa.api_key}, wa.api_key)
    return OK


async def cmd_selftest(wa: AsyncClient, args: argparse.Namespace, out: Out) -> int:
    options = Options(account=args.account, to=args.to, timeout=args.timeout,
                      webhook_secret=args.webhook_secret or os.environ.get("WA_WEBHOOK_SECRET"),
                      webhook_listen=args.webhook_listen, webhook_url=args.webhook_url, emulator=args.emulator,
                      key_command=args.key_command or Options.key_command)

    def report(result: Result) -> None:
        if not out.as_json:
            print(f"{result.outcome}  {result.name:<30} {result.detail}", flush=True)

    results = await run_selftest(wa, options, report)
    failed = [r.name for r in results if r.outcome == "FAIL"]
    skipped = sum(r.outcome == "SKIP" for r in results)
    out.data({"ok": not failed, "checks": [vars(r) for r in results]},
             f"{len(results) - len(failed) - skipped} passed, {skipped} skipped, {len(failed)} failed"
             + (f": {', '.join(failed)}" if failed else ""))
    return FAILED if failed else OK


# --- the parser ---------------------------------------------------------------------------------------
DEFAULT_TIMEOUT = 120.0  # seconds a command waits (connect, send --wait-delivered); selftest: per waiting check
SELFTEST_TIMEOUT = 60.0


def _common(p: argparse.ArgumentParser, *, on_host: bool, timeout: float | None) -> None:
    """Add the global options to ``p``. On the top-level parser (``timeout`` None) they carry the defaults;
    on a command's parser they default to SUPPRESS, so an option given before the command is not reset by
    the command's parser. Each parser gets its own actions (no ``parents=``: argparse shares a parent's
    action objects, and a ``set_defaults`` on one command would change the default of every command)."""
    top = timeout is None

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    p.add_argument("--url", default=default(os.environ.get("WA_GATEWAY_URL", DEFAULT_URL)),
                   help=f"the gateway (env WA_GATEWAY_URL; default {os.environ.get('WA_GATEWAY_URL', DEFAULT_URL)})")
    p.add_argument("--api-key", default=default(None), help="the API key (env WA_API_KEY)")
    p.add_argument("--api-key-file", default=default(None), help="a file holding the key (env WA_API_KEY_FILE)")
    p.add_argument("--account", default=default(os.environ.get("WA_ACCOUNT", "default")),
                   help=f"the account (env WA_ACCOUNT; default {os.environ.get('WA_ACCOUNT', 'default')})")
    p.add_argument("--json", action="store_true", default=default(False), help="print JSON for scripts")
    p.add_argument("--timeout", type=float, default=default(None),
                   help="seconds to wait, where a command waits" + (f" (default {timeout:g})" if timeout else ""))
    if on_host:  # `wa-gateway <command>` on the gateway's host: the launcher reads it (service/programs/launcher.py)
        p.add_argument("--sandbox", action="store_true", default=default(False),
                       help="the sandbox's gateway (make sandbox): its port, data dir, key and emulator")


def parser(prog: str = "wa-gateway-client", on_host: bool | None = None) -> argparse.ArgumentParser:
    on_host = prog == "wa-gateway" if on_host is None else on_host
    main = argparse.ArgumentParser(prog=prog, description="Talk to a wa-gateway.",
                                   epilog="exit codes: 0 done, 1 failed, 2 usage, 3 unreachable, 4 key refused, "
                                          "5 request refused, 6 gateway error, 7 timed out")
    _common(main, on_host=on_host, timeout=None)
    sub = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Any, help: str, timeout: float = DEFAULT_TIMEOUT) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _common(p, on_host=on_host, timeout=timeout)
        p.set_defaults(run=run, default_timeout=timeout)
        return p

    command("status", cmd_status, "the account's WhatsApp state")
    p = command("connect", cmd_connect, "link the account: print the QR here and each state change until linked")
    p.add_argument("--phone", help="link by a pairing code typed on this phone (+E.164, the account's own number) "
                                   "instead of a QR: the code is printed here")
    p.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    p = command("send", cmd_send, "send a text, media, a location, a poll or contact cards (durable once "
                                  "accepted; retries are safe)")
    p.add_argument("phone_number", help="+E.164, e.g. +14155550123")
    p.add_argument("message", nargs="?", help="the text, or - to read it from stdin")
    cli_media.add_send_options(p)
    cli_conversation.add_send_options(p)
    p.add_argument("--idempotency-key", help="repeat a send safely across runs (default: one per run)")
    p.add_argument("--wait", type=float, help="seconds the gateway waits for WhatsApp's ack (0: return at once)")
    p.add_argument("--wait-delivered", action="store_true", help="follow the message until delivered")
    p.add_argument("--poll-interval", dest="poll", type=float, default=1.0, help=argparse.SUPPRESS)  # --poll: a poll
    p = command("messages", cmd_messages, "list messages, newest first")
    p.add_argument("--direction", choices=("out", "in"), default="out")
    p.add_argument("--status", help="out only: queued, sending, sent, delivered, read, failed")
    p.add_argument("--phone-number", help="only with this contact")
    p.add_argument("--limit", type=int, default=20)
    command("logout", cmd_logout, "log the account out at WhatsApp (a new QR is needed)")
    p = command("accounts", cmd_accounts, "list, show, create or delete accounts (admin key)")
    p.add_argument("action", nargs="?", choices=("list", "show", "create", "delete", "proxy"), default="list")
    p.add_argument("name", nargs="?")
    p.add_argument("--proxy-url", help="create, proxy: the account's own proxy for WhatsApp (http:// or socks5:// "
                                       "URL, or direct); proxy without it: back to WA_PROXY_URL")
    cli_media.add_command(command)
    cli_conversation.add_commands(command)
    cli_groups.add_command(command)
    cli_chats.add_commands(command)
    command("health", cmd_health, "the gateway's health (exit 1 when degraded)")
    p = command("api-key", cmd_api_key,
                "print the key in use; or create, list, revoke keys scoped to --account (admin key)")
    p.add_argument("action", nargs="?", choices=("show", "create", "list", "revoke"), default="show")
    p.add_argument("id", nargs="?", help="revoke: the key's id")
    p.add_argument("--label")
    p = command("selftest", cmd_selftest, "check a running deployment end to end, one line per check",
                timeout=SELFTEST_TIMEOUT)
    p.add_argument("--to", help="also send to this real number and follow it to delivered")
    p.add_argument("--webhook-secret", help="verify the signature round-trip (env WA_WEBHOOK_SECRET)")
    p.add_argument("--webhook-listen", default="127.0.0.1:0",
                   help="HOST:PORT of the round-trip receiver (default %(default)s: a free port)")
    p.add_argument("--webhook-url", help="how the gateway reaches that receiver, if not HOST:PORT")
    p.add_argument("--emulator", default=os.environ.get("WA_EMULATOR_URL"),
                   help="a sandbox's emulator control API: pair through it and round-trip a message")
    return main


def parse(argv: list[str] | None, prog: str = "wa-gateway-client") -> argparse.Namespace:
    """Parse ``argv``; ``timeout`` is the command's own default unless given (before or after the command)."""
    args = parser(prog).parse_args(argv)
    if args.timeout is None:
        args.timeout = args.default_timeout
    return args


async def run(args: argparse.Namespace, out: Out) -> int:
    async with AsyncClient(args.url, api_key(args), timeout=HTTP_TIMEOUT) as wa:
        code: int = await args.run(wa, args, out)
        return code


def main(argv: list[str] | None = None, prog: str = "wa-gateway-client", key_command: str | None = None) -> int:
    """``key_command``: what prints the key on this host (`wa-gateway` passes its own), for a refused key."""
    args = parse(argv, prog)
    args.key_command = key_command
    out = Out(args.json)
    try:
        return asyncio.run(run(args, out))
    except Done as done:
        if str(done):
            print(f"{prog}: {done}", file=sys.stderr)
        return done.code
    except errors.GatewayError as exc:
        if out.as_json:
            print(json.dumps({"error": {"code": exc.code, "message": exc.message, "status": exc.status,
                                        **exc.details}}, indent=2, sort_keys=True))
        else:
            print(f"{prog}: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
