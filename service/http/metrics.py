"""Prometheus metrics (``GET /metrics``): one ``CollectorRegistry`` per app, in ``app[METRICS]``.

Why per app and not prometheus_client's global ``REGISTRY``: a process may hold several apps (the tests
build dozens), and metrics registered globally would mix their numbers and refuse a second registration.

Two kinds of numbers, each taken where it is true:
- **State, read at scrape time** by ``StateCollector`` (no counter beside the truth that could drift from it):
  messages by status, queue depth and the oldest waiting message's age, pending and dead-lettered webhook
  deliveries (the store, through the app's ``Database``, in one transaction: service/store/stats.py); each
  account's WhatsApp state and reconnects (its link's view, service/runtime/link.py, fed by the worker's durable
  ``session.status`` events and a state poll); worker restarts and the watchdog's restarts (the supervision
  snapshots, service/programs/supervision.py).
- **Events, observed when they happen**: HTTP latency (the request middleware), send latency (a dispatcher
  hook fed by ``outbox.advance``, which reports each step once per message, whichever of the worker's ack or a
  receipt got there first), webhook outcomes (the delivery loop, after the store committed its decision).

Names follow Prometheus' conventions: the ``wa_gateway_`` prefix, base units (seconds), ``_total`` on
counters. Label values are bounded: account names (at most ``WA_MAX_ACCOUNTS``), fixed sets of statuses,
states, methods and outcomes, the route *pattern* (never the raw path), the HTTP status code, supervisord
process names, and the webhook endpoint as ``delivery.endpoint_label`` names it (a global one by its public
URL, credentials and query hidden; an account's by its ``whe_`` id). Never a phone number, message id or key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)

from service.states import GATEWAY_STATES, MESSAGE_STATUSES, UNKNOWN_STATE
from service.store import stats
from service.webhooks.endpoint_names import endpoint_label

if TYPE_CHECKING:  # the app's parts the collector reads, named for the types only (no import of the whole app)
    from service.http.sse_hub import EventHub
    from service.programs.supervision import SupervisorMonitor
    from service.runtime.accounts import AccountRuntime
    from service.store.db import Database

log = structlog.get_logger("gateway.metrics")

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # text/plain; version=0.0.4; charset=utf-8
PREFIX = "wa_gateway_"
# Seconds from acceptance to the server's ack, and from the ack to the delivery receipt: a message may wait
# for the governor, a reconnect or a retry, so the buckets reach minutes.
SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_ROUTE = "other"
# What the workers hold in memory, as their GET /accounts lists it: {account: {queue: {size, bound}}}.
WorkerQueues = dict[str, dict[str, Any]]
STORE_TIMEOUT = 2.0  # seconds a scrape waits for the store; then its metrics are left out of that scrape


def route_of(request: web.Request) -> str:
    """The matched route's pattern (``/accounts/{account}/send``), or ``other`` for what matched none (404,
    405): a raw path is unbounded and may carry a phone number or an id."""
    resource = request.match_info.route.resource  # None for aiohttp's 404/405 (a SystemRoute)
    return resource.canonical if resource is not None else OTHER_ROUTE


class StateCollector:
    """Reads the state at each scrape. ``database``, ``accounts`` and ``monitor`` are getters, so that the
    collector exists from ``create_app`` on while what it reads is opened later (app.cleanup_ctx); anything
    not open yet is left out. ``collect`` blocks on the store: call it off the event loop (``Metrics.render``
    does, through ``asyncio.to_thread`` in the view)."""

    def __init__(self, *, database: Callable[[], Database | None], accounts: Callable[[], AccountRuntime | None],
                 monitor: Callable[[], SupervisorMonitor | None], streams: Callable[[], EventHub | None] = lambda: None,
                 queues: Callable[[], WorkerQueues] = dict, store_timeout: float = STORE_TIMEOUT):
        self._database = database
        self._accounts = accounts
        self._monitor = monitor
        self._streams = streams
        self._queues = queues
        self._store_timeout = store_timeout

    def describe(self) -> list[Metric]:
        return []  # the names are checked when they are collected; nothing to reserve up front

    def collect(self) -> Iterable[Metric]:
        yield from self._store_metrics()
        yield from self._stream_metrics()
        yield from self._queue_metrics()
        yield from self._account_metrics()
        yield from self._supervision_metrics()

    # --- the store --------------------------------------------------------------------------------
    def _snapshot(self) -> dict[str, Any] | None:
        database = self._database()
        if database is None:
            return None
        future = database.submit(stats.snapshot)
        try:
            snapshot: dict[str, Any] = future.result(self._store_timeout)
            return snapshot
        except (FutureTimeout, CancelledError):
            future.cancel()  # not run at all if the writer thread has not taken it yet
            log.warning("metrics.store_timeout", timeout_s=self._store_timeout)
        except Exception as exc:  # noqa: BLE001 - a scrape reports the store as down, it does not fail
            log.warning("metrics.store_failed", error=type(exc).__name__)
        return None

    def _store_metrics(self) -> Iterable[Metric]:
        snap = self._snapshot()
        up = GaugeMetricFamily(PREFIX + "store_up", "1 when the store answered this scrape in time; 0 when the "
                                                    "store-derived metrics are missing from it.")
        up.add_metric([], 1 if snap is not None else 0)
        yield up
        if snap is None:
            return
        runtime = self._accounts()
        accounts = set(runtime.names()) if runtime is not None else set()
        accounts |= {account for account, _, _ in snap["messages"]}
        counts = {(account, status): n for account, status, n in snap["messages"]}
        messages = GaugeMetricFamily(PREFIX + "outbox_messages",
                                     "Outbound messages in the store by account and status.",
                                     labels=["account", "status"])
        depth = GaugeMetricFamily(PREFIX + "outbox_queue_depth",
                                  "Messages waiting to be sent (queued or sending), by account.", labels=["account"])
        age = GaugeMetricFamily(PREFIX + "outbox_oldest_queued_age_seconds",
                                "Seconds since the oldest waiting message was accepted (0 when none waits).",
                                labels=["account"])
        now = time.time()
        for account in sorted(accounts):
            for status in MESSAGE_STATUSES:
                messages.add_metric([account, status], counts.get((account, status), 0))
            waiting, oldest = snap["waiting"].get(account, (0, None))
            depth.add_metric([account], waiting)
            age.add_metric([account], max(0.0, now - oldest) if oldest is not None else 0.0)
        yield from (messages, depth, age)
        undecryptable = GaugeMetricFamily(
            PREFIX + "messages_undecryptable_last_hour",
            "Contacts' messages reported undecryptable (message.undecryptable) in the last hour, by account.",
            labels=["account"])
        unreceipted = GaugeMetricFamily(
            PREFIX + "outbox_sent_without_receipt",
            "Sent messages still without a delivery receipt WA_DELIVERY_RECEIPT_BOUND after the server took them.",
            labels=["account"])
        problems = snap.get("problems", {})
        for account in sorted(accounts | set(problems)):
            found = problems.get(account, {})
            undecryptable.add_metric([account], found.get("undecryptable_last_hour", 0))
            unreceipted.add_metric([account], found.get("sent_without_receipt", 0))
        yield from (undecryptable, unreceipted)
        # Two configured URLs that differ only in credentials or query show as one endpoint: their numbers add up.
        held: dict[str, dict[str, int]] = {}
        for endpoint, account in snap["endpoints"]:  # an active endpoint shows, with 0 when nothing is held
            held.setdefault(endpoint_label(endpoint, account), {"pending": 0, "failed": 0})
        for endpoint, account, status, n in snap["deliveries"]:
            held.setdefault(endpoint_label(endpoint, account), {"pending": 0, "failed": 0})[status] += n
        dead = GaugeMetricFamily(PREFIX + "webhook_dead_letters",
                                 "Webhook deliveries dead-lettered (failed) and held for a redrive, by endpoint.",
                                 labels=["endpoint"])
        pending = GaugeMetricFamily(PREFIX + "webhook_pending_deliveries",
                                    "Webhook deliveries not delivered yet (pending, retrying), by endpoint.",
                                    labels=["endpoint"])
        for label in sorted(held):
            dead.add_metric([label], held[label]["failed"])
            pending.add_metric([label], held[label]["pending"])
        yield from (dead, pending)

    # --- the accounts' dispatchers -------------------------------------------------------------------
    def _account_metrics(self) -> Iterable[Metric]:
        runtime = self._accounts()
        if runtime is None:
            return
        state = GaugeMetricFamily(PREFIX + "whatsapp_connection_state",
                                  "The account's WhatsApp session state: 1 for the current one, 0 for the others.",
                                  labels=["account", "state"])
        reconnects = CounterMetricFamily(
            PREFIX + "whatsapp_reconnects",
            "Times the account's WhatsApp connection came back: the worker's session events into connected after "
            "another state, for an account that was connected before (a QR or a logout starts over).",
            labels=["account"])
        waiting = GaugeMetricFamily(PREFIX + "send_waiting_callers",
                                    "POST /send callers waiting for their message's outcome (?wait), per account.",
                                    labels=["account"])
        for name in runtime.names():
            account = runtime.get(name)
            if account is None:
                continue
            link = account.link
            current = link.state if link.state in GATEWAY_STATES else UNKNOWN_STATE
            for option in GATEWAY_STATES:
                state.add_metric([name, option], 1 if option == current else 0)
            reconnects.add_metric([name], link.reconnects)
            waiting.add_metric([name], account.dispatcher.waiting_callers)
        yield from (state, reconnects, waiting)

    # --- the SSE streams (service/http/sse_hub.py) -------------------------------------------------------------
    def _stream_metrics(self) -> Iterable[Metric]:
        hub = self._streams()
        if hub is None:
            return
        open_ = GaugeMetricFamily(PREFIX + "sse_streams", "Event streams (GET /events/stream) open now.")
        open_.add_metric([], hub.streams)
        cap = GaugeMetricFamily(PREFIX + "sse_streams_max", "The most event streams open at once (WA_SSE_MAX).")
        cap.add_metric([], hub.max_total)
        yield from (open_, cap)

    # --- the workers' in-memory queues (their GET /accounts, read by the view before this) -------------------
    def _queue_metrics(self) -> Iterable[Metric]:
        by_account = self._queues()
        if not by_account:
            return
        size = GaugeMetricFamily(PREFIX + "worker_queue_size",
                                 "What a worker holds per account in memory or in a bounded store, by queue.",
                                 labels=["account", "queue"])
        bound = GaugeMetricFamily(PREFIX + "worker_queue_bound", "The bound of that queue (absent: none of its own).",
                                  labels=["account", "queue"])
        for account in sorted(by_account):
            for queue, value in sorted(by_account[account].items()):
                if not isinstance(value, dict) or not isinstance(value.get("size"), int):
                    continue
                size.add_metric([account, queue], value["size"])
                if isinstance(value.get("bound"), int):
                    bound.add_metric([account, queue], value["bound"])
        yield from (size, bound)

    # --- supervisord -----------------------------------------------------------------------------------
    def _supervision_metrics(self) -> Iterable[Metric]:
        monitor = self._monitor()
        if monitor is None:
            return
        restarts = CounterMetricFamily(
            PREFIX + "worker_restarts",
            "Restarts of a worker shard (a new pid) seen by this gateway since it started.", labels=["process"])
        watchdog = CounterMetricFamily(
            PREFIX + "watchdog_restarts",
            "Restarts of a FATAL worker shard by the watchdog (service/programs/watchdog.py) since it started.",
            labels=["process"])
        for shard, snap in enumerate(monitor.shards):
            restarts.add_metric([monitor.name(shard)], snap.restarts)
            watchdog.add_metric([monitor.name(shard)], snap.watchdog.restarts)
        yield from (restarts, watchdog)


class Metrics:
    """The app's registry, its instruments, and the hooks the app wires to them (see the module doc)."""

    def __init__(self, *, database: Callable[[], Database | None] = lambda: None,
                 accounts: Callable[[], AccountRuntime | None] = lambda: None,
                 monitor: Callable[[], SupervisorMonitor | None] = lambda: None,
                 streams: Callable[[], EventHub | None] = lambda: None):
        self.registry = CollectorRegistry(auto_describe=False)
        self.http_duration = Histogram(
            PREFIX + "http_request_duration_seconds", "HTTP requests by route pattern, method and status code.",
            ["route", "method", "status"], buckets=HTTP_BUCKETS, registry=self.registry)
        self.accepted_to_sent = Histogram(
            PREFIX + "message_accepted_to_sent_seconds",
            "Seconds from POST /send accepting a message to WhatsApp's server ack, per account.",
            ["account"], buckets=SEND_BUCKETS, registry=self.registry)
        self.sent_to_delivered = Histogram(
            PREFIX + "message_sent_to_delivered_seconds",
            "Seconds from WhatsApp's server ack to the delivery receipt, per account.",
            ["account"], buckets=SEND_BUCKETS, registry=self.registry)
        self.webhook_deliveries = Counter(
            PREFIX + "webhook_deliveries",
            "Webhook delivery decisions by endpoint and result: delivered, retry_scheduled (an attempt failed and "
            "will be tried again), dead_lettered.",
            ["endpoint", "result"], registry=self.registry)
        # Set by the /metrics view before each render (service/http/views/metrics.py).
        self.worker_queues: WorkerQueues = {}
        self.state = StateCollector(database=database, accounts=accounts, monitor=monitor, streams=streams,
                                    queues=lambda: self.worker_queues)
        self.registry.register(self.state)
        ProcessCollector(registry=self.registry)  # the gateway process: CPU, memory, open fds (Linux)

    # --- hooks -------------------------------------------------------------------------------------
    def observe_request(self, request: web.Request, status: int, seconds: float) -> None:
        method = request.method if request.method in METHODS else "other"
        self.http_duration.labels(route_of(request), method, str(status)).observe(seconds)

    def message_advanced(self, account: str, row: dict[str, Any], reached: tuple[str, ...]) -> None:
        """A dispatcher's ``on_advance``: ``row`` reached ``reached`` just now (service/store/outbox.py advance)."""
        if "sent" in reached and row.get("sent_at") is not None:
            self.accepted_to_sent.labels(account).observe(max(0.0, row["sent_at"] - row["created_at"]))
        if "delivered" in reached and row.get("delivered_at") is not None and row.get("sent_at") is not None:
            self.sent_to_delivered.labels(account).observe(max(0.0, row["delivered_at"] - row["sent_at"]))

    def webhook_outcome(self, endpoint: str, result: str) -> None:
        """The delivery loop's ``on_outcome`` (service/webhooks/delivery.py EndpointWorker)."""
        self.webhook_deliveries.labels(endpoint, result).inc()

    # --- exposition --------------------------------------------------------------------------------
    def render(self) -> bytes:
        """The Prometheus text format (0.0.4). Blocks on the store: run it off the event loop."""
        return generate_latest(_WithoutCreated(self.registry))


class _WithoutCreated:
    """The registry without prometheus_client's ``*_created`` samples: an OpenMetrics notion that the 0.0.4
    text format can only show as one more gauge per counter and histogram child, doubling the series for
    nothing a dashboard uses. Filtered here rather than with ``disable_created_metrics()``, which would change
    every registry of the process."""

    def __init__(self, registry: CollectorRegistry):
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for metric in self._registry.collect():  # fresh Metric objects on every collect: safe to trim
            if metric.type in ("counter", "histogram"):
                metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric
