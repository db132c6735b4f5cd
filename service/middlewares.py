"""Request id, API key and error rendering: the three things every request goes through."""

from __future__ import annotations

import hmac
import re
import secrets
import time

import structlog
from aiohttp import web

from .errors import ApiError, error_response
from .keys import SETTINGS

log = structlog.get_logger("gateway.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Probes must work without credentials: orchestrators do not hold the API key.
_OPEN_PATHS = frozenset({"/health", "/health/live", "/health/ready"})

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def request_context(request: web.Request, handler):
    """Bind a request id to every log line of this request and echo it to the caller."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    response = await handler(request)
    response.headers["X-Request-ID"] = request_id
    log.info(
        "http.request",
        method=request.method,
        path=request.path,
        status=response.status,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return response


@web.middleware
async def errors(request: web.Request, handler):
    """Turn every failure into the one JSON error shape; never leak a traceback or echo input."""
    try:
        return await handler(request)
    except ApiError as exc:
        if exc.status >= 500:
            log.error("http.error", code=exc.code, status=exc.status, detail=exc.message)
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("http.unhandled", method=request.method, path=request.path)
        return error_response(500, "internal_error", "The gateway failed; see its logs.")


@web.middleware
async def api_key(request: web.Request, handler):
    """Require ``X-API-Key`` (or ``Authorization: Bearer``) when ``WA_API_KEY`` is set."""
    expected = request.app[SETTINGS].api_key
    if expected is None or request.path in _OPEN_PATHS:
        return await handler(request)
    given = request.headers.get("X-API-Key", "")
    auth = request.headers.get("Authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        return error_response(401, "unauthorized", "A valid API key is required (X-API-Key header).")
    return await handler(request)
