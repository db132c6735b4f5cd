"""What GET /metrics reads from the store at scrape time: SQL only (service/metrics.py turns it into metrics).

The store is the truth for how many messages are in each status, how many wait and for how long, and how
many webhook deliveries are pending or dead-lettered; reading it at each scrape (one transaction, so the
numbers agree with each other) means no counter kept beside it can drift from it. Every query here is
answered from an index (``messages_pending``, ``webhook_deliveries_list``) plus the waiting rows only.
"""

from __future__ import annotations

import sqlite3


def snapshot(conn: sqlite3.Connection) -> dict:
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
    return {"messages": messages, "waiting": waiting, "deliveries": deliveries, "endpoints": endpoints}
