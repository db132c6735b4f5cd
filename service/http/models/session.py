"""The WhatsApp session of an account: ``/connect``, ``/disconnect`` and ``/status`` (the worker's answer).

The responses mirror what the views return (they pass the worker's status on); tests/app/test_openapi.py
validates real answers against the document built from these models.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from service.http import validation
from service.http.models.base import RequestModel, checked
from service.states import UnreachableCause, WorkerState


class ConnectRequest(RequestModel):
    """``POST /connect``: the body, if any, must be a JSON object. With ``phone_number`` (the account's own
    number) an unlinked account links by a pairing code typed on that phone, for a server with no camera
    near it, instead of a QR."""

    phone_number: StrictStr | None = None

    field_codes: ClassVar[dict[str, str]] = {"phone_number": "invalid_phone_number"}
    field_hints: ClassVar[dict[str, str]] = {"phone_number": f"a string like {validation.PHONE_EXAMPLE}"}

    @field_validator("phone_number")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else checked(validation.phone_number, value)


class DisconnectRequest(RequestModel):
    """``POST /disconnect``: no fields yet; the body, if any, must be a JSON object."""


class Reconnect(BaseModel):
    attempt: int
    scheduled: bool
    next_retry_ms: int | None
    next_retry_at: str | None
    delays_ms: list[int]


class LinkState(BaseModel):
    """While connected: whether the link demonstrably works (the worker's link-monitor.js)."""

    model_config = ConfigDict(extra="allow")

    alive: bool
    last_frame_age_ms: int
    probe_pending_ms: int | None
    probes: int
    buffering_ms: int
    events_stuck: bool
    reason: str | None = None  # when dead
    message: str | None = None


class UnreachableCauseOnly(BaseModel):
    """What the open ``/health`` says of an unreachable WhatsApp: the cause, never the host."""

    cause: UnreachableCause


class Unreachable(UnreachableCauseOnly):
    """In state ``whatsapp_unreachable``: why the server could not be reached (the worker's network-cause.js)."""

    detail: str = Field(description="the system error, e.g. ENOTFOUND: getaddrinfo ENOTFOUND web.whatsapp.com")
    hint: str = Field(description="what to check")
    since: str = Field(description="the first failed attempt in a row (ISO 8601)")
    attempts: int = Field(description="failed attempts in a row")


# fenced: in a cluster, the account's lease moved to another instance; this one sends and writes nothing for it


class SessionStatus(BaseModel):
    """``GET /status``, ``POST /connect``: the account's WhatsApp session (from its worker)."""

    model_config = ConfigDict(extra="allow")

    connected: bool
    state: WorkerState
    phone_number: str | None
    name: str | None
    qr: str | None = Field(description="the raw QR string while state is qr")
    qr_image: str | None = Field(description="the QR as a PNG data URL while state is qr")
    pairing_code: str | None = Field(default=None, description="while state is pairing_code: the code to type on the "
                                     "phone (WhatsApp, Linked devices, Link with phone number), as ABCD-EFGH")
    last_error: str | None
    unreachable: Unreachable | None = None
    registered: bool | None = Field(default=None, description="whether the device is linked (null: not known now)")
    link: LinkState | None = None
    reconnect: Reconnect


class DisconnectOut(SessionStatus):
    """``POST /disconnect``: the status after the logout, and whether WhatsApp unlinked the device."""

    unlinked: bool
