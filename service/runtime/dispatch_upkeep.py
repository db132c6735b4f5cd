"""The dispatcher's upkeep, beside its rounds: queued messages past their TTL fail, and sent messages still without
a delivery receipt past the bound are flagged (``no_delivery_receipt``). Each change is handed to ``changed`` (the
dispatcher's: waiters, event readers). It runs at most once a second, and only when something can be due: the
store says when (``dispatch_plan.upkeep``'s ``due``), and anything new for the account (an accept, a send, a
connection: ``Dispatcher.wake``) makes it run at the next round again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from service.store import dispatch_plan
from service.store.db import Database

log = structlog.get_logger("gateway.dispatch")

IDLE = 60.0  # seconds: with nothing due the dispatcher looks again after this at the latest (a safety net: a
# notification lost while a cluster listener reconnected, say), not a poll


async def upkeep(db: Database, account: str, now: float, receipt_bound: float,
                 changed: Callable[[dict[str, Any] | None], None]) -> float:
    """Run the upkeep; returns when it next has something to do."""
    done = await db.run(dispatch_plan.upkeep, account, now, receipt_bound)
    for row in done["expired"]:
        log.info("message.failed", message_id=row["id"], reason="expired")
        changed(row)
    for row in done["flagged"]:
        log.warning("message.no_delivery_receipt", message_id=row["id"], whatsapp_id=row["wa_id"],
                    bound_s=receipt_bound)
        changed(row)
    due = done["due"]
    return now + IDLE if due is None else min(due, now + IDLE)
