"""Every ``web.AppKey`` of the gateway, declared once."""

from __future__ import annotations

from aiohttp import web

from .api_keys import ApiKeys
from .dispatch import Dispatcher
from .events import EventConsumer
from .notify import Notifier
from .settings import Settings
from .store.db import Database
from .supervision import SupervisorMonitor
from .webhooks.delivery import WebhookService
from .worker_client import WorkerClient

SETTINGS = web.AppKey("settings", Settings)
STARTED_AT = web.AppKey("started_at", float)
WORKER = web.AppKey("worker", WorkerClient)
MONITOR = web.AppKey("monitor", SupervisorMonitor)
EVENTS = web.AppKey("events", EventConsumer)
API_KEYS = web.AppKey("api_keys", ApiKeys)
DATABASE = web.AppKey("database", Database)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
# Rung after every commit that added to the event log (the SSE stream and webhooks wait on it).
NOTIFIER = web.AppKey("notifier", Notifier)
WEBHOOKS = web.AppKey("webhooks", WebhookService)
# Per request: whether a valid API key came with it (the open /health paths show more when so).
AUTHENTICATED = web.RequestKey("authenticated", bool)
