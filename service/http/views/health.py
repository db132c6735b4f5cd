"""Health for humans (``/health``) and for orchestrators (``/health/live``, ``/health/ready``)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections import Counter
from typing import Any, NamedTuple

import structlog
from aiohttp import web

from service import __version__
from service.errors import ApiError, Forbidden, NotFound, Unauthorized
from service.http.appkeys import (
    ACCOUNTS,
    AUTHENTICATED,
    DATABASE,
    DRAIN,
    MONITOR,
    SCOPE,
    STARTED_AT,
    WEBHOOKS,
)
from service.http.views.context import forward
from service.programs.supervision import SupervisorMonitor, WorkerSnapshot
from service.runtime.accounts import Account, Elsewhere
from service.states import RECOVERING, UNKNOWN_STATE, WorkerState
from service.store import accounts
from service.store import probe as store_probe
from service.store import stats as store_stats
from service.store.db import Database, store_errors

log = structlog.get_logger("gateway.health")

STATUS_TIMEOUT = 3.0
STORE_TIMEOUT = 2.0  # seconds the store's write probe may take to commit
# A probe this recent (seconds) answers for the next /health calls too: the open endpoint must not turn
# every request into a write. Callers that arrive while a probe is in flight share it.
STORE_REUSE = 1.0


class Session(NamedTuple):
    """An account's session as the health answers see it."""

    state: str
    error: str | None  # the last error (with a key only: it can carry a number or a host)
    link: dict[str, Any] | None  # while connected (the worker's link-monitor.js)
    unreachable: dict[str, Any] | None  # in state whatsapp_unreachable: {"cause", "detail", ...}


async def _whatsapp_state(request: web.Request, account: Account | None = None) -> Session:
    """An account's session (``default`` unless given): its state, last error, link and, when WhatsApp
    cannot be reached, why."""
    account = account or request.app[ACCOUNTS].get("default")
    if account is None:  # a cluster: another instance serves default
        return Session("elsewhere", None, None, None)
    try:
        async with asyncio.timeout(STATUS_TIMEOUT):
            status = await account.worker.status()
    except ApiError as exc:
        return Session(UNKNOWN_STATE, exc.message, None, None)
    except TimeoutError:
        return Session(UNKNOWN_STATE, "the worker did not answer in time", None, None)
    link, unreachable = status.get("link"), status.get("unreachable")
    return Session(status.get("state", UNKNOWN_STATE), status.get("last_error"),
                   link if isinstance(link, dict) else None,
                   unreachable if isinstance(unreachable, dict) else None)


def _unreachable_problem(session: Session) -> tuple[str, str] | None:
    """WhatsApp cannot be reached: the code and a message naming the cause (never the host: open probe)."""
    if session.state != WorkerState.WHATSAPP_UNREACHABLE:
        return None
    cause = (session.unreachable or {}).get("cause", "unknown")
    return "whatsapp_unreachable", f"WhatsApp cannot be reached ({cause}); the worker keeps retrying"


def _link_problem(wa_state: str, link: dict[str, Any] | None) -> tuple[str, str] | None:
    """Why a session that says connected does not demonstrably work: (code, message), or None.
    The messages carry only durations, never a number or a path (the probes are open)."""
    if wa_state != "connected" or link is None:
        return None
    if link.get("alive") is False:
        why = link.get("message") or link.get("reason") or "no frames from WhatsApp"
        return "whatsapp_link_dead", f"the WhatsApp link is dead: {why}; the worker reconnects"
    if link.get("events_stuck"):
        held = (link.get("buffering_ms") or 0) / 1000
        return "whatsapp_events_stuck", f"Baileys has held back events for {held:.1f} s"
    return None


class _StoreProbe:
    """The last write probe of one database: its answer, when it ended, and the one in flight."""

    def __init__(self) -> None:
        self.task: asyncio.Task[dict[str, Any]] | None = None
        self.answer: dict[str, Any] | None = None
        self.ended = 0.0
        self.writable: bool | None = None  # as last logged: a change is logged once, not every call

    async def run(self, database: Database) -> dict[str, Any]:
        answer: dict[str, Any]
        try:
            await database.run(store_probe.write, time.time())
            answer = {"writable": True}
        except sqlite3.Error as exc:  # the message names the problem (locked, read-only, full), never a path
            answer = {"writable": False, "error": (str(exc) or type(exc).__name__)[:200]}
        except Exception as exc:  # noqa: BLE001 - reported, not raised: /health answers regardless
            # PostgreSQL's messages may name a host or a server path: its SQLSTATE says what failed.
            sqlstate = getattr(exc, "sqlstate", None)
            answer = {"writable": False, "error": type(exc).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")}
        self.answer, self.ended = answer, time.monotonic()
        return answer


_PROBES: weakref.WeakKeyDictionary[Database, _StoreProbe] = weakref.WeakKeyDictionary()


async def _store_state(request: web.Request) -> dict[str, Any]:
    """``{"writable": true}`` when a real write committed within ``STORE_TIMEOUT`` through the app's
    database (its writer thread, lock and group commit), else ``{"writable": false, "error": ...}``."""
    database = request.app.get(DATABASE)
    if database is None:
        return {"writable": False, "error": "the store is not open"}
    probe = _PROBES.setdefault(database, _StoreProbe())
    if probe.answer is not None and time.monotonic() - probe.ended < STORE_REUSE:
        answer = probe.answer
    else:
        if probe.task is None or probe.task.done():  # a probe still stuck is waited on, not queued again
            probe.task = asyncio.create_task(probe.run(database), name="health:store-probe")
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                answer = await asyncio.shield(probe.task)
        except TimeoutError:
            answer = {"writable": False, "error": f"no commit within {STORE_TIMEOUT:g} s"}
    if answer["writable"] != probe.writable:
        probe.writable = answer["writable"]
        if answer["writable"]:
            log.info("health.store_writable")
        else:
            log.error("health.store_unwritable", error=answer["error"])
    return answer


def _slow_or_failing() -> tuple[type[BaseException], ...]:
    """What a store read that must not hang or fail /health may raise: a timeout, or the store's errors."""
    return (TimeoutError, *store_errors())


async def _webhook_summary(request: web.Request) -> dict[str, Any] | None:
    """The webhook backlog per endpoint, or None when the store does not answer in time (every read waits
    on the one writer thread, so a stuck store must not hang or fail /health)."""
    if WEBHOOKS not in request.app:
        return {}
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            return await request.app[WEBHOOKS].summary()
    except _slow_or_failing():
        return None


async def _conversation_problems(request: web.Request) -> dict[str, Any] | None:
    """Accounts whose conversations show damage (store/stats.py): contacts' messages undecryptable in the
    last hour, sent messages without a delivery receipt past the bound. None when the store is slow."""
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            return await request.app[DATABASE].run(store_stats.conversation_problems, time.time())
    except _slow_or_failing():
        return None


async def health(request: web.Request) -> web.Response:
    """Open to anyone, so without a valid API key it says only states, never details: no phone
    number, no QR, no error text (an error message can carry a number or a path)."""
    detailed = request.get(AUTHENTICATED, False)
    # The store's probe (and, for details, the webhook backlog) run beside the worker and supervisord look-ups.
    store = asyncio.create_task(_store_state(request))
    backlog = asyncio.create_task(_webhook_summary(request)) if detailed else None
    problems = asyncio.create_task(_conversation_problems(request))
    monitor = request.app[MONITOR]
    snap = await monitor.refresh()
    session = await _whatsapp_state(request)
    wa_state, link = session.state, session.link
    reasons = _default_reasons(snap, session, detailed)
    store_state = await store
    if not store_state["writable"]:
        reasons.append("store is not writable" + (f": {store_state['error']}" if detailed else ""))
    states = [wa_state, *await _other_states(request)]
    reasons += _shard_reasons(monitor)
    conversations = await problems or {}
    reasons += _conversation_reasons(conversations, detailed)
    body = _summary(request, reasons, snap, wa_state, states)
    if session.unreachable is not None:  # the cause only: the detail can name a host
        body["whatsapp"]["unreachable"] = {"cause": session.unreachable.get("cause")}
    _add_cluster(body, request.app[ACCOUNTS].cluster_view(), detailed)
    if backlog is None:
        return web.json_response(body)
    body |= _details(request, snap, wa_state, link)
    if session.unreachable is not None:
        body["whatsapp"]["unreachable"] = session.unreachable
    body |= {
        "store": store_state,
        # Per endpoint: pending and failed (dead-lettered) deliveries, and whether it is configured.
        "webhooks": await backlog,  # None when the store did not answer in time
        # Accounts with undecryptable messages (last hour) or sent messages without a delivery receipt.
        "conversations": conversations,
    }
    return web.json_response(body)


def _default_reasons(snap: WorkerSnapshot, session: Session, detailed: bool) -> list[str]:
    """Why the first worker shard or ``default``'s WhatsApp session is not well (the texts with a key only)."""
    reasons = []
    if snap.state != "RUNNING":
        detail = (snap.error or snap.description or snap.spawn_error) if detailed else None
        reasons.append(f"worker is {snap.state}" + (f": {detail}" if detail else ""))
    if session.state not in ("connected", "elsewhere"):
        detail = session.error if detailed else None
        cause = f" ({session.unreachable.get('cause')})" if session.unreachable else ""
        reasons.append(f"whatsapp is {session.state}{cause}" + (f": {detail}" if detail else ""))
    problem = _link_problem(session.state, session.link)
    if problem:
        reasons.append(problem[1])
    return reasons


def _known_state(account: Account) -> str:
    """An account's WhatsApp state as its link holds it: each worker shard's one change watch keeps it current
    (service/runtime/shard_watch.py), so a health answer costs no request per account (at 300 accounts, asking
    each one's worker made /health's p99 2.4 s)."""
    return account.link.state or UNKNOWN_STATE


async def _other_states(request: web.Request) -> list[str]:
    """The WhatsApp state of every account served here but ``default``."""
    runtime = request.app[ACCOUNTS]
    return [_known_state(a) for a in (runtime.get(n) for n in runtime.names() if n != "default") if a]


def _shard_reasons(monitor: SupervisorMonitor) -> list[str]:
    """Every worker shard but the first (``_default_reasons`` says that one) that is not RUNNING."""
    return [f"worker shard {n} is {shard.state}" for n, shard in enumerate(monitor.shards[1:], start=1)
            if shard.state != "RUNNING"]


def _conversation_reasons(conversations: dict[str, Any], detailed: bool) -> list[str]:
    """The accounts that received messages they could not decrypt in the last hour (named with a key only)."""
    broken = sorted(a for a, found in conversations.items() if found["undecryptable_last_hour"])
    if not broken:
        return []
    return [f"{len(broken)} account(s) received messages that could not be decrypted in the last hour"
            + (f": {', '.join(broken)}" if detailed else "")]


def _summary(request: web.Request, reasons: list[str], snap: WorkerSnapshot, wa_state: str,
             states: list[str]) -> dict[str, Any]:
    """The answer anyone gets: states only."""
    monitor = request.app[MONITOR]
    return {
        "status": "ok" if not reasons else "degraded",
        "reasons": reasons,
        "uptime_seconds": round(time.monotonic() - request.app[STARTED_AT], 3),
        "version": __version__,
        "worker": {"state": snap.state},
        "whatsapp": {"state": wa_state},
        # Every account by WhatsApp state, every worker shard by supervisord state.
        "accounts": dict(Counter(states)),
        "shards": [{"name": monitor.name(n), "state": shard.state} for n, shard in enumerate(monitor.shards)],
    }


def _add_cluster(body: dict[str, Any], view: dict[str, Any] | None, detailed: bool) -> None:
    """In a cluster: this instance and the accounts it serves; with a key, every instance too."""
    if view is not None:
        body["instance"] = {"id": view["instance"], "accounts": view["owns"]}
        if detailed:
            body["cluster"] = {"lease_ttl_s": view["lease_ttl_s"], "instances": view["instances"]}


def _details(request: web.Request, snap: WorkerSnapshot, wa_state: str,
             link: dict[str, Any] | None) -> dict[str, Any]:
    """What an admin key adds to the worker, the session and the shards: pids, usage, restarts, the link."""
    monitor = request.app[MONITOR]
    runtime = request.app[ACCOUNTS]
    rss, cpu = monitor.process_usage()
    dog = snap.watchdog
    now = time.time()
    return {
        "worker": {
            "state": snap.state,
            "pid": snap.pid,
            "uptime_seconds": (
                round(now - snap.started_at, 3)
                if snap.state == "RUNNING" and snap.started_at else None
            ),
            "rss_bytes": rss,
            "cpu_percent": cpu,
            "restarts": snap.restarts,
            "exit_status": snap.exit_status,
            "watchdog": {
                "restarts": dog.restarts,
                "next_delay_seconds": dog.next_delay,
                "last_restart_at": dog.last_restart_at,
                "last_error": dog.last_error,
            },
        },
        "whatsapp": {"state": wa_state, "link": link},
        "shards": [
            {"name": monitor.name(n), "state": shard.state, "pid": shard.pid, "restarts": shard.restarts,
             "rss_bytes": monitor.process_usage(n)[0], "accounts": runtime.on_shard(n)}
            for n, shard in enumerate(monitor.shards)
        ],
    }


async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _cluster_ready(request: web.Request) -> web.Response:
    """In a cluster an instance is ready unless a linked account it serves is on its way back (its worker
    reconnecting or restarting). It takes any account's requests (sends go into the shared outbox), so an
    account waiting for a QR, logged out or failed must not take the instance, and with several such
    accounts every instance, out of the load balancer."""
    runtime = request.app[ACCOUNTS]
    if request.app[DRAIN].draining:
        return web.json_response({"status": "not_ready", "error": {"code": "shutting_down",
                                  "message": "The gateway is shutting down."}}, status=503,
                                 headers={"Retry-After": str(request.app[DRAIN].retry_after)})
    served = [a for a in (runtime.get(n) for n in runtime.names()) if a is not None]
    states = [_known_state(a) for a in served]
    body = {"status": "ready", "accounts": len(states), "whatsapp": dict(Counter(states))}
    # only an account on its way back is looked up in the store: one query per such account, not per account
    recovering = [a.name for a, state in zip(served, states, strict=True) if state in RECOVERING]
    linked = await asyncio.gather(*(request.app[DATABASE].run(accounts.is_linked, name) for name in recovering))
    returning = [name for name, was in zip(recovering, linked, strict=True) if was]
    if returning:
        body |= {"status": "not_ready", "error": {"code": "whatsapp_not_connected",
                                                   "message": f"{len(returning)} linked account(s) reconnecting"}}
        return web.json_response(body, status=503)
    return web.json_response(body)


async def ready(request: web.Request) -> web.Response:
    """Ready when the gateway and ``default`` (or ``?account=NAME``) can send: its worker shard is
    RUNNING, WhatsApp is connected and the link demonstrably works. Never while the gateway drains.
    In a cluster without ``?account=``: the instance (``_cluster_ready``); with it, the account's own
    instance answers."""
    name = request.query.get("account", "default")
    if "account" in request.query:
        # Naming an account needs a key for it: an open probe must not tell which account names exist.
        scope = request.get(SCOPE)
        if scope is None and not request.get(AUTHENTICATED, False):
            raise Unauthorized("?account= needs an API key for that account (the plain probe needs none).")
        if scope is not None and scope != name:
            raise Forbidden("This API key is scoped to another account.")
    runtime = request.app[ACCOUNTS]
    account = runtime.lookup(name)
    if account is None:
        raise NotFound("No account with this name.", code="account_not_found")
    if isinstance(account, Elsewhere) and "account" in request.query:  # its own instance answers
        return await forward(request, account)
    if runtime.clustered and "account" not in request.query:
        return await _cluster_ready(request)
    # Elsewhere only in a cluster, which was answered above (forwarded, or the instance's readiness).
    assert isinstance(account, Account)
    snap = request.app[MONITOR].shards[account.shard]
    drain = request.app[DRAIN]
    if drain.draining:  # SIGTERM: stop routing here at once (no need to ask the worker)
        body = {"status": "not_ready", "worker": snap.state, "whatsapp": account.link.state or UNKNOWN_STATE,
                "error": {"code": "shutting_down", "message": "The gateway is shutting down."}}
        return web.json_response(body, status=503, headers={"Retry-After": str(drain.retry_after)})
    session = await _whatsapp_state(request, account)
    wa_state = session.state
    body = {"status": "ready", "worker": snap.state, "whatsapp": wa_state}
    # STARTING is supervisord's first startsecs (3 s) of a worker that is up: once its WhatsApp link is
    # connected and alive (checked below) it can send, so readiness does not wait those seconds out.
    problem: tuple[str, str] | None
    if snap.state not in ("RUNNING", "STARTING"):
        problem = ("worker_not_running", f"the worker is {snap.state}")
    elif wa_state != "connected":
        problem = _unreachable_problem(session) or ("whatsapp_not_connected", f"WhatsApp is {wa_state}")
    else:
        problem = _link_problem(wa_state, session.link)
    if problem is None:
        return web.json_response(body)
    code, message = problem
    body |= {"status": "not_ready", "error": {"code": code, "message": message}}
    return web.json_response(body, status=503)
