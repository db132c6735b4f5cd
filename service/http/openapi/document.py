"""The whole document: every route of the table with an ``Op``, the webhooks, the shared components.

Two sources, nothing else: the route table (``service/http/route_table.py``: every ``PER_ACCOUNT`` route
at its original path and under ``/accounts/{account}``) and the pydantic models of
``service/http/models/``, through the ``Op`` of each handler (``operations/``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from service import __version__
from service.http.openapi.operation import operation
from service.http.openapi.operations import OPERATIONS
from service.http.openapi.schemas import Schemas
from service.http.openapi.webhook_events import webhooks
from service.http.route_table import ROUTES, Route
from service.http.validation import PHONE_EXAMPLE

RESPONSE_HEADERS = {
    "X-Request-ID": ("string", "Yours if you sent a valid one, else a new one."),
    "Location": ("string", "Where the created or accepted resource is."),
    "Idempotent-Replayed": ("string", "`true` when the answer is the original message of this Idempotency-Key."),
    "Retry-After": ("integer", "Seconds to wait before retrying."),
    "Cache-Control": ("string", "`no-store`; media: `private, max-age=86400` (the bytes under an id never change)."),
    "ETag": ("string", "`\"<sha256>\"` of the media: send it back as If-None-Match (304) or If-Range."),
    "Accept-Ranges": ("string", "`bytes`: one Range is answered 206."),
    "Content-Range": ("string", "`bytes <first>-<last>/<size>` (206), `bytes */<size>` (416)."),
    "Content-Disposition": ("string", "`attachment; filename=\"...\"`, with `filename*=utf-8''...` when not ASCII."),
}
DESCRIPTION = (
    "A self-hosted WhatsApp gateway. Every error is `{\"error\": {\"code\", \"message\"}}` "
    "(4xx: bad input, nothing changed; 5xx: our failure). Input is strict: a body field or a query "
    "parameter an operation does not document is 400 `unknown_field`, naming it. Every endpoint but the probes "
    "and the pages (/ and /docs) needs a key (X-API-Key or Authorization: Bearer). "
    "From SIGTERM until the process exits (at most WA_SHUTDOWN_TIMEOUT) the gateway drains: "
    "every operation but /health/live answers 503 `shutting_down` with Retry-After (seconds), "
    "/health/ready 503 `not_ready`; requests already running finish, and a message accepted "
    "before is sent later, never lost. Retry after Retry-After. While the gateway's disk is "
    "full, an operation that must write answers 507 `insufficient_storage` with Retry-After: "
    "nothing of it was stored."
)


def _paths(schemas: Schemas, routes: Iterable[Route]) -> dict[str, dict[str, Any]]:
    """Each documented route's operation, by path and method. A handler served at several paths is named
    after itself the first time, ``account_<name>`` under ``/accounts/{account}``, then ``<name>_2``, ..."""
    paths: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for route in routes:
        op = OPERATIONS.get(route.handler)
        if op is None:
            continue
        name = route.handler.__name__
        op_id = ("account_" + name) if route.path.startswith("/accounts/{account}") and name in seen else name
        if op_id in seen:
            op_id = f"{op_id}_{seen[op_id] + 1}"
        seen[op_id] = seen.get(op_id, 0) + 1
        seen.setdefault(name, 1)
        paths.setdefault(route.path, {})[route.method.lower()] = operation(schemas, route.method, route.path, op,
                                                                           op_id)
    return paths


def _apply_settings(paths: dict[str, dict[str, Any]], schemas: Schemas, max_message_chars: int,
                    send_wait_max: float) -> None:
    """The bounds that are settings: ``?wait=`` of a send, and the length of its message."""
    for path, ops in paths.items():
        for param in ops.get("post", {}).get("parameters", []) if path.endswith("/send") else ():
            if param.get("name") == "wait":
                param["schema"] = {**param["schema"], "maximum": send_wait_max}
    send = schemas.components.get("SendRequest")
    if send is not None:
        send["properties"]["message"] |= {"minLength": 1, "maxLength": max_message_chars}
        send["properties"]["phone_number"] |= {"examples": [PHONE_EXAMPLE]}


def _components(schemas: Schemas) -> dict[str, Any]:
    return {
        "schemas": dict(sorted(schemas.components.items())),
        "securitySchemes": {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                       "description": "WA_API_KEY (or the generated key file) is an admin key; wak_... keys "
                                      "are scoped to one account."},
            "Bearer": {"type": "http", "scheme": "bearer", "description": "The same key as a Bearer token."},
        },
        "parameters": {"X-Request-ID": {
            "name": "X-Request-ID", "in": "header", "required": False,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
            "description": "Echoed back and bound to every log line of the request."}},
        "headers": {n: {"schema": {"type": t}, "description": d} for n, (t, d) in RESPONSE_HEADERS.items()},
    }


def build(routes: Iterable[Route], *, max_message_chars: int = 65536, send_wait_max: float = 60.0) -> dict[str, Any]:
    """The document for ``routes`` (in their order; routes whose handler has no ``Op`` are left out)."""
    schemas = Schemas()
    paths = _paths(schemas, routes)
    webhook_docs = webhooks(schemas)
    _apply_settings(paths, schemas, max_message_chars, send_wait_max)
    return {
        "openapi": "3.1.0",
        "info": {"title": "wa-gateway", "version": __version__, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in dict.fromkeys(op.tag for op in OPERATIONS.values())],
        "security": [{"ApiKey": []}, {"Bearer": []}],
        "paths": paths,
        "webhooks": webhook_docs,
        "components": _components(schemas),
    }


@functools.lru_cache(maxsize=8)
def _cached(max_message_chars: int, send_wait_max: float) -> dict[str, Any]:
    return build(ROUTES, max_message_chars=max_message_chars, send_wait_max=send_wait_max)


def document(max_message_chars: int = 65536, send_wait_max: float = 60.0) -> dict[str, Any]:
    """The document of the shipped route table (cached: it depends only on these two settings)."""
    return _cached(max_message_chars, send_wait_max)
