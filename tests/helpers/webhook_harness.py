"""The webhook tests' harness: a database file, real HTTP receivers on loopback ports (every request verified
with the ``standardwebhooks`` reference package) and webhook services, all stopped at the end."""

from __future__ import annotations

import asyncio
import time

from service.store import event_log
from service.store.db import Database
from service.webhooks import secret as webhook_secret
from service.webhooks.address import AddressPolicy, system_lookup
from service.webhooks.delivery import (
    Policy,
    WebhookService,
)
from tests.helpers.webhook_receiver import Receiver

SECRET = webhook_secret.generate()
A = "default"


P1, P2 = "+15550002222", "+15550003333"


# The receivers listen on loopback: account endpoints (address-checked) may reach them only when the allowlist
# says so, as WA_WEBHOOK_ALLOW_PRIVATE would. Tests of the address policy pass allow_private=() instead.
LOOPBACK = ("127.0.0.0/8",)
FAST = Policy(timeout=2.0, max_attempts=12, max_age=3600.0, retry_base=0.05, retry_max=0.2, concurrency=4)


async def until(predicate, timeout=10.0, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Harness:
    """A database file, receivers and webhook services, all stopped at the end."""

    def __init__(self, tmp_path):
        self.path = tmp_path / "data" / "gateway.db"
        self.db = Database(self.path).open()
        self.receivers: list[Receiver] = []
        self.services: list[WebhookService] = []

    def receiver(self, script=None, secret=SECRET) -> Receiver:
        rec = Receiver(secret, script).start()
        self.receivers.append(rec)
        return rec

    async def service(self, urls, *, policy=FAST, types=event_log.TYPES, secrets=(SECRET,), poll=0.05,
                      reset_leases=True, allow_private=LOOPBACK, lookup=system_lookup):
        svc = WebhookService(self.db, tuple(urls), types, secrets, policy, poll_interval=poll,
                             reset_leases=reset_leases, egress=AddressPolicy(allow_private, lookup))
        await svc.start()
        self.services.append(svc)
        return svc

    async def stop_services(self):
        for svc in self.services:
            await svc.stop()
        self.services.clear()

    def reopen(self):
        self.db.close()
        self.db = Database(self.path).open()

    def event(self, type_="message.received", subject=P1, data=None) -> dict:
        return self.db.call(event_log.append, A, type_, data or {"text": "hi"}, time.time(), subject=subject)

    def delivery(self, event_id, url=None, *, must=True) -> dict | None:
        rows = self.db.call(lambda c: [dict(r) for r in c.execute(
            "SELECT * FROM webhook_deliveries WHERE event_id = ?" + (" AND endpoint = ?" if url else ""),
            (event_id, url) if url else (event_id,))])
        assert len(rows) == 1 or (not rows and not must), rows
        return rows[0] if rows else None

    async def status(self, event_id, status, url=None, timeout=10.0):
        return await until(lambda: (d := self.delivery(event_id, url, must=False)) and d["status"] == status and d,
                           timeout, f"delivery of {event_id} {status}")


def assert_all_verified(rec: Receiver):
    for r in rec.snapshot():
        assert r.event is not None, r.error
