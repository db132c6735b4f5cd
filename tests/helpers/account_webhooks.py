"""Webhooks of accounts: the accounts, the admin key and the steps their tests share (an event of an account,
its deliveries, an endpoint added for a receiver, a scoped key), and ``Runtime``, the stand-in for the
account runtime in the views' lookups."""

from __future__ import annotations

import time
from dataclasses import dataclass

from service.auth.scoped_keys import new_key
from service.store import accounts as registry
from service.store import event_log
from service.store.db import Database
from tests.helpers.webhook_harness import Harness

SALES, SUPPORT = "sales", "support"
P1, P2 = "+15550002222", "+15550003333"


KEY = "test-key-account-webhooks"
AUTH = {"X-API-Key": KEY}


def event(h: Harness, account: str, subject: str = P1) -> dict:
    return h.db.call(event_log.append, account, "message.received", {"text": "hi"}, time.time(), subject=subject)


def deliveries(h: Harness, **where) -> list[dict]:
    sql = "SELECT * FROM webhook_deliveries" + (" WHERE " + " AND ".join(f"{k} = ?" for k in where) if where else "")
    return h.db.call(lambda c: [dict(r) for r in c.execute(sql + " ORDER BY seq", tuple(where.values()))])


async def add(svc, account: str, rec, types=event_log.TYPES, limit: int = 10) -> dict:
    """An account endpoint to ``rec``, which then verifies with the endpoint's own secret (shown at creation)."""
    ep = await svc.add_account_endpoint(account, rec.url, types, limit)
    rec.trust(ep["secret"])
    return ep


def delivered_ids(rec) -> set[str]:
    return {r.id for r in rec.delivered()}


@dataclass
class FakeAccount:
    name: str


class Runtime:
    """Stands in for service.runtime.accounts.AccountRuntime (which needs a worker) in the views' lookups."""

    def __init__(self, db: Database):
        self.db = db
        self.names_ = {"default", SALES, SUPPORT}

    def get(self, name):
        return FakeAccount(name) if name in self.names_ else None

    lookup = get  # one instance: every account is served here

    def names(self):
        return sorted(self.names_)

    async def delete(self, name):
        await self.db.run(registry.delete, name)
        self.names_.discard(name)
        return {"unlinked": False}


def scoped_key(h: Harness, account: str) -> dict:
    key, digest, prefix = new_key()
    h.db.call(registry.create_key, account, digest, prefix, None, time.time())
    return {"X-API-Key": key}
