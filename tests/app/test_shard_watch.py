"""The gateway follows a worker shard with one long-poll (issue 28, service/runtime/shard_watch.py): the in-process
app with many accounts in front of a stand-in worker that keeps a state and an event journal per account and
answers GET /changes, GET /events and POST /events/ack like node_worker/src/server.js. It counts every request, so
an idle gateway is seen to cost O(1) requests and connections, not one per account."""

from __future__ import annotations

import asyncio
import collections
import uuid

import pytest
from aiohttp import web

from service.http.app import create_app
from service.http.appkeys import ACCOUNTS, DATABASE
from service.settings import Settings
from service.store import event_log
from tests.helpers.fake_worker import AUTH, KEY, until

ACCOUNTS_N = 40


class JournalWorker:
    """One worker shard: per account a state and a journal of events (``push``); GET /changes like the worker's."""

    def __init__(self, state: str):
        self.state = state  # of an account it opens
        self.boot_id = uuid.uuid4().hex
        self.seq = 1
        self.accounts: dict[str, dict] = {}
        self.requests: collections.Counter[str] = collections.Counter()  # route -> requests so far
        self.waiting: collections.Counter[str] = collections.Counter()  # route -> requests waiting now
        self._changed = asyncio.Event()
        self._closing = False
        self.runner: web.AppRunner | None = None

    def _account(self, name: str) -> dict:
        if name not in self.accounts:
            self.accounts[name] = {"state": self.state, "events": [], "last_seq": 0, "boot": uuid.uuid4().hex}
            self._touch(name)
        return self.accounts[name]

    def _touch(self, name: str) -> None:
        self.seq += 1
        self.accounts[name]["changed"] = self.seq
        self._changed.set()
        self._changed = asyncio.Event()

    def set_state(self, name: str, state: str) -> None:
        self._account(name)["state"] = state
        self._touch(name)

    def push(self, name: str, event: dict) -> None:
        account = self._account(name)
        account["last_seq"] += 1
        account["events"].append({**event, "seq": account["last_seq"], "event_id": uuid.uuid4().hex})
        self._touch(name)

    async def start(self, socket_path) -> None:
        app = web.Application()
        app.router.add_get("/changes", self._changes)
        for prefix in ("", "/accounts/{account}"):
            app.router.add_get(prefix + "/status", self._status)
            app.router.add_get(prefix + "/events", self._events)
            app.router.add_post(prefix + "/events/ack", self._ack)
            app.router.add_post(prefix + "/attach", self._attach)
        app.on_shutdown.append(self._wake_all)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        await web.UnixSite(self.runner, str(socket_path)).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _wake_all(self, app) -> None:
        self._closing = True
        self._changed.set()

    async def _wait(self, route: str, ready, seconds: float) -> None:
        self.waiting[route] += 1
        try:
            while not ready() and seconds > 0:
                changed = self._changed
                try:
                    async with asyncio.timeout(seconds):
                        await changed.wait()
                except TimeoutError:
                    break
                if self._closing:
                    break
        finally:
            self.waiting[route] -= 1

    async def _changes(self, request: web.Request) -> web.Response:
        self.requests["changes"] += 1
        after = int(request.query.get("after", "0"))
        if request.query.get("boot_id") != self.boot_id:
            after = 0
        if after:
            await self._wait("changes", lambda: self.seq > after, int(request.query.get("wait_ms", "0")) / 1000)
        names = [n for n, a in self.accounts.items() if not after or a["changed"] > after]
        return web.json_response({"boot_id": self.boot_id, "seq": self.seq, "accounts": [
            {"name": n, "state": a["state"], "registered": True, "last_seq": a["last_seq"], "events_boot_id": a["boot"]}
            for n, a in ((n, self.accounts[n]) for n in names)]})

    async def _status(self, request: web.Request) -> web.Response:
        self.requests["status"] += 1
        account = self._account(request.match_info.get("account", "default"))
        return web.json_response({"state": account["state"], "connected": account["state"] == "connected",
                                  "registered": True})

    async def _attach(self, request: web.Request) -> web.Response:
        self.requests["attach"] += 1
        account = self._account(request.match_info["account"])
        return web.json_response({"account": request.match_info["account"], "shard": 0, "state": account["state"]})

    async def _events(self, request: web.Request) -> web.Response:
        self.requests["events"] += 1
        account = self._account(request.match_info.get("account", "default"))
        after = int(request.query.get("after", "0"))
        if request.query.get("boot_id") and request.query["boot_id"] != account["boot"]:
            return web.json_response({"boot_id": account["boot"], "last_seq": account["last_seq"], "events": []})
        wait = int(request.query.get("wait_ms", "0")) / 1000
        await self._wait("events", lambda: any(e["seq"] > after for e in account["events"]), wait)
        events = [e for e in account["events"] if e["seq"] > after]
        return web.json_response({"boot_id": account["boot"], "last_seq": account["last_seq"], "events": events})

    async def _ack(self, request: web.Request) -> web.Response:
        self.requests["ack"] += 1
        account = self._account(request.match_info.get("account", "default"))
        upto = (await request.json())["upto"]
        account["events"] = [e for e in account["events"] if e["seq"] > upto]
        return web.json_response({"acked": upto, "pending": len(account["events"])})


@pytest.fixture
async def stack(aiohttp_client, tmp_path):
    """The app with ACCOUNTS_N accounts (default included) in front of a JournalWorker, every account showing a QR
    (not linked: a poll of each account's /status would come every second)."""
    settings = Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_RUN_DIR": str(tmp_path / "run"),
                                  "WA_API_KEY": KEY, "WA_MAX_ACCOUNTS": str(ACCOUNTS_N)})
    worker = JournalWorker("qr")
    await worker.start(settings.worker_socket)
    client = await aiohttp_client(create_app(settings))
    for i in range(1, ACCOUNTS_N):
        res = await client.post("/accounts", json={"name": f"a{i:03d}"}, headers=AUTH)
        assert res.status == 201, await res.text()
    runtime = client.app[ACCOUNTS]
    await until(lambda: all(runtime.get(n).link.state == "qr" for n in runtime.names()))
    yield client, worker, runtime
    await client.close()  # the gateway first: none of its requests is left waiting on a worker that shuts down
    await worker.stop()


def stored(client, account: str) -> list[dict]:
    return [e for e in client.app[DATABASE].call(event_log.after, 0, account=account)
            if e["type"] == "session.status"]


async def test_an_idle_gateway_holds_one_request_for_all_its_accounts(stack):
    client, worker, runtime = stack
    assert len(runtime.names()) == ACCOUNTS_N
    await asyncio.sleep(2.5)  # past the hot reads of the accounts' first events
    before = sum(worker.requests.values())
    await asyncio.sleep(1.5)
    # One long-poll in all (GET /changes), however many accounts: no /status poll, no /events long-poll each.
    assert sum(worker.requests.values()) - before <= 1, worker.requests
    assert worker.waiting["events"] == 0 and worker.waiting["changes"] == 1, (worker.waiting, worker.requests)
    # A state change reaches the account's link through that one request.
    worker.set_state("a007", "connecting")
    await until(lambda: runtime.get("a007").link.state == "connecting")
    assert runtime.get("a008").link.state == "qr"


async def test_an_event_of_an_idle_account_is_stored_at_once_and_its_reader_stays_hot_for_a_while(stack):
    client, worker, runtime = stack
    await asyncio.sleep(2.5)  # every reader idle
    worker.push("a011", {"type": "session.status", "state": "connected"})
    await until(lambda: len(stored(client, "a011")) == 1)  # the watcher's nudge: read with wait=0
    await until(lambda: worker.accounts["a011"]["events"] == [])  # stored, then acknowledged
    # Right after a batch the account's reader long-polls its own journal: the next event needs no nudge.
    await until(lambda: worker.waiting["events"] == 1)
    changes = worker.requests["changes"]
    worker.push("a011", {"type": "session.status", "state": "connecting"})
    await until(lambda: len(stored(client, "a011")) == 2)
    assert worker.requests["changes"] - changes <= 2
    await until(lambda: worker.waiting["events"] == 0, timeout=6)  # then idle again
    assert stored(client, "a012") == []


async def test_a_shard_that_stops_answering_makes_its_accounts_unknown_and_a_new_boot_is_read_from_zero(stack):
    client, worker, runtime = stack
    socket_path = client.app[ACCOUNTS].settings.worker_socket
    await worker.stop()
    await until(lambda: all(runtime.get(n).link.state is None for n in runtime.names()))
    again = JournalWorker("connected")  # the worker restarted: a new boot, new journals (numbers from 1 again)
    again.push("a020", {"type": "session.status", "state": "connected"})
    await again.start(socket_path)
    try:
        await until(lambda: runtime.get("a020").link.state == "connected", timeout=10)
        await until(lambda: len(stored(client, "a020")) == 1)
        # accounts the new boot does not hold open (yet) stay unknown; those it lists come back
        assert runtime.get("a021").link.state is None
        again.set_state("a021", "qr")
        await until(lambda: runtime.get("a021").link.state == "qr")
    finally:
        await again.stop()
