"""The dispatcher's once-a-second upkeep, beside its rounds: queued messages past their TTL fail, and sent
messages still without a delivery receipt past the bound are flagged (``no_delivery_receipt``). Each change is
handed to ``changed`` (the dispatcher's: waiters, event readers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from service.store import outbox
from service.store.db import Database

log = structlog.get_logger("gateway.dispatch")


async def upkeep(db: Database, account: str, now: float, receipt_bound: float,
                 changed: Callable[[dict[str, Any] | None], None]) -> None:
    for message_id in await db.run(outbox.expire, account, now):
        log.info("message.failed", message_id=message_id, reason="expired")
        changed(await db.run(outbox.get, account, message_id))
    for row in await db.run(outbox.flag_undelivered, account, now - receipt_bound, now):
        log.warning("message.no_delivery_receipt", message_id=row["id"], whatsapp_id=row["wa_id"],
                    bound_s=receipt_bound)
        changed(row)
