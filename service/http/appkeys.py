"""Every ``web.AppKey`` of the gateway, declared once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from service.auth.admin_key import ApiKeys
from service.auth.scoped_keys import ScopedKeys
from service.http.drain import Drain
from service.http.metrics import Metrics
from service.http.pairing_limit import PairingLimit
from service.http.sse_hub import EventHub
from service.media.intake import Intake
from service.media.store import MediaStore
from service.programs.supervision import SupervisorMonitor
from service.runtime.accounts import AccountRuntime
from service.runtime.notify import Notifier
from service.runtime.worker_client import WorkerClient
from service.settings import Settings
from service.store.db import Database
from service.webhooks.address import Lookup
from service.webhooks.delivery import WebhookService

SETTINGS = web.AppKey("settings", Settings)
STARTED_AT = web.AppKey("started_at", float)
WORKER = web.AppKey("worker", WorkerClient)
MONITOR = web.AppKey("monitor", SupervisorMonitor)
API_KEYS = web.AppKey("api_keys", ApiKeys)
DATABASE = web.AppKey("database", Database)
ACCOUNTS = web.AppKey("accounts", AccountRuntime)
# Rung after every commit that added to the event log (the SSE stream and webhooks wait on it).
NOTIFIER = web.AppKey("notifier", Notifier)
# The one reader of the event log for every SSE stream, and the streams' caps (service/http/sse_hub.py).
STREAMS = web.AppKey("streams", EventHub)
WEBHOOKS = web.AppKey("webhooks", WebhookService)
# The webhook address policy's resolver seam (service/webhooks/address.py): set by tests only.
WEBHOOK_LOOKUP = web.AppKey[Lookup]("webhook_lookup")
# SIGTERM's drain (service/http/drain.py): set from the signal on, new requests are answered 503 shutting_down.
DRAIN = web.AppKey("drain", Drain)
# The app's own Prometheus registry and instruments (service/http/metrics.py): per app, never process-global.
METRICS = web.AppKey("metrics", Metrics)
# The keys scoped to one account, cached in memory (service/auth/scoped_keys.py); invalidate() after any
# change to account_keys or to the registry (a deleted account's keys must stop working at once).
SCOPED_KEYS = web.AppKey("scoped_keys", ScopedKeys)
# Per request: whether an admin API key came with it (the open /health paths show more when so; a
# key scoped to one account does not count: it sees what anyone sees).
AUTHENTICATED = web.RequestKey("authenticated", bool)
# Per request with a valid key: the account its key is scoped to, or None for an admin key. Not set
# on an open probe called without a key: read it with request.get(SCOPE) only behind AUTHENTICATED,
# or on routes that require a key (all but /health, /health/live, /health/ready).
SCOPE = web.RequestKey[str | None]("scope")
# Where media lives (service/media/factory.py: WA_MEDIA_STORE), and the intake that stores a /send's media in it.
MEDIA_STORE = web.AppKey[MediaStore]("media_store")
MEDIA_INTAKE = web.AppKey("media_intake", Intake)
# How often each account may ask WhatsApp for a pairing code (service/http/pairing_limit.py).
PAIRING_LIMIT = web.AppKey("pairing_limit", PairingLimit)
# The MCP server's door (service/mcp/endpoint.py mounts it; views/mcp.py calls it): absent while MCP is off.
MCP_ENDPOINT = web.AppKey[Callable[[web.Request], Awaitable[web.StreamResponse]]]("mcp_endpoint")
