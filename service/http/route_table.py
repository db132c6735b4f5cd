"""The public URL map as data: every (method, path, handler) the gateway serves, in registration order.

Data rather than calls, so that two readers share it without importing each other: ``routes.py``
registers it on an app, and ``service/http/openapi/`` documents it. Every per-account route exists twice:
under ``/accounts/{account}`` for any account, and at its original path (``/status``, ``/send``, ...) for
``default``, so the seed's callers keep working.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

from aiohttp import web

from service.http.views import account_keys as keys
from service.http.views import (
    accounts,
    chats,
    contacts,
    docs,
    event_log,
    groups,
    health,
    mcp,
    media,
    message_actions,
    messages,
    metrics,
    qr,
    session,
    status_page,
    stream,
    webhooks,
)

# A view: what aiohttp calls for a request (the event stream answers a StreamResponse).
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Route(NamedTuple):
    method: str
    path: str
    handler: Handler
    # A GET that answers HEAD too (aiohttp's add_get); the per-account GETs never did, and still do not.
    head: bool = False


def _get(path: str, handler: Handler) -> Route:
    return Route("GET", path, handler, head=True)


# (method, path, handler) of every route that acts on one account.
PER_ACCOUNT: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/status", session.status),
    ("GET", "/qr", qr.qr),
    ("POST", "/connect", session.connect),
    ("POST", "/disconnect", session.disconnect),
    ("POST", "/send", messages.send),
    ("GET", "/messages", messages.list_messages),
    ("GET", "/messages/search", chats.search),  # before /messages/{id}: "search" is no message id
    ("GET", "/messages/{id}", messages.get_message),
    ("DELETE", "/messages/{id}", messages.cancel),
    ("POST", "/messages/{id}/reaction", message_actions.react),
    ("POST", "/messages/{id}/edit", message_actions.edit),
    ("POST", "/messages/{id}/revoke", message_actions.revoke),
    ("POST", "/messages/{id}/read", message_actions.read),
    ("POST", "/chats/{phone}/presence", message_actions.presence),
    ("GET", "/chats", chats.list_chats),
    ("GET", "/chats/{chat}/messages", chats.chat_messages),
    ("POST", "/chats/{chat}/read", chats.read),
    ("GET", "/contacts", contacts.list_contacts),
    ("GET", "/contacts/{phone}", contacts.get_contact),
    ("GET", "/media/{id}", media.get_media),
    ("GET", "/groups", groups.list_groups),
    ("POST", "/groups", groups.create),
    ("POST", "/groups/join", groups.join),  # before /groups/{id}/...: "join" is no group id
    ("GET", "/groups/{id}", groups.get),
    ("PATCH", "/groups/{id}", groups.update),
    ("POST", "/groups/{id}/participants", groups.participants),
    ("GET", "/groups/{id}/invite", groups.invite),
    ("DELETE", "/groups/{id}/invite", groups.revoke_invite),
    ("POST", "/groups/{id}/leave", groups.leave),
    ("GET", "/events", event_log.list_events),
    ("GET", "/events/stream", stream.stream),
)

ROUTES: tuple[Route, ...] = (
    _get("/health", health.health),
    _get("/health/live", health.live),
    _get("/health/ready", health.ready),
    # The contract (service/http/openapi/): every route here must have its Op there (tests/app/test_openapi.py).
    _get("/openapi.json", docs.openapi_json),  # any valid key
    _get("/docs", docs.page),  # open: a static page that asks for the key
    _get("/metrics", metrics.metrics),  # admin key, or anyone with WA_METRICS_PUBLIC=true
    # The MCP server's Streamable HTTP (service/mcp/): any valid key; its tools call this API with that key.
    Route("POST", "/mcp", mcp.mcp_message),
    Route("GET", "/mcp", mcp.mcp_stream),
    Route("DELETE", "/mcp", mcp.mcp_close),
    _get("/", status_page.status_page),  # open: the status page, which asks for the key too
    *(Route(method, path, handler) for method, path, handler in PER_ACCOUNT),
    _get("/accounts", accounts.list_accounts),
    Route("POST", "/accounts", accounts.create),
    _get("/accounts/{account}", accounts.get),
    Route("PATCH", "/accounts/{account}", accounts.update),  # admin key only (middlewares.py)
    Route("DELETE", "/accounts/{account}", accounts.delete),
    Route("POST", "/accounts/{account}/keys", keys.create_key),  # admin key only (middlewares.py)
    _get("/accounts/{account}/keys", keys.list_keys),
    Route("DELETE", "/accounts/{account}/keys/{id}", keys.revoke_key),
    Route("PATCH", "/accounts/{account}/keys/{id}", keys.update_key),  # its MCP rails (service/mcp/)
    *(Route(method, "/accounts/{account}" + path, handler) for method, path, handler in PER_ACCOUNT),
    # An account's own webhooks (not in PER_ACCOUNT: /webhooks/... stays the admin's global view).
    # The delivery routes come before /webhooks/{id} so that "deliveries" is never taken for an id.
    _get("/accounts/{account}/webhooks", webhooks.list_account_webhooks),
    Route("POST", "/accounts/{account}/webhooks", webhooks.create_account_webhook),
    Route("POST", "/accounts/{account}/webhooks/test", webhooks.ping_webhooks),
    _get("/accounts/{account}/webhooks/deliveries", webhooks.list_deliveries),
    Route("POST", "/accounts/{account}/webhooks/deliveries/retry", webhooks.retry_failed),
    _get("/accounts/{account}/webhooks/deliveries/{id}", webhooks.get_delivery),
    Route("POST", "/accounts/{account}/webhooks/deliveries/{id}/retry", webhooks.retry_delivery),
    Route("DELETE", "/accounts/{account}/webhooks/{id}", webhooks.delete_account_webhook),
    Route("POST", "/accounts/{account}/webhooks/{id}/rotate-secret", webhooks.rotate_account_webhook_secret),
    Route("POST", "/webhooks/test", webhooks.ping_webhooks),  # admin key only (middlewares.py)
    _get("/webhooks/deliveries", webhooks.list_deliveries),
    Route("POST", "/webhooks/deliveries/retry", webhooks.retry_failed),
    _get("/webhooks/deliveries/{id}", webhooks.get_delivery),
    Route("POST", "/webhooks/deliveries/{id}/retry", webhooks.retry_delivery),
)
