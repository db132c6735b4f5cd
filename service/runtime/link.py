"""One account's WhatsApp link as the gateway knows it: the one owner of the mirror of the worker's state.

    worker session.status events (EventConsumer, in journal order) -> AccountLink.on_event
    the shard's GET /changes long-poll (service/runtime/shard_watch.py)  -> AccountLink.set, .registered
    a send the worker refused for want of a connection (the dispatcher)   -> AccountLink.dropped

The events bring changes within milliseconds; the shard's watcher covers a worker that died (no event says so:
its long-poll fails, and the state becomes unknown). A link that no watcher feeds (a dispatcher of its own, in
tests) polls GET /status itself once ``start``ed (every second, 5 s while connected). From
the mirror come: whether sends may go now (``connected``), whether a new send is refused as ``not_linked``
(``refuses_sends``), the store's ``linked`` flag (kept for the account's next start and for the other
instances of a cluster), and the count of reconnects for /metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from service.errors import ApiError
from service.runtime.tasks import cancel_and_wait
from service.runtime.worker_client import WorkerApi
from service.states import UNLINKED, WaitReason, WorkerState
from service.store import accounts, waiting
from service.store.db import Database

log = structlog.get_logger("gateway.link")

STATUS_TIMEOUT = 5.0  # seconds one poll of the worker's state may take


class AccountLink:
    def __init__(self, db: Database, worker: WorkerApi, *, account: str, poll_interval: float = 1.0,
                 clock: Callable[[], float] = time.time):
        self.db = db
        self.worker = worker
        self.account = account
        self.poll_interval = poll_interval
        self.clock = clock
        self.state: str | None = None  # the worker's WhatsApp state, None while unknown
        # From the worker's last answer: whether the device is linked (None: not known, e.g. stopped).
        self.registered: bool | None = None
        # Called when the link becomes connected (the dispatcher sends what waited for it).
        self.on_connected: list[Callable[[], None]] = []
        # Times the WhatsApp link came back (GET /metrics): see _count_reconnect.
        self.reconnects = 0
        self._was_connected = False  # linked and seen connected: the next return to connected is a reconnect
        self._event_state: str | None = None  # the state of the last session.status event
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.state == WorkerState.CONNECTED

    # --- life ------------------------------------------------------------------------------
    def start(self) -> None:
        """Poll the worker's state here: only for a link no shard watcher feeds (the runtime's links are fed)."""
        self._task = asyncio.create_task(self._watch(), name=f"link-{self.account}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _watch(self) -> None:
        """Poll the worker's state (events bring changes sooner; this covers a worker that died)."""
        while True:
            try:
                await self.refresh()
            except ApiError:
                self.set(None)
            except Exception:
                log.exception("link.state_poll_failed", account=self.account)
            await asyncio.sleep(self.poll_interval if not self.connected else self.poll_interval * 5)

    # --- what changes it -------------------------------------------------------------------
    async def refresh(self) -> str | None:
        """Ask the worker now (one try: a worker that is starting answers ApiError)."""
        status = await self.worker.poll_status(STATUS_TIMEOUT)
        registered = status.get("registered")
        self.registered = registered if isinstance(registered, bool) else None
        self.set(status.get("state"))
        return self.state

    def set(self, state: str | None) -> None:
        if state == self.state:
            return
        was = self.state
        self.state = state
        log.info("link.whatsapp_state", account=self.account, state=state, was=was)
        # What waits for this link says why (store/waiting.py); connected: the dispatcher's reasons take over.
        self.db.submit(waiting.label, self.account, self.wait_reason())
        if state == WorkerState.CONNECTED:
            if self._event_state is None:  # no event yet: it was connected before this gateway started
                self._was_connected = True
            self.db.submit(accounts.set_linked, self.account, True, self.clock())
            for wake in self.on_connected:
                wake()
        elif state == WorkerState.LOGGED_OUT:
            self.db.submit(accounts.set_linked, self.account, False, self.clock())

    def on_event(self, event: dict[str, Any], result: dict[str, Any]) -> None:
        """A worker event, already stored (service/runtime/worker_events.py, in journal order): a
        ``session.status`` sets the state; one stored just now (not a repeat of the hand-over) may count
        as a reconnect."""
        if event.get("type") != "session.status":
            return
        if result.get("event") is not None:
            self._count_reconnect(event.get("state"))
        self.set(event.get("state"))

    def dropped(self, *, worker_away: bool) -> None:
        """A send was refused for want of a connection: the worker is away (state unknown), or it said it is
        not connected (it is reconnecting, whatever the last poll saw)."""
        if worker_away:
            self.set(None)
        elif self.connected:
            self.set(WorkerState.CONNECTING)

    def _count_reconnect(self, state: str | None) -> None:
        """A reconnect is a ``session.status`` event into ``connected`` after another state, for an account
        that was connected before (by an earlier event, or by the first poll when no event came yet); a QR or
        a logout starts over (not linked: the next connect is a pairing). Counted from the worker's journal
        only, each event once (repeats are not stored): the state poll may see a worker that came back (or a
        pairing that finished) before its events arrive, and a poll gap (the worker did not answer) is no
        reconnect at all."""
        if state == WorkerState.CONNECTED:
            if self._was_connected and self._event_state != WorkerState.CONNECTED:
                self.reconnects += 1
            self._was_connected = True
        elif state in UNLINKED:
            self._was_connected = False
        self._event_state = state

    # --- what it decides -------------------------------------------------------------------
    def wait_reason(self) -> str | None:
        """Why a message for this account waits now because of the link (None while connected)."""
        if self.connected:
            return None
        if self.state in UNLINKED:
            return WaitReason.NOT_LINKED
        if self.state == WorkerState.WHATSAPP_UNREACHABLE:
            return WaitReason.WHATSAPP_UNREACHABLE
        return WaitReason.NOT_CONNECTED

    async def refuses_sends(self) -> bool:
        """True when nothing would ever send a message now: the account is logged out, or was never paired
        (the worker shows a QR, says its device is not registered, e.g. a first connect that cannot reach
        WhatsApp, or is stopped and this gateway never saw it linked). Connected answers at once; otherwise
        the mirror may be stale (a pairing that just finished, a logout), so the worker is asked first; a
        worker that is restarting does not refuse (the message waits for it)."""
        if self.connected:
            return False
        try:
            state = await self.refresh()
        except ApiError:
            return False
        if state in UNLINKED or self.registered is False:
            return True
        if state == WorkerState.STOPPED:
            return not await self.db.run(accounts.is_linked, self.account)
        return False
