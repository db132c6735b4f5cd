"""Inbound messages per second: emulator contacts write to the paired account of a sandbox stack, and a
local receiver verifies each signed webhook delivery (wa_gateway_client's WebhookVerifier, Standard
Webhooks). rate = N / (last verified delivery - first contact message posted). Run with
``.venv/bin/python -m bench.inbound [--messages N]``.

N is bounded, every wait has a deadline; the numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from tests.helpers.sandbox import pair
from tests.helpers.stack import Stack, free_port, wait_for
from wa_gateway_client.webhooks import InvalidSignature, WebhookVerifier

PHONE = "+15550007200"
CONTACTS = [f"+155500073{k:02d}" for k in range(4)]
POSTERS = 4


class Receiver:
    """An aiohttp server on its own thread and loop; records the arrival time of each verified delivery."""

    def __init__(self, secret: str, tag: str):
        self.verifier = WebhookVerifier(secret)
        self.tag = tag
        self.port = free_port()
        self.arrivals: dict[str, float] = {}  # webhook-id -> time verified
        self.rejected = 0
        self.deliveries = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.deliveries += 1
        try:
            event = self.verifier.verify(body, request.headers)
        except InvalidSignature:
            self.rejected += 1
            return web.Response(status=401)
        if event.type == "message.received" and str(event.data.get("text", "")).startswith(self.tag):
            self.arrivals.setdefault(event.id, time.time())
        return web.Response(status=204)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def measure(n: int = 200, timeout: float = 45) -> dict:
    """{"inbound_per_s", "n", "seconds", "post_seconds", "rejected", "deliveries"}"""
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    tag = "inbound-bench"
    receiver = Receiver(secret, tag).start()
    stack = Stack({"WA_WEBHOOK_SECRET": secret}, sandbox=True).start()
    try:
        pair(stack, PHONE)
        res = stack.post("/accounts/default/webhooks", {"url": f"http://127.0.0.1:{receiver.port}/hook"})
        if res.status != 201:
            raise RuntimeError(f"adding the webhook: {res.status} {res.raw[:300]!r}")
        # warm-up: one message per contact (Signal sessions, contacts known), not counted
        for contact in CONTACTS:
            stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONE, "text": "warm-up"})
        wait_for(lambda: sum(e["type"] == "message.received" for e in stack.events()) >= len(CONTACTS),
                 20, "the warm-up messages")
        statuses: dict[int, int] = {}

        def post(i: int) -> None:
            contact = CONTACTS[i % len(CONTACTS)]
            r = stack.emu("POST", f"/contacts/{contact}/messages", {"to": PHONE, "text": f"{tag} {i}"})
            statuses[r.status] = statuses.get(r.status, 0) + 1

        start = time.time()
        with ThreadPoolExecutor(POSTERS) as pool:
            list(pool.map(post, range(n)))
        posted = time.time()
        try:
            wait_for(lambda: len(receiver.arrivals) >= n, timeout, f"{n} verified webhook deliveries", interval=0.05)
        except Exception:
            pass  # reported as a short count below
        got = len(receiver.arrivals)
        last = max(receiver.arrivals.values(), default=start)
        return {"inbound_per_s": round(got / (last - start), 1) if got else 0.0, "n": n, "verified": got,
                "seconds": round(last - start, 3), "post_seconds": round(posted - start, 3),
                "post_statuses": statuses, "rejected": receiver.rejected, "deliveries": receiver.deliveries}
    finally:
        stack.cleanup()
        receiver.stop()


def print_table(result: dict) -> None:
    print("inbound: contact messages -> verified signed webhook deliveries (sandbox stack)")
    print(f"{'N':>5} {'verified':>8} {'inbound/s':>10} {'seconds':>8} {'posting s':>9} {'rejected':>8}")
    print(f"{result['n']:>5} {result['verified']:>8} {result['inbound_per_s']:>10.1f} {result['seconds']:>8.2f} "
          f"{result['post_seconds']:>9.2f} {result['rejected']:>8}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    print_table(measure(args.messages))


if __name__ == "__main__":
    main()
