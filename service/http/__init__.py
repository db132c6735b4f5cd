"""The public HTTP API: the app factory, routes, middlewares, request/response models, the OpenAPI
document, the SSE hub, metrics, the drain, and the views (one module per resource) and the status page.

Depends on ``service.runtime`` (accounts, dispatch), ``service.auth``, ``service.webhooks`` and
``service.store``; nothing below imports from here.
"""
