"""What every request goes through, outermost first: request id and log line, CORS, the drain's gate
(503 shutting_down after SIGTERM), error rendering, and the API key with its scope.

``setup_security(app)`` resolves the API keys (``WA_API_KEY`` or the data dir's key file) once at
start-up; ``MIDDLEWARES`` is the order the app factory installs.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import time
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from service.auth import admin_key as api_keys
from service.auth.scoped_keys import ScopedKeys
from service.errors import (
    STORAGE_RETRY_AFTER,
    ApiError,
    ClientAborted,
    InsufficientStorage,
    error_response,
)
from service.http.appkeys import (
    API_KEYS,
    AUTHENTICATED,
    DATABASE,
    DRAIN,
    METRICS,
    SCOPE,
    SCOPED_KEYS,
    SETTINGS,
)
from service.http.strict_input import strict_query
from service.states import DEFAULT_ACCOUNT
from service.store.db import storage_full

log = structlog.get_logger("gateway.http")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Probes must work without credentials: orchestrators do not hold the API key.
OPEN_PATHS = frozenset({"/health", "/health/live", "/health/ready"})
# /docs and / (the status page) are static pages (HTML, CSS, JS; the same for everyone, no data): a browser
# cannot send a header when it opens one, so each asks for the key and calls the API (which needs one) with it.
PUBLIC_PAGES = frozenset({"/docs", "/"})
# The metrics name accounts and webhook endpoints: the admin key only, unless WA_METRICS_PUBLIC=true opens them
# to anyone (a scraper on a trusted network that holds no key); a wrong key is refused even then.
METRICS_PATH = "/metrics"
# Reading the contract is harmless: any valid key may, a key scoped to one account too. /mcp too: every MCP tool
# calls this API with the caller's own key, so a scoped key sees and acts on its own account only.
ANY_KEY_PATHS = frozenset({"/openapi.json", "/mcp"})
REALM = 'Bearer realm="wa-gateway"'
CLUSTER_KEYS_MAX_AGE = 5.0
CORS_ALLOW_HEADERS = "X-Api-Key, Authorization, Content-Type, X-Request-ID, Idempotency-Key"
CORS_ALLOW_METHODS = "GET, POST, DELETE"

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    431: "headers_too_large",
}


def setup_security(app: web.Application) -> api_keys.ApiKeys:
    """Load the API keys (creating the data dir's key file when ``WA_API_KEY`` is unset)."""
    settings = app[SETTINGS]
    keys = api_keys.resolve(",".join(settings.api_keys), settings.data_dir)
    app[API_KEYS] = keys
    # Keys scoped to one account: loaded from the store on first use. In a cluster (WA_DATABASE_URL) another
    # instance may change them: reloaded at least every CLUSTER_KEYS_MAX_AGE s besides its notifications.
    app[SCOPED_KEYS] = ScopedKeys(max_age=CLUSTER_KEYS_MAX_AGE if settings.database_url else None)
    if keys.source == "env":
        log.info("gateway.api_key", source="WA_API_KEY", keys=len(keys.keys))
    else:
        # Where, never what: `wa-gateway api-key` prints the value for the operator.
        log.info("gateway.api_key", source="file", path=str(keys.path), keys=len(keys.keys),
                 created=keys.created)
        if keys.path is not None and not api_keys.file_is_private(keys.path):
            log.warning("gateway.api_key_file_readable", path=str(keys.path),
                        hint="chmod 600 the file: other users can read the API key")
    return keys


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id to every log line of this request and echo it to the caller; time it for
    GET /metrics (by route pattern, never the raw path: service/http/metrics.py)."""
    incoming = request.headers.get("X-Request-ID", "")
    # A correlation id, not a secret: the fast generator will do (the OS's cost a syscall per request).
    request_id = incoming if _REQUEST_ID.fullmatch(incoming) else f"{random.getrandbits(64):016x}"
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ClientAborted as exc:
        # Expected on any network: one info line, no traceback. Nobody is left to answer.
        elapsed = time.perf_counter() - started
        log.info("http.client_aborted", method=request.method, path=request.path, reason=str(exc),
                 duration_ms=round(elapsed * 1000, 2))
        _observe(request, 400, elapsed)
        return error_response(400, "client_aborted", "The client closed the connection.")
    elapsed = time.perf_counter() - started
    response.headers["X-Request-ID"] = request_id
    # Polls (a status page, a probe, a scraper, the client's waits) at debug: one line a second per poller
    # would bury the operations; a poll the gateway failed (5xx) stays at info.
    emit = log.debug if is_poll(request) and response.status < 500 else log.info
    emit(
        "http.request",
        method=request.method,
        path=request.path,
        status=response.status,
        duration_ms=round(elapsed * 1000, 2),
    )
    _observe(request, response.status, elapsed)
    return response


# What clients poll: the state (/status), the event log's long polls and stream, the probes, the metrics; any
# account's too (/accounts/{name}/status, ...). Read-only: a GET or HEAD.
_POLLS = re.compile(r"(?:/accounts/[^/]+)?(?:/status|/events(?:/stream)?|/health(?:/live|/ready)?|/metrics)")


def is_poll(request: web.Request) -> bool:
    return request.method in ("GET", "HEAD") and _POLLS.fullmatch(request.path) is not None


def _observe(request: web.Request, status: int, seconds: float) -> None:
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.observe_request(request, status, seconds)


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No CORS at all unless ``WA_CORS_ORIGINS`` lists origins; then only for exactly those."""
    origins = request.app[SETTINGS].cors_origins
    if not origins:
        return await handler(request)
    origin = request.headers.get("Origin")
    listed = origin if origin is not None and origin in origins else None  # the origin, when it is listed
    if listed and request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        # A preflight carries no credentials by design: answer it before the key check.
        response: web.StreamResponse = web.Response(status=204, headers={
            "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
            "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
        })
    else:
        response = await handler(request)
    if listed:
        response.headers["Access-Control-Allow-Origin"] = listed
        response.headers["Access-Control-Expose-Headers"] = "X-Request-ID"
    # Answers differ by Origin, so any cache between must key on it (listed or not).
    response.headers.add("Vary", "Origin")
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the one JSON error shape; never leak a traceback or echo input."""
    try:
        return await handler(request)
    except ClientAborted:
        raise
    except ApiError as exc:
        details = exc.details
        if exc.status >= 500:
            log.error("http.error", code=exc.code, status=exc.status, detail=exc.message)
            details = {**details, **_request_id()}
        headers = {"WWW-Authenticate": REALM} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers=headers, details=details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception as exc:
        if storage_full(exc):
            return insufficient_storage(request, exc)
        log.exception("http.unhandled", method=request.method, path=request.path)
        return error_response(500, "internal_error", "The gateway failed; see its logs.", details=_request_id())


def _request_id() -> dict[str, Any]:
    """A failure of ours names the request (also the X-Request-ID header): the log line with the detail
    carries the same id, and the client sees nothing of the detail itself."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return {"request_id": request_id} if request_id else {}


def insufficient_storage(request: web.Request, exc: BaseException) -> web.Response:
    """507 for a write the disk had no room for (SQLite's SQLITE_FULL, ENOSPC/EDQUOT from a file, PostgreSQL's
    disk_full), from any route: the request changed nothing, so the client may retry it as it is (with its
    Idempotency-Key). One log line with where it happened and what the store said, never a body."""
    resource = request.match_info.route.resource
    log.error("http.insufficient_storage", method=request.method, path=request.path,
              route=resource.canonical if resource is not None else None,
              account=request.match_info.get("account"), error=_describe(exc))
    error = InsufficientStorage("The gateway's disk is full: nothing of this request was stored. Retry once space "
                                "is freed.")
    return error_response(error.status, error.code, error.message, headers={"Retry-After": str(STORAGE_RETRY_AFTER)},
                          details=_request_id())


def _describe(exc: BaseException) -> str:
    """The store's own words (``database or disk is full``, ``[Errno 28] No space left on device: 'path'``)."""
    return f"{type(exc).__name__}: {exc}"[:300]


def _presented(request: web.Request) -> list[str] | None:
    """The credentials this request carries, or None when it carries none at all."""
    headers = request.headers  # case-insensitive: x-api-key, X-API-Key, ...
    if "X-API-Key" not in headers and "Authorization" not in headers:
        return None
    given = []
    if "X-API-Key" in headers:
        given.append(headers["X-API-Key"].strip())
    if "Authorization" in headers:
        scheme, _, token = headers["Authorization"].strip().partition(" ")
        given.append(token.strip() if scheme.lower() == "bearer" else "")
    return given


def _digest(key: str) -> bytes | None:
    try:
        raw = key.encode("ascii")  # a non-ASCII byte (surrogate-escaped by aiohttp) is never a key
    except UnicodeEncodeError:
        return None
    return hashlib.sha256(raw).digest()


def key_is_valid(keys: api_keys.ApiKeys, given: str) -> bool:
    """Constant time in the key: equal-length digests, and every configured key is compared."""
    digest = _digest(given)
    if not given or digest is None:
        return False
    ok = False
    for known in keys.digests:
        ok |= hmac.compare_digest(digest, known)
    return ok


def unauthorized(request: web.Request, invalid: bool) -> web.Response:
    """401, naming the command that prints the admin key on the gateway's host (the sandbox's in the sandbox:
    WA_SANDBOX, which `wa-gateway sandbox` sets), so a newcomer knows what to run."""
    challenge = REALM + (', error="invalid_token"' if invalid else "")
    command = api_keys.print_command(sandbox=request.app[SETTINGS].sandbox)
    return error_response(
        401, "unauthorized",
        f"A valid API key is required: send it as X-API-Key or Authorization: Bearer. The key is "
        f"{'wrong' if invalid else 'missing'}; on the gateway's host `{command}` prints the admin key.",
        headers={"WWW-Authenticate": challenge},
    )


# --- scoped keys: what a key of one account may call ---------------------------------------------
# Routes with an {account} in the path that only an admin key may call even for the key's own account.
ADMIN_ONLY_PREFIXES = ("/accounts/{account}/keys",)
ADMIN_ONLY_ROUTES = frozenset({("DELETE", "/accounts/{account}"), ("PATCH", "/accounts/{account}")})
# The original routes act on `default`: a key scoped to `default` may call them (exactly and below).
DEFAULT_EXACT = frozenset({"/status", "/qr", "/connect", "/disconnect", "/send"})
DEFAULT_TREES = ("/messages", "/events", "/media", "/chats", "/contacts", "/groups")


def scope_allows(request: web.Request, account: str) -> bool:
    """Whether a key scoped to ``account`` may call this request's route. Allowed: the open probes, /docs
    and /openapi.json (and /metrics with WA_METRICS_PUBLIC=true);
    routes whose ``{account}`` is its account, except the admin-only ones (its keys, deleting it);
    the original per-account routes when it is ``default``'s. Refused: everything else (the account
    list and creation, other accounts, /webhooks/..., and any route added later without an
    ``{account}``: deny by default). An unknown route or method answers its 404/405 as usual."""
    match = request.match_info
    if match.http_exception is not None or request.path in OPEN_PATHS | PUBLIC_PAGES | ANY_KEY_PATHS:
        return True
    if metrics_public(request):
        return True
    resource = match.route.resource
    pattern = resource.canonical if resource is not None else ""
    if (request.method, pattern) in ADMIN_ONLY_ROUTES or pattern.startswith(ADMIN_ONLY_PREFIXES):
        return False
    if "account" in match:
        return match["account"] == account
    if account != DEFAULT_ACCOUNT:
        return False
    return pattern in DEFAULT_EXACT or any(pattern == t or pattern.startswith(t + "/") for t in DEFAULT_TREES)


def metrics_public(request: web.Request) -> bool:
    """GET /metrics without a key (or with a scoped one): only with WA_METRICS_PUBLIC=true."""
    return request.path == METRICS_PATH and request.app[SETTINGS].metrics_public


def forbidden(account: str) -> web.Response:
    return error_response(
        403, "forbidden",
        f"This API key is scoped to the account {account}: it may only use that account's routes, "
        "and not manage accounts, keys or the global /webhooks; use the admin key.",
    )


@web.middleware
async def api_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every endpoint but the probes and /docs needs a key; a wrong key is refused everywhere, probes too.
    An admin key (WA_API_KEY or the key file) may call everything; a key scoped to one account only
    what ``scope_allows`` lets it (else 403); a revoked or unknown key is 401."""
    given = _presented(request)
    if given is None:
        request[AUTHENTICATED] = False
        if request.path in OPEN_PATHS or request.path in PUBLIC_PAGES or metrics_public(request):
            return await handler(request)
        return unauthorized(request, invalid=False)
    keys = request.app[API_KEYS]
    if any([key_is_valid(keys, g) for g in given]):  # a list: check all, no short circuit
        request[AUTHENTICATED] = True
        request[SCOPE] = None
        return await handler(request)
    database = request.app.get(DATABASE)
    scoped = await request.app[SCOPED_KEYS].lookup(database, given) if database is not None else None
    if database is None or scoped is None:  # no database: no scoped key either
        return unauthorized(request, invalid=True)
    request.app[SCOPED_KEYS].touch(database, scoped)
    structlog.contextvars.bind_contextvars(key_id=scoped.id)  # which key, never its value
    request[AUTHENTICATED] = False  # /health details are for admin keys only
    request[SCOPE] = scoped.account
    if not scope_allows(request, scoped.account):
        return forbidden(scoped.account)
    return await handler(request)


# While the gateway drains (SIGTERM, service/http/drain.py): the liveness probe stays 200 (the process is alive:
# killing it early would cut the drain short) and the readiness probe answers its own 503 not_ready.
DRAIN_EXEMPT = frozenset({"/health/live", "/health/ready"})


@web.middleware
async def shutting_down(request: web.Request, handler: Handler) -> web.StreamResponse:
    """From SIGTERM on, a new request is answered 503 ``shutting_down`` with Retry-After (and the connection
    closed); the requests already past this point are counted, and the drain waits for them."""
    drain = request.app.get(DRAIN)
    if drain is None:
        return await handler(request)
    if drain.draining and request.path not in DRAIN_EXEMPT:
        return drain.refusal()
    with drain.request():
        return await handler(request)


MIDDLEWARES = (request_context, cors, shutting_down, errors, api_key, strict_query)
