"""Stand-ins for the worker in the outbox tests: ``FakeWorker`` (the worker's HTTP API as the dispatcher sees
it, with scripted answers), ``StandInWorker`` (a real aiohttp server on the worker's unix socket for the
in-process app), and the small steps those tests share (accept, status_of, until, hand_over)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from service.errors import ApiError, WorkerUnavailable
from service.runtime.dispatch import Dispatcher
from service.runtime.governor import Governor, GovernorPolicy
from service.states import DEFAULT_ACCOUNT
from service.store import inbound, outbox
from tests.helpers.fake_groups import StandInGroups

A = DEFAULT_ACCOUNT
P1, P2 = "+15550002222", "+15550003333"


def accept(db, phone=P1, text="hi", key=None, now=None, ttl=3600.0, max_outbox=100):
    return db.call(outbox.accept, account=A, phone_number=phone, body=text, idempotency_key=key,
                   now=time.time() if now is None else now, ttl=ttl, max_outbox=max_outbox)


class FakeWorker:
    """The worker's HTTP API as the dispatcher sees it: a state and a scripted answer per send."""

    def __init__(self, state="connected"):
        self.state = state
        self.sent: list[tuple[str, str, str]] = []  # (phone, text, whatsapp id) per call
        self.script: list[Exception | None] = []  # next answers; None = accepted
        self.times: list[float] = []
        self.requests: list[int] = []  # messages per request (1: POST /send, more: POST /send/batch)

    async def poll_status(self, timeout):
        return await self._request_once("GET", "/status", timeout=timeout)

    async def _request_once(self, method, path, **kw):
        if self.state is None:
            raise WorkerUnavailable("down")
        return {"state": self.state}

    async def send_text(self, phone, text, message_id=None, *, batched=False):
        if not batched:
            self.requests.append(1)
        self.sent.append((phone, text, message_id))
        self.times.append(time.monotonic())
        if self.script:
            failure = self.script.pop(0)
            if failure is not None:
                raise failure
        if self.state != "connected":
            raise ApiError("not connected", code="not_connected", status=409)
        await asyncio.sleep(0)
        return {"id": message_id, "status": "pending"}

    async def send_batch(self, messages):
        """The worker's POST /send/batch: in order; after a failure other than not_on_whatsapp the rest are
        not attempted. A worker that is down fails the whole request (WorkerUnavailable)."""
        self.requests.append(len(messages))
        results, stopped = [], False
        for m in messages:
            if stopped:
                results.append({"id": m["id"], "error": {"status": 409, "code": "not_attempted", "message": "-"}})
                continue
            try:
                await self.send_text(m["phone_number"], m["text"], m["id"], batched=True)
            except WorkerUnavailable:
                raise
            except ApiError as exc:
                results.append({"id": m["id"], "error": {"status": exc.status, "code": exc.code, "message": "-"}})
                stopped = exc.code != "not_on_whatsapp"
            else:
                results.append({"id": m["id"], "status": "pending"})
        return results


def make_dispatcher(db, worker, **kw):
    policy = GovernorPolicy(burst=1000, rate_per_minute=60000, jitter=0)
    kw.setdefault("retry_base", 0.01)
    kw.setdefault("retry_max", 0.05)
    return Dispatcher(db, worker, Governor(policy), poll_interval=0.02, **kw)


async def until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def status_of(db, message_id):
    return db.call(outbox.get, A, message_id)


def hand_over(db, dispatcher, event):
    """What EventConsumer does with a worker event: store it, then tell the dispatcher."""
    dispatcher.on_event(event, db.call(inbound.store_worker_event, A, event, time.time()))


KEY = "outbox-test-key"
AUTH = {"X-API-Key": KEY}


class StandInWorker:
    """Answers GET /status, POST /send, the group routes (``groups``) and the shard's GET /changes (every account it
    was asked about, with ``state``) on the worker's socket like the worker."""

    def __init__(self):
        self._changed = asyncio.Event()
        self._version = 1  # GET /changes' seq: a new state or a new account is a change
        self.accounts: set[str] = {"default"}
        self.state = "connected"
        self.sends: list[dict] = []
        self.groups = StandInGroups(self)
        # GET /contacts/{phone} (issue 27): what WhatsApp says of a number, by number; others are not on WhatsApp
        self.contacts: dict[str, dict] = {}
        self.contact_asks: list[tuple[str, str | None]] = []  # (phone, the picture query) of every lookup
        self.status_asks: list[str] = []  # the account of every GET /status (the shard's own: "")

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, state: str) -> None:
        self._state = state
        self._change()

    def _change(self) -> None:
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    @web.middleware
    async def _seen(self, request, handler):
        name = request.match_info.get("account")
        if name is not None and name not in self.accounts:
            self.accounts.add(name)
            self._change()
        return await handler(request)

    async def _stopping(self) -> None:
        self._changed.set()

    async def _changes(self, request):
        after, wait = int(request.query.get("after", "0")), int(request.query.get("wait_ms", "0")) / 1000
        if after == self._version and request.query.get("boot_id") == "stand-in" and wait > 0:
            try:
                await asyncio.wait_for(self._changed.wait(), wait)
            except TimeoutError:
                pass
        listed = [] if after == self._version else sorted(self.accounts)
        return web.json_response({"boot_id": "stand-in", "seq": self._version, "accounts": [
            {"name": name, "state": self.state, "registered": None, "last_seq": 0, "events_boot_id": "b"}
            for name in listed]})

    async def start(self, socket_path):
        app = web.Application(middlewares=[self._seen])
        app.router.add_get("/changes", self._changes)
        app.on_shutdown.append(lambda app: self._stopping())  # a waiting /changes must not hold up the cleanup
        for prefix in ("", "/accounts/{account}"):  # the gateway addresses /accounts/<name>/...
            app.router.add_get(prefix + "/status", self._status)
            app.router.add_post(prefix + "/send", self._send)
            app.router.add_post(prefix + "/send/batch", self._send_batch)
            app.router.add_get(prefix + "/events", self._events)
            app.router.add_get(prefix + "/contacts/{phone}", self._contact)
            self.groups.register(app, prefix)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        await web.UnixSite(self.runner, str(socket_path)).start()

    async def _status(self, request):
        self.status_asks.append(request.match_info.get("account", ""))
        return web.json_response({"state": self.state, "connected": self.state == "connected"})

    async def _send(self, request):
        body = await request.json()
        if self.state != "connected":
            return web.json_response({"error": {"code": "not_connected", "message": "no"}}, status=409)
        self.sends.append(body)
        return web.json_response({"id": body["id"], "status": "pending"})

    async def _send_batch(self, request):
        messages = (await request.json())["messages"]
        if self.state != "connected":
            return web.json_response({"results": [
                {"id": m["id"], "error": {"status": 409, "code": "not_connected" if i == 0 else "not_attempted",
                                          "message": "no"}} for i, m in enumerate(messages)]})
        self.sends.extend(messages)
        return web.json_response({"results": [{"id": m["id"], "status": "pending"} for m in messages]})

    async def _contact(self, request):
        phone = request.match_info["phone"]
        self.contact_asks.append((phone, request.query.get("picture")))
        if self.state != "connected":
            return web.json_response({"error": {"code": "not_connected", "message": "no"}}, status=409)
        found = self.contacts.get(phone, {"on_whatsapp": False, "lid": None, "picture_url": "https://pps/x.jpg"})
        picture = found.get("picture_url") if request.query.get("picture") == "1" else None
        return web.json_response({"phone_number": phone, "on_whatsapp": found["on_whatsapp"], "lid": found["lid"],
                                  "picture_url": picture})

    async def _events(self, request):
        await asyncio.sleep(0.05)
        return web.json_response({"boot_id": "b", "last_seq": 0, "events": []})


async def error_of(res, status, code):
    body = await res.json()
    assert res.status == status, body
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]


async def get_json(client, path, status=200, headers=AUTH):
    """GET ``path`` from an in-process app and return its JSON body, asserting the status (the body is the message)."""
    res = await client.get(path, headers=headers)
    body = await res.json()
    assert res.status == status, body
    return body
