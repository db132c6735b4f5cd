"""``selftest``: check a running deployment end to end, one line per check; what an operator runs after a
deploy.

Checks, in order (a check that cannot run says SKIP and why; the run passes when none FAILs):
reachable, key accepted, supervised programs running, store writable, account linked (in a sandbox: paired
through the emulator first), webhook endpoints reachable, webhook signature round-trip (a receiver of its
own that verifies with the secret), and with ``to`` a real send followed to ``delivered``; in a sandbox
also a round trip: a message to an emulator contact and its answer back through the gateway.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from . import errors
from .client import AsyncClient
from .webhooks import InvalidSignature, WebhookVerifier

SANDBOX_PHONE = "+15550100001"
SANDBOX_CONTACT = "+15550100002"


@dataclass
class Result:
    name: str
    outcome: str  # PASS, FAIL, SKIP
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Options:
    account: str = "default"
    to: str | None = None  # a real number to send to and follow to delivered
    webhook_secret: str | None = None
    webhook_listen: str = "127.0.0.1:0"  # where the round-trip receiver listens
    webhook_url: str | None = None  # how the gateway reaches it, when not the listen address
    emulator: str | None = None  # the sandbox emulator's control API
    timeout: float = 60.0  # per waiting check
    # What prints the key, for the line a refused key gets (`wa-gateway <command>` fills in its own).
    key_command: str = "`wa-gateway api-key` on the gateway's host"
    results: list[Result] = field(default_factory=list)


class Skip(Exception):
    """The check cannot run here; the message says why."""


class SelfTest:
    def __init__(self, client: AsyncClient, options: Options, report: Callable[[Result], None]):
        self.client, self.options, self.report = client, options, report
        self.account = client.account(options.account)
        self.results: list[Result] = []
        self.admin = True

    async def check(self, name: str, run: Callable[[], Awaitable[str]]) -> bool:
        started = time.monotonic()
        try:
            detail, outcome = await run(), "PASS"
        except Skip as why:
            detail, outcome = str(why), "SKIP"
        except errors.AuthenticationError:
            detail = f"unauthorized: the key is wrong or missing (print it with {self.options.key_command})"
            outcome = "FAIL"
        except errors.GatewayUnreachable as exc:
            detail, outcome = f"unreachable: {exc.message or exc}", "FAIL"
        except errors.GatewayError as exc:
            detail, outcome = str(exc), "FAIL"
        except (AssertionError, asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            detail, outcome = str(exc) or type(exc).__name__, "FAIL"
        result = Result(name, outcome, detail, time.monotonic() - started)
        self.results.append(result)
        self.report(result)
        return outcome != "FAIL"

    async def run(self) -> list[Result]:
        if not await self.check("reachable", self.reachable):
            return self.results  # nothing else can work
        if not await self.check("key accepted", self.key_accepted):
            return self.results
        await self.check("programs running", self.programs)
        await self.check("store writable", self.store)
        if self.options.emulator:
            await self.check("sandbox pairing", self.pair)
        linked = await self.check("account linked", self.linked)
        await self.check("webhook endpoints reachable", self.endpoints)
        await self.check("webhook signature round-trip", self.signature)
        if self.options.to:
            await self.check("send to --to delivered", self.send_to if linked else self.not_linked)
        if self.options.emulator:
            await self.check("sandbox round trip", self.round_trip if linked else self.not_linked)
        return self.results

    # --- the checks: each returns its PASS detail, raises Skip, or fails ----------------------------
    async def reachable(self) -> str:
        started = time.monotonic()
        try:
            assert await self.client.live(), "GET /health/live did not answer ok"
        except errors.AuthenticationError:
            pass  # it answered: the key is the next check's business (a wrong key is refused even here)
        return f"{self.client.url} answered /health/live in {1000 * (time.monotonic() - started):.0f} ms"

    async def key_accepted(self) -> str:
        if not self.client.api_key:
            raise AssertionError("unauthorized: no API key given (--api-key, WA_API_KEY or WA_API_KEY_FILE; print "
                                 f"it with {self.options.key_command})")
        await self.client.openapi()  # any valid key may read the contract
        try:
            await self.client.accounts()
        except errors.PermissionDeniedError:
            self.admin = False
            return "a key scoped to one account (admin checks are skipped)"
        return "admin key"

    async def programs(self) -> str:
        health = await self.client.health()
        shards = health.shards or [{"name": "worker", "state": health.worker.get("state")}]
        down = [f"{s['name']} {s['state']}" for s in shards if s.get("state") != "RUNNING"]
        assert not down, "not running: " + ", ".join(down)
        return f"gateway up {health.uptime_seconds:.0f} s (v{health.version}); " + ", ".join(
            f"{s['name']} RUNNING" for s in shards)

    async def store(self) -> str:
        if not self.admin:
            raise Skip("needs the admin key")
        store = (await self.client.health()).store
        if store is None:
            raise Skip("this gateway does not report its store")
        assert store.get("writable"), f"the store cannot write: {store.get('error') or 'unknown'}"
        return "a write committed"

    async def pair(self) -> str:
        status = await self.account.status()
        if status.connected:
            return f"already linked as {status.phone_number}"
        if status.state != "qr":
            status = await self.account.connect()
        deadline = time.monotonic() + self.options.timeout
        while status.state != "qr" or not status.qr:
            assert time.monotonic() < deadline, f"no QR within {self.options.timeout:g} s (state {status.state})"
            await asyncio.sleep(0.5)
            status = await self.account.status()
        await self._emulator("POST", "/phone/scan", {"phone_number": SANDBOX_PHONE, "qr": status.qr})
        status = await self._wait_state("connected")
        return f"scanned the QR as {status.phone_number}"

    async def linked(self) -> str:
        status = await self.account.status()
        assert status.connected, (f"account {self.account.name} is {status.state}"
                                  + (f" ({status.last_error})" if status.last_error else "")
                                  + ": link it with `connect`")
        ready = await self.account.ready()
        assert ready.ready, f"linked but not ready: {(ready.error or {}).get('message')}"
        return f"account {self.account.name} connected as {status.phone_number}, ready"

    async def not_linked(self) -> str:
        raise Skip("the account is not linked")

    async def endpoints(self) -> str:
        results = (await self.client.test_all_webhooks() if self.admin
                   else await self.account.test_webhooks())
        if not results:
            raise Skip("no webhook endpoint configured")
        bad = [f"{r.endpoint}: {r.status_code or r.error}" for r in results if not r.ok]
        assert not bad, "unreachable: " + "; ".join(bad)
        return ", ".join(f"{r.endpoint} {r.status_code} in {r.elapsed_ms:.0f} ms" for r in results)

    async def signature(self) -> str:
        if not self.admin:
            raise Skip("needs the admin key")
        if not self.options.webhook_secret:
            raise Skip("give --webhook-secret (or WA_WEBHOOK_SECRET) to verify signatures")
        verifier = WebhookVerifier(self.options.webhook_secret)
        received: asyncio.Future[tuple[bytes, dict[str, str]]] = asyncio.get_running_loop().create_future()

        async def receive(request: web.Request) -> web.Response:
            if not received.done():
                received.set_result((await request.read(), dict(request.headers)))
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/{tail:.*}", receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, _, port = self.options.webhook_listen.rpartition(":")
        site = web.TCPSite(runner, host or "127.0.0.1", int(port or 0))
        try:
            await site.start()
            bound = runner.addresses[0]
            url = self.options.webhook_url or f"http://{bound[0]}:{bound[1]}/wa-gateway-selftest"
            result = await self.client.test_webhook_url(url)
            assert result.ok, f"the gateway could not deliver to {url}: {result.status_code or result.error}"
            body, headers = await asyncio.wait_for(received, 10)
            try:
                event = verifier.verify(body, headers)
            except InvalidSignature as exc:
                raise AssertionError(f"the signature does not verify with the given secret: {exc}") from None
            return f"{event.type} {headers.get('webhook-id', '')} verified"
        finally:
            await runner.cleanup()

    async def send_to(self) -> str:
        text = f"wa-gateway selftest {time.strftime('%Y-%m-%d %H:%M:%S')}"
        assert self.options.to is not None  # this check runs only with --to
        message = await self.account.send(self.options.to, text, idempotency_key="selftest-" + uuid.uuid4().hex, wait=0)
        status = await self._follow(message.id)
        return f"{message.id} {status} in {self._since(message.created_at)}"

    async def round_trip(self) -> str:
        text = "selftest ping " + uuid.uuid4().hex[:8]
        message = await self.account.send(SANDBOX_CONTACT, text, wait=0)
        await self._follow(message.id)
        inbox = await self._poll(lambda: self._emulator("GET", f"/contacts/{SANDBOX_CONTACT}/messages"),
                                 lambda got: any(m.get("text") == text for m in got), "the contact to get it")
        assert inbox
        reply = "selftest pong " + uuid.uuid4().hex[:8]
        me = (await self.account.status()).phone_number
        await self._emulator("POST", f"/contacts/{SANDBOX_CONTACT}/messages", {"to": me, "text": reply})
        await self._poll(lambda: self.account.messages(direction="in", phone_number=SANDBOX_CONTACT, limit=20),
                         lambda page: any(getattr(m, "text", None) == reply for m in page.items),
                         "the answer to come back")
        return f"sent to {SANDBOX_CONTACT}, delivered, answer received"

    # --- helpers ------------------------------------------------------------------------------------
    async def _follow(self, message_id: str) -> str:
        message = await self._poll(lambda: self.account.message(message_id),
                                   lambda m: m.status in ("delivered", "read", "failed"), "delivered")
        assert message.status != "failed", f"{message_id} failed: {message.reason}"
        status: str = message.status
        return status

    async def _wait_state(self, state: str) -> Any:
        return await self._poll(self.account.status, lambda s: s.state == state, f"state {state}")

    async def _poll(self, read: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], what: str) -> Any:
        deadline = time.monotonic() + self.options.timeout
        while True:
            value = await read()
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {self.options.timeout:g} s waiting for {what}")
            await asyncio.sleep(0.25)

    async def _emulator(self, method: str, path: str, body: Any = None) -> Any:
        assert self.options.emulator is not None  # the checks that call it run only with --emulator
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.options.emulator.rstrip("/") + path, json=body,
                                       timeout=aiohttp.ClientTimeout(total=30)) as resp:
                data = await resp.json(content_type=None)
                assert resp.status == 200, f"emulator {method} {path}: {resp.status} {data}"
                return data

    @staticmethod
    def _since(created_at: str) -> str:
        try:
            started = datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return "?"
        return f"{time.time() - started:.1f} s"


async def run_selftest(client: AsyncClient, options: Options, report: Callable[[Result], None]) -> list[Result]:
    return await SelfTest(client, options, report).run()
