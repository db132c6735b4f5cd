"""The public URL map, in one place."""

from __future__ import annotations

from aiohttp import web

from .views import events, health, messages, session, stream, webhooks


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/health", health.health)
    app.router.add_get("/health/live", health.live)
    app.router.add_get("/health/ready", health.ready)
    app.router.add_get("/status", session.status)
    app.router.add_post("/connect", session.connect)
    app.router.add_post("/disconnect", session.disconnect)
    app.router.add_post("/send", messages.send)
    app.router.add_get("/messages", messages.list_messages)
    app.router.add_get("/messages/{id}", messages.get_message)
    app.router.add_delete("/messages/{id}", messages.cancel)
    app.router.add_get("/events", events.list_events)
    app.router.add_get("/events/stream", stream.stream)
    app.router.add_get("/webhooks/deliveries", webhooks.list_deliveries)
    app.router.add_post("/webhooks/deliveries/retry", webhooks.retry_failed)
    app.router.add_get("/webhooks/deliveries/{id}", webhooks.get_delivery)
    app.router.add_post("/webhooks/deliveries/{id}/retry", webhooks.retry_delivery)
