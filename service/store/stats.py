"""What GET /metrics reads from the store at scrape time: SQL only (service/http/metrics.py turns it into metrics).

The store is the truth for how many messages are in each status, how many wait and for how long, and how
many webhook deliveries are pending or dead-lettered; reading it at each scrape (one transaction, so the
numbers agree with each other) means no counter kept beside it can drift from it. Every query here is
answered from an index (``messages_pending``, ``webhook_deliveries_list``) plus the waiting rows only.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

UNDECRYPTABLE_WINDOW = 3600.0  # seconds: how far back /health and the metrics count undecryptable messages


def _no_problems() -> dict[str, int]:
    return {"undecryptable_last_hour": 0, "sent_without_receipt": 0}


def conversation_problems(conn: sqlite3.Connection, now: float) -> dict[str, dict[str, int]]:
    """Per account, signs of a broken conversation: contacts' messages reported undecryptable in the last
    hour (``message.undecryptable`` events), and sent messages flagged ``no_delivery_receipt``."""
    found: dict[str, dict[str, int]] = {}
    for account, n in conn.execute(
        "SELECT account, COUNT(*) FROM events WHERE created_at > ? AND type = 'message.undecryptable' GROUP BY account",
        (now - UNDECRYPTABLE_WINDOW,),
    ):
        found.setdefault(account, _no_problems())["undecryptable_last_hour"] = n
    for account, n in conn.execute(
        "SELECT account, COUNT(*) FROM messages WHERE status = 'sent' AND reason = 'no_delivery_receipt' "
        "AND sent_at IS NOT NULL GROUP BY account"
    ):
        found.setdefault(account, _no_problems())["sent_without_receipt"] = n
    return found


def snapshot(conn: sqlite3.Connection, now: float | None = None) -> dict[str, Any]:
    """``{"messages": [(account, status, count)], "waiting": {account: (count, oldest created_at)},
    "deliveries": [(endpoint id, endpoint account or None, status, count)] for pending and failed ones,
    "endpoints": [(id, account or None)] of the active endpoints}``."""
    # Every row of `messages` is outbound (inbound messages live in inbound_messages).
    messages = [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT account, status, COUNT(*) FROM messages GROUP BY account, status")]
    waiting = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT account, COUNT(*), MIN(created_at) FROM messages WHERE status IN ('queued', 'sending') "
        "GROUP BY account")}
    deliveries = [(r[0], r[1], r[2], r[3]) for r in conn.execute(
        "SELECT d.endpoint, e.account, d.status, COUNT(*) FROM webhook_deliveries d "
        "LEFT JOIN webhook_endpoints e ON e.id = d.endpoint "
        "WHERE d.status IN ('pending', 'failed') GROUP BY d.endpoint, e.account, d.status")]
    endpoints = [(r[0], r[1]) for r in conn.execute("SELECT id, account FROM webhook_endpoints WHERE active = 1")]
    problems = conversation_problems(conn, time.time() if now is None else now)
    return {"messages": messages, "waiting": waiting, "deliveries": deliveries, "endpoints": endpoints,
            "problems": problems}
