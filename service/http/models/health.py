"""The health answers: ``/health`` for humans, ``/health/live`` and ``/health/ready`` for orchestrators."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.http.models.session import LinkState, Unreachable, UnreachableCauseOnly


class HealthWatchdog(BaseModel):
    restarts: int
    next_delay_seconds: float | None
    last_restart_at: float | None
    last_error: str | None


class HealthWorker(BaseModel):
    """``state`` is supervisord's state name; the other fields only with an admin key."""

    state: str
    pid: int | None = None
    uptime_seconds: float | None = None
    rss_bytes: int | None = None
    cpu_percent: float | None = None
    restarts: int | None = None
    exit_status: int | None = None
    watchdog: HealthWatchdog | None = None


class HealthWhatsApp(BaseModel):
    state: str
    link: LinkState | None = None  # admin key only
    # state whatsapp_unreachable: the cause (and, with an admin key, the detail, hint, since and attempts)
    unreachable: Unreachable | UnreachableCauseOnly | None = None


class HealthShard(BaseModel):
    name: str
    state: str
    pid: int | None = None  # this and below: admin key only
    restarts: int | None = None
    rss_bytes: int | None = None
    accounts: list[str] | None = None


class HealthWebhook(BaseModel):
    active: bool
    pending: int
    failed: int
    account: str | None = None
    url: str | None = None


class HealthStore(BaseModel):
    """Whether a real write to the gateway's database committed just now (within a short timeout)."""

    writable: bool
    error: str | None = Field(default=None, description="why not (e.g. database is locked); absent when writable")


class HealthOut(BaseModel):
    """``GET /health``: without a key, states only; with an admin key, details (pids, errors, webhooks, store)."""

    status: Literal["ok", "degraded"]
    reasons: list[str]
    uptime_seconds: float
    version: str
    worker: HealthWorker
    whatsapp: HealthWhatsApp
    accounts: dict[str, int]  # accounts by WhatsApp state
    shards: list[HealthShard]
    webhooks: dict[str, HealthWebhook] | None = None  # admin key only
    store: HealthStore | None = None  # admin key only (an unwritable store is a reason without a key too)


class LiveOut(BaseModel):
    status: Literal["ok"]


class ReadyProblem(BaseModel):
    code: Literal["worker_not_running", "whatsapp_not_connected", "whatsapp_unreachable", "whatsapp_link_dead",
                  "whatsapp_events_stuck", "shutting_down"]
    message: str


class ReadyOut(BaseModel):
    """``GET /health/ready``: 200 ready, or 503 not_ready with the reason as ``error``."""

    status: Literal["ready", "not_ready"]
    worker: str
    whatsapp: str
    error: ReadyProblem | None = None
