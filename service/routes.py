"""The public URL map, in one place."""

from __future__ import annotations

from aiohttp import web

from .views import health, messages, session


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
