"""A product backend (aiohttp) that serves its web frontend WhatsApp through wa-gateway.

The frontend never sees the gateway or its key: it calls this backend's ``/api/whatsapp/...``, which calls
the gateway with the client, and the gateway's webhooks come back to ``/webhooks/whatsapp``, verified and
stored once per ``webhook-id`` (deliveries are at least once).

    WA_GATEWAY_URL=http://127.0.0.1:3001 WA_API_KEY=... WA_WEBHOOK_SECRET=whsec_... \\
        python examples/aiohttp_backend.py          # then point a webhook at http://<this host>:8080/webhooks/whatsapp

WA_WEBHOOK_SECRET here is the secret the webhook's creation showed (an account webhook's own), or the
gateway's WA_WEBHOOK_SECRET for a WA_WEBHOOK_URL endpoint.

Tested by tests/test_python_client.py against a running sandbox gateway.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web

from wa_gateway_client import AsyncClient, InvalidSignature, WebhookVerifier, errors

GATEWAY = web.AppKey("gateway", AsyncClient)
VERIFIER = web.AppKey("verifier", WebhookVerifier)
INBOX = web.AppKey("inbox", dict)  # webhook-id -> event; a real backend writes to its database


def create_app(gateway_url: str, api_key: str, webhook_secret: str) -> web.Application:
    app = web.Application(middlewares=[gateway_errors])
    app[VERIFIER] = WebhookVerifier(webhook_secret)
    app[INBOX] = {}

    async def gateway(app: web.Application) -> AsyncIterator[None]:
        async with AsyncClient(gateway_url, api_key=api_key) as client:
            app[GATEWAY] = client
            yield

    app.cleanup_ctx.append(gateway)
    app.router.add_get("/api/whatsapp/status", status)
    app.router.add_post("/api/whatsapp/connect", connect)
    app.router.add_post("/api/whatsapp/send", send)
    app.router.add_get("/api/whatsapp/messages", messages)
    app.router.add_get("/api/whatsapp/inbox", inbox)
    app.router.add_post("/webhooks/whatsapp", webhook)
    return app


@web.middleware
async def gateway_errors(request: web.Request, handler):
    """The gateway's own error, with its status and code, for the frontend to show."""
    try:
        return await handler(request)
    except errors.GatewayError as exc:
        status = exc.status if 400 <= exc.status < 600 else 502
        return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=status)


async def status(request: web.Request) -> web.Response:
    # qr_image is a PNG data URL: the frontend shows it in an <img> until state is "connected".
    return web.json_response((await request.app[GATEWAY].status()).model_dump(mode="json"))


async def connect(request: web.Request) -> web.Response:
    return web.json_response((await request.app[GATEWAY].connect()).model_dump(mode="json"))


async def send(request: web.Request) -> web.Response:
    body = await request.json()
    # The frontend may send its own key (e.g. a form's id) so that a double click sends once.
    message = await request.app[GATEWAY].send(body["phone_number"], body["message"],
                                              idempotency_key=request.headers.get("Idempotency-Key"), wait=0)
    return web.json_response(message.model_dump(mode="json"), status=202)


async def messages(request: web.Request) -> web.Response:
    page = await request.app[GATEWAY].messages(direction=request.query.get("direction", "out"), limit=50)
    return web.json_response([m.model_dump(mode="json") for m in page.items])


async def webhook(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        event = request.app[VERIFIER].verify(body, request.headers)
    except InvalidSignature:
        return web.json_response({"error": "bad signature"}, status=401)
    request.app[INBOX].setdefault(request.headers["webhook-id"], event)  # a repeat is stored once
    return web.Response(status=204)


async def inbox(request: web.Request) -> web.Response:
    received = [e.message for e in request.app[INBOX].values() if e.message is not None]
    return web.json_response([m.model_dump(mode="json") for m in received])


if __name__ == "__main__":
    web.run_app(create_app(os.environ.get("WA_GATEWAY_URL", "http://127.0.0.1:3001"), os.environ["WA_API_KEY"],
                           os.environ["WA_WEBHOOK_SECRET"]), port=int(os.environ.get("PORT", "8080")))
