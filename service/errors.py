"""The one JSON error shape, ``{"error": {"code", "message"}}``, and the classes that carry it.

Handlers raise these; the middleware in ``middlewares.py`` renders them. Each class knows its HTTP
status so that views never pick numbers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        # Extra machine-readable fields beside code and message (e.g. a 409's retry schedule).
        self.details = details or {}
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class RequestTimeout(ApiError):
    status = 408
    code = "request_timeout"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class WorkerUnavailable(ApiError):
    status = 503
    code = "worker_unavailable"


class UpstreamError(ApiError):
    status = 502
    code = "whatsapp_error"


class InsufficientStorage(ApiError):
    """507: a write the request needed failed because the disk is full (or over quota): nothing of the request
    was stored, and the same request can work once space is freed. The middleware answers it for any store
    error that ``store.db.storage_full`` recognises, with ``Retry-After: STORAGE_RETRY_AFTER``."""

    status = 507
    code = "insufficient_storage"


# Seconds a client should wait before it retries a 507: freeing space is an operator's task, not a moment's.
STORAGE_RETRY_AFTER = 30


class ClientAborted(Exception):
    """The client went away before its request body arrived: nothing to answer, nothing to blame.

    Not an ``ApiError``: no response can reach the client, so the request middleware logs it once
    at info (``http.client_aborted``) instead of an error with a traceback.
    """


def error_response(status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                   details: dict[str, Any] | None = None) -> web.Response:
    body = {**(details or {}), "code": code, "message": message}
    return web.json_response({"error": body}, status=status, headers=headers)
