"""``connect``: link an account from a terminal, saying what happens while it waits.

A newcomer who runs ``connect`` and sees nothing for a minute cannot tell a slow network from a firewall
from a QR nobody scanned. So every state change seen in ``GET /status`` is one line: ``connecting``, each
new QR (drawn in the terminal, with how to scan it), ``whatsapp_unreachable`` with its cause and detail
(``unreachable`` in the status: dns, refused, tls, proxy, timeout, network), and finally ``connected``.
A QR refresh is a new picture, not a new state line. With ``--phone`` the account links by a pairing code
typed on that phone instead (a server with no camera near it): the code and where to type it are printed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from . import errors
from .client import AsyncAccount
from .models import Status

OK, FAILED, TIMEOUT = 0, 1, 7


class Output(Protocol):
    def data(self, value: Any, human: str) -> None: ...
    def note(self, text: str) -> None: ...


def state_line(status: Status, account: str) -> str:
    """The one line for a state the status shows (not for qr: the picture and how to scan say it)."""
    state = status.state
    if state == "connecting":
        return f"connecting to WhatsApp (account {account})..."
    if state == "whatsapp_unreachable":
        why = status.unreachable or {}
        cause, detail = why.get("cause"), why.get("detail")
        text = "WhatsApp is unreachable"
        if cause:
            text += f": {cause}" + (f" ({detail})" if detail else "")
        elif status.last_error:
            text += f": {status.last_error}"
        if why.get("attempts"):
            text += f"; {why['attempts']} attempt" + ("s" if why["attempts"] != 1 else "")
        if why.get("since"):
            text += f" since {why['since']}"
        hint = why.get("hint") or "check the network, WA_PROXY_URL or WA_SERVER_URL"
        return f"{text}; still trying ({hint})"
    return f"state {state}" + (f": {status.last_error}" if status.last_error else "")


async def connect(account: AsyncAccount, name: str, timeout: float, poll: float, out: Output,
                  phone: str | None = None) -> int:
    """Start linking, print each state change and each QR (or pairing code) as it comes, return when linked."""
    status = await account.connect(phone)
    deadline = time.monotonic() + timeout
    shown_qr: str | None = None  # the QR payload or the pairing code last shown
    seen: tuple[str, str | None] | None = None  # the state and cause last printed
    while not status.connected:
        if status.state == "logged_out" and shown_qr is not None:
            out.data(status, f"logged out while linking: {status.last_error or 'the phone refused'}")
            return FAILED
        if status.state == "qr":
            if status.qr and status.qr != shown_qr and await _show_qr(account, name, deadline, out):
                shown_qr = status.qr
        elif status.state == "pairing_code":
            if status.pairing_code and status.pairing_code != shown_qr:
                _show_code(status.pairing_code, phone, name, deadline, out)
                shown_qr = status.pairing_code
        else:
            current = (status.state, (status.unreachable or {}).get("cause"))
            if current != seen:
                out.note(state_line(status, name))
        seen = (status.state, (status.unreachable or {}).get("cause"))
        if time.monotonic() > deadline:
            out.data(status, f"not linked within {timeout:g} s (state {status.state})")
            return TIMEOUT
        await asyncio.sleep(poll)
        status = await account.status()
    out.data(status, f"connected as {status.phone_number} (account {name})")
    return OK


def _show_code(code: str, phone: str | None, name: str, deadline: float, out: Output) -> None:
    out.note(f"Pairing code: {code}")
    out.note(f"On the phone{f' ({phone})' if phone else ''}: WhatsApp > Settings > Linked devices > Link a device > "
             f"Link with phone number instead, then type the code (account {name}; waiting up to "
             f"{max(0, deadline - time.monotonic()):.0f} s)")


async def _show_qr(account: AsyncAccount, name: str, deadline: float, out: Output) -> bool:
    try:
        picture = (await account.qr("terminal")).decode()
    except errors.QrUnavailable:
        return False
    if not picture:
        return False
    out.note(picture)
    out.note(f"Scan with WhatsApp on the phone: Settings > Linked devices > Link a device "
             f"(account {name}; waiting up to {max(0, deadline - time.monotonic()):.0f} s)")
    return True
