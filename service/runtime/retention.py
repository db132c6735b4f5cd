"""Keeps the event log bounded: events older than ``WA_EVENT_RETENTION_DAYS`` go, hourly.

An event an active webhook endpoint has not turned into deliveries yet is kept whatever its age
(deliveries carry their own copy of the body, so pruning never loses a webhook). Messages, in and
out, are not pruned here: they are the app's records.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import structlog

from service.store import event_log, webhooks
from service.store.db import Database

log = structlog.get_logger("gateway.retention")

INTERVAL = 3600.0


def prune_events(conn: sqlite3.Connection, older_than: float) -> int:
    return event_log.prune(conn, older_than, read_upto=webhooks.min_cursor(conn))


async def prune_once(db: Database, retention_seconds: float) -> int:
    removed = await db.run(prune_events, time.time() - retention_seconds)
    if removed:
        log.info("events.pruned", events=removed, retention_days=round(retention_seconds / 86400, 2))
    return removed


async def run_retention(db: Database, retention_seconds: float) -> None:
    """Prunes once an hour until cancelled (the app's cleanup context starts and cancels it)."""
    while True:
        try:
            await prune_once(db, retention_seconds)
        except Exception:
            log.exception("events.prune_failed")
        await asyncio.sleep(INTERVAL)
