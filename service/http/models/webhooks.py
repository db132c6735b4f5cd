"""An account's webhooks (``/accounts/{account}/webhooks``) and the signed test ping (``/webhooks/test``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, StrictStr

from service.http.models.base import RequestModel
from service.store.event_log import TYPES as EVENT_TYPES


class WebhookCreateRequest(RequestModel):
    """``POST /accounts/{account}/webhooks``: a URL and, optionally, the event types it gets (default all)."""

    url: StrictStr = Field(json_schema_extra={"format": "uri", "maxLength": 2048,
                                              "examples": ["https://backend.example.com/wa-events"]})
    events: list[StrictStr] | None = Field(default=None, json_schema_extra={"examples": [["message.received"]]})

    field_codes: ClassVar[dict[str, str]] = {"url": "invalid_url", "events": "invalid_events"}
    field_hints: ClassVar[dict[str, str]] = {"url": "an http:// or https:// URL (a string)",
                                             "events": f"a list of event types ({', '.join(EVENT_TYPES)})"}


class WebhookOut(BaseModel):
    """An account's webhook: the URL with credentials and query values hidden, never the secret."""

    id: str  # whe_...
    url: str
    events: list[str]
    created_at: str | None
    active: bool


class WebhookCreated(WebhookOut):
    """``POST /accounts/{account}/webhooks``: the webhook and its signing secret, shown this once."""

    secret: str = Field(json_schema_extra={"examples": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]})


class WebhookRotateRequest(RequestModel):
    """``POST /accounts/{account}/webhooks/{id}/rotate-secret``: how long (seconds) the old secret keeps
    signing beside the new one (0: it stops at once)."""

    overlap: int = Field(default=86400, ge=0, le=7 * 86400)

    field_codes: ClassVar[dict[str, str]] = {"overlap": "invalid_overlap"}
    field_hints: ClassVar[dict[str, str]] = {"overlap": "whole seconds from 0 to 604800"}


class WebhookSecretOut(BaseModel):
    """A webhook's new signing secret, shown this once; until ``previous_valid_until`` every delivery carries
    a signature with the old one too (``webhook-signature: v1,<new> v1,<old>``)."""

    id: str
    secret: str
    previous_valid_until: str | None


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class WebhookDeleted(WebhookOut):
    deleted: bool


class WebhookTestRequest(RequestModel):
    """``POST /webhooks/test``: one ``url`` (the global route only), one configured ``endpoint`` (its id or its
    URL as configured or as listed), or neither: every configured endpoint."""

    url: StrictStr | None = Field(default=None, json_schema_extra={
        "format": "uri", "maxLength": 2048, "examples": ["http://127.0.0.1:8080/wa-events"]})
    endpoint: StrictStr | None = Field(default=None, json_schema_extra={"examples": ["whe_01JD5Z3Q8M2B4C6D8E0F2G4H6J"]})

    field_codes: ClassVar[dict[str, str]] = {"url": "invalid_url", "endpoint": "invalid_endpoint"}
    field_hints: ClassVar[dict[str, str]] = {"url": "an http:// or https:// URL (a string)",
                                             "endpoint": "a webhook id or URL (a string)"}


class WebhookTestResult(BaseModel):
    """Whether one endpoint took its test ping (sent once, not stored, never retried). ``status_code``,
    ``error`` and ``elapsed_ms`` come with the admin key only: a key scoped to an account learns delivered
    (``ok``) or not, never what a receiver answered."""

    endpoint: str  # the URL with credentials and query values hidden
    id: str | None  # the account webhook's id (whe_...); null for a WA_WEBHOOK_URL endpoint or a given url
    ok: bool  # delivered: the endpoint answered 2xx
    status_code: int | None = None  # admin only; null when no answer came (refused address, timeout, ...)
    error: str | None = None  # admin only: HTTP <status>, address not allowed, connect: <reason>, timeout, ...
    elapsed_ms: float | None = None  # admin only
    webhook_id: str  # the webhook-id header of the ping


class WebhookTestOut(BaseModel):
    """``POST /webhooks/test``: one result per endpoint pinged (none when no endpoint is configured)."""

    results: list[WebhookTestResult]


class WebhookTestData(BaseModel):
    account: str | None  # the endpoint's account; null for a WA_WEBHOOK_URL endpoint or a given url
    endpoint: str  # the URL pinged, credentials and query values hidden


class WebhookTestEvent(BaseModel):
    """A test ping (POST /webhooks/test): sent once on request, never stored or retried."""

    id: str  # evt_...; also the webhook-id header
    type: Literal["webhook.test"]
    account: str | None
    timestamp: str
    data: WebhookTestData
