"""The published contract: an OpenAPI 3.1 document built from the route table and the models.

Two sources, nothing else: the routes an app has registered (``routes.py``: every ``PER_ACCOUNT`` route
at its original path and under ``/accounts/{account}``) and the pydantic models of ``models.py``. What a
route needs beyond its models (a summary, its query parameters with their bounds, its status codes and
the error codes it can answer) is one ``Op`` per handler in ``OPERATIONS``. A route whose handler has no
``Op`` is left out of the document, and tests/test_openapi.py fails: document a route when you add it.

Served as ``GET /openapi.json`` (any valid key, scoped keys too) and read by the page at ``GET /docs``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web
from pydantic import BaseModel

from service import __version__
from service.http import models
from service.http import qr as qr_drawing
from service.http.drain import CODE as DRAIN_CODE
from service.http.middlewares import (
    ADMIN_ONLY_PREFIXES,
    ADMIN_ONLY_ROUTES,
    ANY_KEY_PATHS,
    DEFAULT_EXACT,
    DEFAULT_TREES,
    DRAIN_EXEMPT,
    OPEN_PATHS,
    PUBLIC_PAGES,
)
from service.http.validation import ACCOUNT_NAME_EXAMPLE, PHONE_EXAMPLE
from service.http.views import account_keys as keys
from service.http.views import (
    accounts,
    docs,
    events,
    health,
    messages,
    qr,
    session,
    status_page,
    stream,
    webhooks,
)
from service.http.views import metrics as metrics_view
from service.states import (
    DELIVERY_STATUSES,
    FAILURE_REASONS,
    MESSAGE_STATUSES,
    MessageStatus,
)
from service.store import event_log as event_store

REF = "#/components/schemas/{model}"
JSON = "application/json"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # query or header
    schema: dict
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Op:
    summary: str
    tag: str
    ok: dict[int, Any]  # status -> a model, a list of models (any of them), or a media type's raw content
    errors: dict[int, tuple[str, ...]] = field(default_factory=dict)  # beyond those added by the rules below
    body: type[models.RequestModel] | None = None
    body_optional: bool = False  # no body at all (or an empty one) is {}
    params: tuple[Param, ...] = ()
    worker: bool = False  # asks the account's worker: its outages and errors pass through
    writes: bool = False  # writes the store (or a file): 507 insufficient_storage while the disk is full
    description: str = ""
    headers: dict[int, tuple[str, ...]] = field(default_factory=dict)  # response headers by status


# --- query parameters and headers ------------------------------------------------------------------

def _limit(maximum: int, default: int) -> Param:
    return Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
                 "Page size.")


CURSOR = Param("cursor", "query", {"type": "string"}, "The next_cursor of the previous page.")
TYPES = Param("types", "query", {"type": "string", "examples": [",".join(event_store.TYPES)]},
              f"Comma-separated event types to keep: {', '.join(event_store.TYPES)}.")
AFTER = Param("after", "query", {"type": "integer", "minimum": 0, "maximum": 2**62, "default": 0},
              "The seq of the last event handled: only later events.")
DELIVERY_QUERY = (
    Param("status", "query", {"type": "string", "enum": list(DELIVERY_STATUSES)}),
    Param("endpoint", "query", {"type": "string"}, "A webhook id (whe_...) or URL, as configured or as listed."),
    _limit(webhooks.MAX_LIMIT, 50), CURSOR,
)
WORKER_ERRORS = {
    404: ("account_not_found",),
    500: ("worker_protocol", "worker_error", "session_store_error"),
    503: ("worker_unavailable", "worker_stopping"),
    504: ("worker_timeout",),
}
BODY_ERRORS = {
    400: ("invalid_json", "invalid_body", "unsupported_transfer_encoding"),
    408: ("request_timeout",),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
}
FAILED_SEND = (*FAILURE_REASONS, MessageStatus.FAILED)

_DEFAULT_NOTE = "At its original path it acts on the `default` account; under `/accounts/{account}` on that one."

OPERATIONS: dict[Callable, Op] = {
    # health (open: no key needed; a wrong key is still refused)
    health.health: Op("Health for humans", "Health", {200: models.HealthOut},
                      description="Without a key: states only, generic reasons. With an admin key: pids, "
                                  "restarts, error texts, webhook backlogs, and `store`: whether a real write to "
                                  "the gateway's database committed just now. Degraded is still 200."),
    health.live: Op("Liveness probe", "Health", {200: models.LiveOut}),
    health.ready: Op("Readiness probe", "Health", {200: models.ReadyOut, 503: models.ReadyOut},
                     errors={403: ("forbidden",), 404: ("account_not_found",)}, headers={503: ("Retry-After",)},
                     params=(Param("account", "query", {"type": "string", "default": "default"},
                                   "Whose readiness (default: `default`); naming one needs a key for it."),),
                     description="200 when the account's worker shard is RUNNING, WhatsApp is connected and the "
                                 "link demonstrably works; else 503 with the reason as `error` (`shutting_down`, "
                                 "with Retry-After, from SIGTERM on)."),
    # the session
    session.status: Op("The WhatsApp session's state", "Session", {200: models.SessionStatus}, worker=True,
                       description=_DEFAULT_NOTE),
    qr.qr: Op(
        "The QR code to link the account", "Session",
        {200: {"image/png": {"schema": {"type": "string", "contentMediaType": "image/png",
                                        "contentEncoding": "binary"}},
               "image/svg+xml": {"schema": {"type": "string", "contentMediaType": "image/svg+xml"}},
               "text/plain": {"schema": {"type": "string"}}}},
        params=(Param("format", "query", {"type": "string", "enum": list(qr_drawing.FORMATS), "default": "png"},
                      "png (image/png), svg (image/svg+xml), terminal (text/plain: the code drawn with Unicode "
                      "half blocks, to print in a terminal) or raw (text/plain: the QR payload itself)."),
                Param("background", "query", {"type": "string", "enum": list(qr_drawing.BACKGROUNDS),
                                              "default": "dark"},
                      "format=terminal only: the terminal's background colour, so that the code reads dark on "
                      "light (plain text cannot set it).")),
        errors={400: ("invalid_format", "invalid_background"), 409: ("qr_unavailable",)}, worker=True,
        headers={200: ("Cache-Control",)},
        description="While the account's state is `qr` (after POST /connect): the code to scan in WhatsApp "
                    "(Linked devices). It changes every 20 s or so; it is a secret while valid, so no cache keeps "
                    "it. In another state: 409 `qr_unavailable` with the `state`. " + _DEFAULT_NOTE),
    session.connect: Op("Start the session (and get a QR code)", "Session", {200: models.SessionStatus},
                        body=models.ConnectRequest, body_optional=True, worker=True,
                        description="Starts the session unless it runs. When not linked it waits (up to "
                                    "WA_CONNECT_QR_WAIT) for the first QR: `qr` and `qr_image`. " + _DEFAULT_NOTE),
    session.disconnect: Op("Log out and unlink the device", "Session", {200: models.DisconnectOut},
                           body=models.DisconnectRequest, body_optional=True, worker=True,
                           description=_DEFAULT_NOTE),
    # messages
    messages.send: Op(
        "Send a text message", "Messages", {200: models.MessageOut, 202: models.MessageOut},
        body=models.SendRequest,
        params=(Param("wait", "query", {"type": "number", "minimum": 0},
                      "Seconds to wait for the server ack (default WA_SEND_WAIT, at most WA_SEND_WAIT_MAX)."),
                Param("Idempotency-Key", "header", {"type": "string", "pattern": "^[!-~]{1,255}$"},
                      "The same key within 24 h returns the original message and never sends again.")),
        errors={400: ("invalid_phone_number", "invalid_message", "message_too_long", "invalid_idempotency_key",
                      "invalid_wait"),
                409: ("not_linked", "idempotency_key_reused"), 422: FAILED_SEND, 503: ("outbox_full",)},
        headers={200: ("Location", "Idempotent-Replayed"), 202: ("Location", "Idempotent-Replayed"),
                 503: ("Retry-After",)},
        writes=True,
        description="Commits the message to the outbox, then waits briefly: 200 once WhatsApp acked it, 202 "
                    "while queued. A message that failed is 422 with its reason as the code and its `id`. 507 "
                    "`insufficient_storage` (with Retry-After) while the gateway's disk is full: nothing was "
                    "stored; send the same request again later (with its Idempotency-Key). " + _DEFAULT_NOTE),
    messages.list_messages: Op(
        "List messages", "Messages", {200: models.MessageList},
        params=(Param("direction", "query", {"type": "string", "enum": ["out", "in"], "default": "out"}),
                Param("status", "query", {"type": "string", "enum": list(MESSAGE_STATUSES)}, "direction=out only."),
                Param("phone_number", "query", {"type": "string", "examples": [PHONE_EXAMPLE]}),
                _limit(messages.MAX_LIMIT, 50), CURSOR),
        errors={400: ("invalid_direction", "invalid_status", "invalid_phone_number", "invalid_limit",
                      "invalid_cursor")},
        description="Newest first; pass `next_cursor` back as `cursor`. " + _DEFAULT_NOTE),
    messages.get_message: Op("One message, sent or received", "Messages",
                             {200: [models.MessageOut, models.InboundMessageOut]},
                             errors={404: ("message_not_found",)}, description=_DEFAULT_NOTE),
    messages.cancel: Op("Cancel a queued message", "Messages", {200: models.MessageOut},
                        errors={404: ("message_not_found",), 409: ("not_cancellable",)}, writes=True,
                        description=_DEFAULT_NOTE),
    # events
    events.list_events: Op("Replay the event log", "Events", {200: models.EventPage},
                           params=(AFTER, _limit(events.MAX_LIMIT, 100), TYPES),
                           errors={400: ("invalid_after", "invalid_limit", "invalid_types")},
                           description="Oldest first; ask again with `after=next_after`. " + _DEFAULT_NOTE),
    stream.stream: Op(
        "The event log live (Server-Sent Events)", "Events",
        # OpenAPI 3.1 has `schema` of text/event-stream describe each event (3.2 calls it itemSchema).
        {200: {"text/event-stream": {"schema": {
            "type": "object", "required": ["id", "event", "data"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The seq."},
                "event": {"enum": list(event_store.TYPES)},
                "data": {"type": "string", "contentMediaType": JSON, "contentSchema": {
                    "oneOf": [{"$ref": REF.format(model=m.__name__)} for m in
                              (models.MessageReceivedEvent, models.MessageStatusEvent, models.SessionStatusEvent,
                               models.MessageUndecryptableEvent)]}},
            }}}}},
        params=(Param("after", "query", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
                      "Resume after this seq (as Last-Event-ID)."), TYPES,
                Param("Last-Event-ID", "header", {"type": "string", "pattern": "^[0-9]{0,18}$"},
                      "Resume after this seq; browsers send it by themselves.")),
        errors={400: ("invalid_last_event_id", "invalid_types"), 429: ("too_many_streams",)},
        headers={429: ("Retry-After",)},
        description="Each SSE event: `id` is the seq, `event` the type, `data` the event JSON (the webhook body). "
                    "Without Last-Event-ID or after: only new events. At most WA_SSE_MAX_PER_KEY streams per API key "
                    "and WA_SSE_MAX in all: one more is 429 `too_many_streams` with Retry-After. A stream whose client "
                    "falls far behind is ended; it resumes with Last-Event-ID. " + _DEFAULT_NOTE),
    # accounts and their keys
    accounts.list_accounts: Op("List the accounts", "Accounts", {200: models.AccountList}),
    accounts.create: Op("Create an account", "Accounts", {201: models.AccountOut}, body=models.AccountCreateRequest,
                        errors={400: ("invalid_account_name", "reserved_account_name"),
                                409: ("account_exists", "too_many_accounts")}, writes=True,
                        headers={201: ("Location",)}, description="Then POST /accounts/{account}/connect for its QR."),
    accounts.get: Op("One account", "Accounts", {200: models.AccountOut}),
    accounts.delete: Op("Delete an account", "Accounts", {200: models.AccountDeleted}, worker=True, writes=True,
                        errors={409: ("default_account",)},
                        description="Logs it out at WhatsApp, removes its data and every row it has in the store."),
    keys.create_key: Op("Make a key scoped to the account", "Keys", {201: models.KeyCreated},
                        body=models.KeyCreateRequest, body_optional=True, errors={400: ("invalid_label",)}, writes=True,
                        headers={201: ("Cache-Control",)}, description="The only answer that shows the key."),
    keys.list_keys: Op("List the account's keys", "Keys", {200: models.KeyList}),
    keys.revoke_key: Op("Revoke a key", "Keys", {200: models.KeyOut}, errors={404: ("key_not_found",)}, writes=True),
    # webhooks
    webhooks.list_account_webhooks: Op("List the account's webhooks", "Webhooks", {200: models.WebhookList}),
    webhooks.create_account_webhook: Op(
        "Add a webhook for the account's events", "Webhooks", {201: models.WebhookCreated},
        body=models.WebhookCreateRequest, headers={201: ("Location", "Cache-Control")}, writes=True,
        errors={400: ("invalid_url", "invalid_events", "webhook_url_not_allowed"),
                409: ("webhook_exists", "too_many_webhooks")},
        description="Its host is resolved and every address checked: loopback, private, link-local, unique-local, "
                    "carrier-grade NAT, multicast and the IPv6 forms of those are 400 `webhook_url_not_allowed` "
                    "(unless the operator allows them: WA_WEBHOOK_ALLOW_PRIVATE), as again at every delivery; "
                    "redirects are not followed. The answer shows the webhook's own signing `secret` this once."),
    webhooks.rotate_account_webhook_secret: Op(
        "Rotate a webhook's signing secret", "Webhooks", {200: models.WebhookSecretOut},
        body=models.WebhookRotateRequest, body_optional=True, headers={200: ("Cache-Control",)}, writes=True,
        errors={400: ("invalid_overlap",), 404: ("webhook_not_found",)},
        description="A new secret, shown this once; the old one keeps signing beside it (two signatures in "
                    "`webhook-signature`) for `overlap` seconds (default 86400), so a receiver can switch."),
    webhooks.delete_account_webhook: Op("Remove a webhook", "Webhooks", {200: models.WebhookDeleted},
                                        errors={404: ("webhook_not_found",)}, writes=True),
    webhooks.ping_webhooks: Op(
        "Send a signed test event to webhooks now", "Webhooks", {200: models.WebhookTestOut},
        body=models.WebhookTestRequest, body_optional=True,
        errors={400: ("invalid_url", "invalid_endpoint", "invalid_request", "url_not_allowed"),
                404: ("webhook_not_found",)},
        description="One `webhook.test` event (see `webhooks`) to each target, signed like a real delivery, sent "
                    "at once and only once (not queued, not stored, not retried), with WA_WEBHOOK_TIMEOUT; "
                    "`ok` when it answered 2xx; `status_code`, `error` and `elapsed_ms` with the admin key only "
                    "(a scoped key learns delivered or not). Account webhooks and `url` go only to addresses the "
                    "address policy permits. Targets: `url` (POST /webhooks/test only), or the configured "
                    "`endpoint` (an id, or the URL as configured or listed), or with neither every configured "
                    "webhook: WA_WEBHOOK_URL's and every account's at /webhooks/test, the account's own under "
                    "/accounts/{account}. No webhook at all: empty `results`."),
    webhooks.list_deliveries: Op("List webhook deliveries", "Webhooks", {200: models.DeliveryPage},
                                 params=DELIVERY_QUERY,
                                 errors={400: ("invalid_status", "invalid_limit", "invalid_cursor"),
                                         404: ("endpoint_not_found",)},
                                 description="Newest first. /webhooks/...: every delivery (admin key); under "
                                             "/accounts/{account}: that account's own webhooks only."),
    webhooks.retry_failed: Op("Redrive every failed delivery", "Webhooks", {200: models.RedriveOut},
                              body=models.RedriveRequest, body_optional=True, writes=True,
                              errors={400: ("invalid_endpoint",), 404: ("endpoint_not_found",)}),
    webhooks.get_delivery: Op("One delivery, with the body sent", "Webhooks", {200: models.DeliveryOut},
                              errors={404: ("delivery_not_found",)}),
    webhooks.retry_delivery: Op("Redrive one failed delivery", "Webhooks", {200: models.DeliveryOut},
                                errors={404: ("delivery_not_found",), 409: ("not_failed",)}, writes=True),
    # the contract itself
    docs.openapi_json: Op("This document", "Docs", {200: {JSON: {"schema": {"type": "object"}}}},
                          description="Any valid key, a scoped one too."),
    # operations
    metrics_view.metrics: Op(
        "Prometheus metrics", "Operations",
        {200: {"text/plain": {"schema": {"type": "string"},
                              "example": "wa_gateway_outbox_queue_depth{account=\"default\"} 0.0\n"}}},
        headers={200: ("Cache-Control",)},
        description="The Prometheus text exposition format 0.0.4 (`text/plain; version=0.0.4`): messages by account "
                    "and status, queue depth and the oldest waiting message's age, send latency histograms "
                    "(accepted to sent, sent to delivered), webhook deliveries by result and endpoint, dead "
                    "letters, worker and watchdog restarts, WhatsApp connection state and reconnects per "
                    "account, HTTP latency by route pattern and status. Needs the admin key, unless the gateway "
                    "runs with WA_METRICS_PUBLIC=true: then anyone may read it (a wrong key is still 401)."),
    docs.page: Op("The API page", "Docs", {200: {"text/html": {"schema": {"type": "string"}}}},
                  description="A static page (no key needed to load it) that asks for a key and renders "
                              "/openapi.json."),
    status_page.status_page: Op(
        "The status page", "Docs", {200: {"text/html": {"schema": {"type": "string"}}}},
        headers={200: ("Cache-Control",)},
        description="A static page (no key needed to load it; no data in it) that asks for an API key once, keeps it "
                    "in the browser tab (sessionStorage) and shows, through the API and its live event stream: the "
                    "accounts with their state and phone number, the QR code to scan while an account waits for one, "
                    "the health of every supervised program, recent messages in and out, a form to send a test "
                    "message, and the failed webhook deliveries with a redrive button. It needs an admin key."),
}

WEBHOOK_EVENTS = (models.MessageReceivedEvent, models.MessageStatusEvent, models.SessionStatusEvent,
                  models.MessageUndecryptableEvent, models.WebhookTestEvent)
RESPONSE_HEADERS = {
    "X-Request-ID": ("string", "Yours if you sent a valid one, else a new one."),
    "Location": ("string", "Where the created or accepted resource is."),
    "Idempotent-Replayed": ("string", "`true` when the answer is the original message of this Idempotency-Key."),
    "Retry-After": ("integer", "Seconds to wait before retrying."),
    "Cache-Control": ("string", "`no-store`."),
}


# --- building the document ------------------------------------------------------------------------

class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, dict] = {}

    def ref(self, model: type[BaseModel]) -> dict:
        if model.__name__ not in self.components:
            schema = model.model_json_schema(ref_template=REF)
            self.components.update(schema.pop("$defs", {}))
            self.components[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}


def _access(method: str, path: str) -> str:
    """Who may call it, from the key rules of middlewares.py."""
    if path in OPEN_PATHS or path in PUBLIC_PAGES:
        return "open"
    if path in ANY_KEY_PATHS:
        return "any key"
    if (method, path) in ADMIN_ONLY_ROUTES or path.startswith(ADMIN_ONLY_PREFIXES):
        return "admin key"
    if "{account}" in path:
        return "admin key or a key scoped to this account"
    if path in DEFAULT_EXACT or any(path == t or path.startswith(t + "/") for t in DEFAULT_TREES):
        return "admin key or a key scoped to default"
    return "admin key"


def _errors(method: str, path: str, op: Op) -> dict[int, list[str]]:
    """Every error code the route can answer, by status."""
    codes: dict[int, list[str]] = {}

    def add(more: dict[int, tuple[str, ...]]) -> None:
        for status, names in more.items():
            bucket = codes.setdefault(status, [])
            bucket.extend(n for n in names if n not in bucket)

    access = _access(method, path)
    if path not in PUBLIC_PAGES:
        add({401: ("unauthorized",)})  # no key, or a wrong one (refused on the probes too)
    if access not in ("open", "any key"):
        add({403: ("forbidden",)})  # a scoped key outside its scope
    if "{account}" in path:
        add({404: ("account_not_found",)})
    if op.body is not None:
        add(BODY_ERRORS)
    if op.worker:
        add(WORKER_ERRORS)
    add(op.errors)
    add({500: ("internal_error",)})
    if op.writes:
        add({507: ("insufficient_storage",)})  # the disk is full: nothing stored (middlewares.py)
    if path not in DRAIN_EXEMPT:
        add({503: (DRAIN_CODE,)})  # from SIGTERM on, until the process exits (service/http/drain.py)
    return {s: codes[s] for s in sorted(codes) if s not in op.ok}


def _content(schemas: _Schemas, ok: Any) -> dict:
    if isinstance(ok, dict):
        return ok
    if isinstance(ok, list):
        return {JSON: {"schema": {"anyOf": [schemas.ref(m) for m in ok]}}}
    return {JSON: {"schema": schemas.ref(ok)}}


def _headers(names: tuple[str, ...]) -> dict:
    return {n: {"$ref": f"#/components/headers/{n}"} for n in ("X-Request-ID", *names)}


def _operation(schemas: _Schemas, method: str, path: str, op: Op, op_id: str) -> dict:
    access = _access(method, path)
    out: dict[str, Any] = {
        "operationId": op_id, "summary": op.summary, "tags": [op.tag],
        "description": (op.description + " " if op.description else "") + f"Access: {access}.",
        "x-access": access,
    }
    if access == "open":
        out["security"] = [] if path in PUBLIC_PAGES else [{}, {"ApiKey": []}, {"Bearer": []}]
    params = []
    for name in ("account", "id"):
        if "{" + name + "}" in path:
            schema = {"type": "string"}
            if name == "account":
                schema |= {"pattern": "^[a-z][a-z0-9-]{0,30}[a-z0-9]$", "examples": ["default", ACCOUNT_NAME_EXAMPLE]}
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
    for p in op.params:
        params.append({"name": p.name, "in": p.where, "required": p.required, "schema": p.schema,
                       **({"description": p.description} if p.description else {})})
    params.append({"$ref": "#/components/parameters/X-Request-ID"})
    out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": not op.body_optional,
                              "description": "Optional: no body at all is {}." if op.body_optional else "",
                              "content": {JSON: {"schema": schemas.ref(op.body)}}}
    responses: dict[str, Any] = {}
    for status, ok in op.ok.items():
        responses[str(status)] = {"description": _STATUS_TEXT.get(status, "OK"), "content": _content(schemas, ok),
                                  "headers": _headers(op.headers.get(status, ()))}
    for status, names in _errors(method, path, op).items():
        headers = op.headers.get(status, ())
        if status in (503, 507) and "Retry-After" not in headers:
            headers = (*headers, "Retry-After")  # shutting_down sends it, outbox_full and insufficient_storage too
        responses[str(status)] = {
            "description": "Error codes: " + ", ".join(f"`{n}`" for n in names) + ".",
            "headers": _headers(headers),
            "content": {JSON: {"schema": {"allOf": [schemas.ref(models.ErrorResponse), {
                "type": "object",
                "properties": {"error": {"type": "object", "properties": {"code": {"enum": names}}}},
            }]}}},
            "x-error-codes": names,
        }
    out["responses"] = responses
    return out


_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted: queued, not yet sent", 503: "Not ready"}


def _webhook(schemas: _Schemas, model: type[BaseModel]) -> dict:
    header = {"type": "string"}
    if model is models.WebhookTestEvent:
        description = ("POSTed by POST /webhooks/test (and /accounts/{account}/webhooks/test) to the webhooks it "
                       "names, signed per Standard Webhooks like every event, whatever types the webhook takes; "
                       "sent once and never retried. Verify the signature over the raw body.")
    else:
        description = ("POSTed to every webhook that takes this type, signed per Standard Webhooks; any 2xx is "
                       "delivered, other answers are retried or dead-lettered. Verify the signature over the raw body.")
    return {"post": {
        "summary": model.__doc__.strip() if model.__doc__ else model.__name__,
        "description": description,
        "parameters": [
            {"name": "webhook-id", "in": "header", "required": True, "schema": header,
             "description": "The event id, the same on every retry: drop duplicates by it."},
            {"name": "webhook-timestamp", "in": "header", "required": True, "schema": header,
             "description": "Seconds since the epoch of this attempt."},
            {"name": "webhook-signature", "in": "header", "required": True, "schema": header,
             "description": "`v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with the webhook's secret (an account "
                            "webhook's own; WA_WEBHOOK_SECRET for WA_WEBHOOK_URL); `v1,<a> v1,<b>` while two sign "
                            "(a rotation's overlap)."},
        ],
        "requestBody": {"required": True, "content": {JSON: {"schema": schemas.ref(model)}}},
        "responses": {"2XX": {"description": "Delivered."}},
    }}


def build(router: web.UrlDispatcher, *, max_message_chars: int = 65536, send_wait_max: float = 60.0) -> dict:
    """The document for the routes of ``router`` (skipping HEAD and OPTIONS, and routes without an Op)."""
    schemas = _Schemas()
    paths: dict[str, dict] = {}
    seen: dict[str, int] = {}
    for resource in router.resources():
        path = resource.canonical
        for route in resource:
            method = route.method
            op = OPERATIONS.get(route.handler)
            if method in ("HEAD", "OPTIONS") or op is None:
                continue
            name = route.handler.__name__
            op_id = ("account_" + name) if path.startswith("/accounts/{account}") and name in seen else name
            if op_id in seen:
                op_id = f"{op_id}_{seen[op_id] + 1}"
            seen[op_id] = seen.get(op_id, 0) + 1
            seen.setdefault(name, 1)
            paths.setdefault(path, {})[method.lower()] = _operation(schemas, method, path, op, op_id)
    for path, ops in paths.items():  # the bound of ?wait= is a setting
        for param in ops.get("post", {}).get("parameters", []) if path.endswith("/send") else ():
            if param.get("name") == "wait":
                param["schema"] = {**param["schema"], "maximum": send_wait_max}
    webhook_docs = {m.model_fields["type"].annotation.__args__[0]: _webhook(schemas, m) for m in WEBHOOK_EVENTS}
    for m in WEBHOOK_EVENTS:
        schemas.ref(m)
    send = schemas.components.get("SendRequest")
    if send is not None:  # the bound of message is a setting
        send["properties"]["message"] |= {"minLength": 1, "maxLength": max_message_chars}
        send["properties"]["phone_number"] |= {"examples": [PHONE_EXAMPLE]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wa-gateway", "version": __version__,
            "description": "A self-hosted WhatsApp gateway. Every error is `{\"error\": {\"code\", \"message\"}}` "
                           "(4xx: bad input, nothing changed; 5xx: our failure). Every endpoint but the probes "
                           "and the pages (/ and /docs) needs a key (X-API-Key or Authorization: Bearer). "
                           "From SIGTERM until the process exits (at most WA_SHUTDOWN_TIMEOUT) the gateway drains: "
                           "every operation but /health/live answers 503 `shutting_down` with Retry-After (seconds), "
                           "/health/ready 503 `not_ready`; requests already running finish, and a message accepted "
                           "before is sent later, never lost. Retry after Retry-After. While the gateway's disk is "
                           "full, an operation that must write answers 507 `insufficient_storage` with Retry-After: "
                           "nothing of it was stored.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in dict.fromkeys(op.tag for op in OPERATIONS.values())],
        "security": [{"ApiKey": []}, {"Bearer": []}],
        "paths": paths,
        "webhooks": webhook_docs,
        "components": {
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
        },
    }


@functools.lru_cache(maxsize=8)
def _cached(max_message_chars: int, send_wait_max: float) -> dict:
    from service.http.routes import setup_routes

    app = web.Application()
    setup_routes(app)
    return build(app.router, max_message_chars=max_message_chars, send_wait_max=send_wait_max)


def document(max_message_chars: int = 65536, send_wait_max: float = 60.0) -> dict:
    """The document of the shipped route table (cached: it depends only on these two settings)."""
    return _cached(max_message_chars, send_wait_max)
