"""Why an account's queued messages wait, when the reason is the account's link rather than the message.

The dispatcher sends nothing while an account is not connected, so the messages it holds would show no
reason at all (or a stale one). The account's link (service/runtime/link.py) labels them whenever its
state changes: ``not_connected`` (reconnecting, the worker restarting), ``whatsapp_unreachable`` (the
worker cannot reach WhatsApp: ``/status`` says why) or ``not_linked`` (the device was unlinked since they
were accepted); once connected again, these labels are cleared and the dispatcher's own reasons (backoff,
the governor) take over. One UPDATE per change of state, whatever the backlog.
"""

from __future__ import annotations

import sqlite3

from service.states import WaitReason

# The reasons that belong to the link: the only ones a change of the link's state may overwrite or clear.
LINK_REASONS: tuple[str, ...] = (WaitReason.NOT_CONNECTED, WaitReason.WHATSAPP_UNREACHABLE, WaitReason.NOT_LINKED)


def label(conn: sqlite3.Connection, account: str, reason: str | None) -> int:
    """Every queued message of ``account`` now waits for ``reason`` (None: the link no longer holds them,
    so only the link's own labels are cleared). Returns how many messages changed."""
    if reason is None:
        marks = ",".join("?" * len(LINK_REASONS))
        cur = conn.execute(
            f"UPDATE messages SET wait_reason = NULL WHERE account = ? AND status = 'queued'"
            f" AND wait_reason IN ({marks})", (account, *LINK_REASONS))
    else:
        cur = conn.execute(
            "UPDATE messages SET wait_reason = ? WHERE account = ? AND status = 'queued'"
            " AND (wait_reason IS NULL OR wait_reason <> ?)", (reason, account, reason))
    return cur.rowcount
