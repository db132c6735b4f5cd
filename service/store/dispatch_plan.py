"""What a dispatcher's round reads, in one hand-over to the store thread instead of three per recipient.

A round needs the recipients' heads (``outbox.heads``), then for each recipient it starts a send to, whether it
is a first contact (the governor's question) and the messages that may follow the head in the same run. Asked
one by one, that is three trips through the store's queue before a send can start: at one message per request
(a caller that waits for ``sent``) each trip is latency on the message's path and CPU on the gateway's. Here
the heads come with both, for the recipients the round can start now; the dispatcher asks again for any other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import Any

from service.store import contacts, outbox

FIRST_CONTACT, FOLLOWING = "_first_contact", "_following"  # keys added to a planned head


def plan(conn: sqlite3.Connection, account: str, busy: Collection[str], free: int, now: float,
         follow: int) -> list[dict[str, Any]]:
    """``outbox.heads``; the first ``free`` of them that may go now (queued, due, their recipient not ``busy``)
    carry ``FIRST_CONTACT`` (``contacts.is_first_contact``) and ``FOLLOWING`` (``outbox.next_queued``, up to
    ``follow`` rows), read in this transaction."""
    heads = outbox.heads(conn, account)
    for head in heads:
        if free <= 0:
            break
        phone = head["phone_number"]
        if phone in busy or head["status"] != "queued" or head["next_attempt_at"] > now:
            continue
        head[FIRST_CONTACT] = contacts.is_first_contact(conn, account, phone)
        head[FOLLOWING] = outbox.next_queued(conn, account, phone, head["seq"], follow) if follow > 0 else []
        free -= 1
    return heads


def upkeep(conn: sqlite3.Connection, account: str, now: float, receipt_bound: float) -> dict[str, Any]:
    """The dispatcher's upkeep in one hand-over: queued messages past their TTL fail (``expired``: their rows),
    sent ones without a delivery receipt past the bound are flagged (``flagged``), and ``due`` says when the
    next of either can happen (None: nothing queued or awaiting a receipt). An idle account's dispatcher sleeps
    until then or until something wakes it, instead of asking every second: at 1,000 accounts that was three
    store reads a second each, most of an idle gateway's CPU (bench/scale.py)."""
    expired = [outbox.get(conn, account, message_id) for message_id in outbox.expire(conn, account, now)]
    flagged = outbox.flag_undelivered(conn, account, now - receipt_bound, now)
    first_expiry = conn.execute("SELECT MIN(expires_at) FROM messages WHERE account = ? AND status = 'queued'",
                                (account,)).fetchone()[0]
    oldest_sent = conn.execute(
        "SELECT sent_at FROM messages WHERE account = ? AND status = 'sent' AND reason IS NULL"
        " AND (action IS NULL OR action NOT IN ('read', 'presence')) ORDER BY sent_at LIMIT 1", (account,)).fetchone()
    times = [t for t in (first_expiry, oldest_sent[0] + receipt_bound if oldest_sent else None) if t is not None]
    return {"expired": [r for r in expired if r is not None], "flagged": flagged, "due": min(times) if times else None}
