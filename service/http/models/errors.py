"""The one error shape of every 4xx and 5xx answer (``service/errors.py`` raises it, the contract shows it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ErrorDetail(BaseModel):
    """``code`` is machine-readable (see each operation's list), ``message`` for humans. Some errors add
    fields beside them (a failed send's ``id``; a worker's ``state``, ``attempt``, ...)."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorResponse(BaseModel):
    """The one error shape of every 4xx and 5xx answer."""

    error: ErrorDetail
