"""The documentation of the probes: ``/health``, ``/health/live``, ``/health/ready`` (open: no key needed;
a wrong key is still refused)."""

from __future__ import annotations

from service.http import models
from service.http.openapi.spec import Op, Param
from service.http.route_table import Handler
from service.http.views import health

OPERATIONS: dict[Handler, Op] = {
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
}
