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
