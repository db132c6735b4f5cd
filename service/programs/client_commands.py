"""``wa-gateway <command>`` for the client's commands (status, connect, send, ...), and where the command is
in the arguments.

The client CLI (clients/python, ``wa-gateway-client``) takes its global options before or after the command
(``wa-gateway --url X status`` and ``wa-gateway status --url X``), and so does ``wa-gateway``: the launcher
finds the command past any leading options (and their values) and takes ``--sandbox`` from anywhere. On the
gateway's host the client needs no flags: its URL, key and webhook secret come from the gateway's settings
(the sandbox's with ``--sandbox``), and a refused key is told the command that prints the right one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from service import config_error
from service.auth import admin_key as api_keys
from service.settings import Settings, SettingsError
from service.webhooks import secret as webhook_secret

CLIENT_COMMANDS = frozenset({"status", "connect", "send", "messages", "media", "logout", "accounts", "health",
                             "selftest", "react", "edit", "revoke", "read", "presence", "groups", "chats",
                             "contacts"})
# The client's global options that take a value (clients/python/src/wa_gateway_client/cli.py `_common`).
VALUE_OPTIONS = frozenset({"--url", "--api-key", "--api-key-file", "--account", "--timeout"})


def split_command(argv: list[str]) -> tuple[str | None, list[str], bool]:
    """``(command, the other arguments in order, --sandbox given)``: the command is the first word that is
    not an option nor an option's value; None when there is none (``wa-gateway --help``)."""
    sandbox = "--sandbox" in argv
    rest = [a for a in argv if a != "--sandbox"]
    i = 0
    while i < len(rest):
        word = rest[i]
        if not word.startswith("-"):
            return word, rest[:i] + rest[i + 1:], sandbox
        i += 2 if word in VALUE_OPTIONS else 1  # --url=X is one word
    return None, rest, sandbox


def client_command(command: str, args: list[str], sandbox: bool, base_env: dict[str, str]) -> int:
    """Run the client CLI's ``command`` pointed at this host's gateway (``base_env``: the launcher's
    settings, the sandbox's when ``sandbox``), with its own key and webhook secret; ``--sandbox`` also
    names the sandbox's emulator (selftest then pairs and round-trips a message)."""
    try:
        from wa_gateway_client import cli
    except ImportError:
        print("wa-gateway: the client is not installed: pip install -e ./clients/python", file=sys.stderr)
        return 2
    env = base_env
    try:
        settings = Settings.from_env(env)
        keys = api_keys.resolve(env.get("WA_API_KEY"), Path(env["WA_DATA_DIR"]))
        secrets = webhook_secret.resolve(webhook_secret.parse(env.get("WA_WEBHOOK_SECRET")), Path(env["WA_DATA_DIR"]))
    except (SettingsError, api_keys.ApiKeyError, webhook_secret.SecretError, OSError) as exc:
        print(f"wa-gateway: {exc}", file=sys.stderr)
        return config_error.EX_CONFIG
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    os.environ.setdefault("WA_GATEWAY_URL", f"http://{f'[{host}]' if ':' in host else host}:{settings.port}")
    os.environ.setdefault("WA_API_KEY", keys.first)
    os.environ.setdefault("WA_WEBHOOK_SECRET", ",".join(secrets.values))
    if sandbox:
        os.environ.setdefault("WA_EMULATOR_URL", f"http://127.0.0.1:{env.get('WA_EMULATOR_PORT', '3002')}")
    key_command = f"`{api_keys.print_command(sandbox=sandbox)}`"
    return cli.main([command, *args], prog="wa-gateway", key_command=key_command)
