"""What one documented operation is made of (``Op``, ``Param``), and the pieces many operations share.

An ``Op`` says what a route needs beyond its models: a summary, its query parameters with their
bounds, its status codes and the error codes it can answer. The errors every route of a kind can
answer (a body, a worker behind it) are added by the builder (``operation.py``), not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.http.models import RequestModel
from service.states import FAILURE_REASONS, MessageStatus
from service.store import event_log as event_store

REF = "#/components/schemas/{model}"
JSON = "application/json"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # query or header
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Op:
    summary: str
    tag: str
    ok: dict[int, Any]  # status -> a model, a list of models (any of them), or a media type's raw content
    errors: dict[int, tuple[str, ...]] = field(default_factory=dict)  # beyond those added by the rules below
    body: type[RequestModel] | None = None
    body_optional: bool = False  # no body at all (or an empty one) is {}
    form: dict[str, Any] | None = None  # also takes multipart/form-data: the form's schema
    params: tuple[Param, ...] = ()
    worker: bool = False  # asks the account's worker: its outages and errors pass through
    writes: bool = False  # writes the store (or a file): 507 insufficient_storage while the disk is full
    description: str = ""
    headers: dict[int, tuple[str, ...]] = field(default_factory=dict)  # response headers by status


# --- query parameters and headers ------------------------------------------------------------------

def limit(maximum: int, default: int) -> Param:
    return Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
                 "Page size.")


CURSOR = Param("cursor", "query", {"type": "string"}, "The next_cursor of the previous page.")
TYPES = Param("types", "query", {"type": "string", "examples": [",".join(event_store.TYPES)]},
              f"Comma-separated event types to keep: {', '.join(event_store.TYPES)}.")
AFTER = Param("after", "query", {"type": "integer", "minimum": 0, "maximum": 2**62, "default": 0},
              "The seq of the last event handled: only later events.")
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

DEFAULT_NOTE = "At its original path it acts on the `default` account; under `/accounts/{account}` on that one."
