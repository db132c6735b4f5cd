"""The public URL map, in one place.

Every per-account route exists twice: under ``/accounts/{account}`` for any account, and at its
original path (``/status``, ``/send``, ...) for ``default``, so the seed's callers keep working.
"""

from __future__ import annotations

from aiohttp import web

from service.http.views import account_keys as keys
from service.http.views import (
    accounts,
    docs,
    events,
    health,
    messages,
    metrics,
    qr,
    session,
    status_page,
    stream,
    webhooks,
)

# (method, path, handler) of every route that acts on one account.
PER_ACCOUNT = (
    ("GET", "/status", session.status),
    ("GET", "/qr", qr.qr),
    ("POST", "/connect", session.connect),
    ("POST", "/disconnect", session.disconnect),
    ("POST", "/send", messages.send),
    ("GET", "/messages", messages.list_messages),
    ("GET", "/messages/{id}", messages.get_message),
    ("DELETE", "/messages/{id}", messages.cancel),
    ("GET", "/events", events.list_events),
    ("GET", "/events/stream", stream.stream),
)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/health", health.health)
    app.router.add_get("/health/live", health.live)
    app.router.add_get("/health/ready", health.ready)
    # The contract (service/http/openapi.py): every route here must have its Op there (tests/test_openapi.py).
    app.router.add_get("/openapi.json", docs.openapi_json)  # any valid key
    app.router.add_get("/docs", docs.page)  # open: a static page that asks for the key
    app.router.add_get("/metrics", metrics.metrics)  # admin key, or anyone with WA_METRICS_PUBLIC=true
    app.router.add_get("/", status_page.status_page)  # open: the status page, which asks for the key too
    for method, path, handler in PER_ACCOUNT:
        app.router.add_route(method, path, handler)
    app.router.add_get("/accounts", accounts.list_accounts)
    app.router.add_post("/accounts", accounts.create)
    app.router.add_get("/accounts/{account}", accounts.get)
    app.router.add_delete("/accounts/{account}", accounts.delete)
    app.router.add_post("/accounts/{account}/keys", keys.create_key)  # admin key only (middlewares.py)
    app.router.add_get("/accounts/{account}/keys", keys.list_keys)
    app.router.add_delete("/accounts/{account}/keys/{id}", keys.revoke_key)
    for method, path, handler in PER_ACCOUNT:
        app.router.add_route(method, "/accounts/{account}" + path, handler)
    # An account's own webhooks (not in PER_ACCOUNT: /webhooks/... stays the admin's global view).
    # The delivery routes come before /webhooks/{id} so that "deliveries" is never taken for an id.
    app.router.add_get("/accounts/{account}/webhooks", webhooks.list_account_webhooks)
    app.router.add_post("/accounts/{account}/webhooks", webhooks.create_account_webhook)
    app.router.add_post("/accounts/{account}/webhooks/test", webhooks.ping_webhooks)
    app.router.add_get("/accounts/{account}/webhooks/deliveries", webhooks.list_deliveries)
    app.router.add_post("/accounts/{account}/webhooks/deliveries/retry", webhooks.retry_failed)
    app.router.add_get("/accounts/{account}/webhooks/deliveries/{id}", webhooks.get_delivery)
    app.router.add_post("/accounts/{account}/webhooks/deliveries/{id}/retry", webhooks.retry_delivery)
    app.router.add_delete("/accounts/{account}/webhooks/{id}", webhooks.delete_account_webhook)
    app.router.add_post("/accounts/{account}/webhooks/{id}/rotate-secret", webhooks.rotate_account_webhook_secret)
    app.router.add_post("/webhooks/test", webhooks.ping_webhooks)  # admin key only (middlewares.py)
    app.router.add_get("/webhooks/deliveries", webhooks.list_deliveries)
    app.router.add_post("/webhooks/deliveries/retry", webhooks.retry_failed)
    app.router.add_get("/webhooks/deliveries/{id}", webhooks.get_delivery)
    app.router.add_post("/webhooks/deliveries/{id}/retry", webhooks.retry_delivery)
