"""The documentation of the pages and the operator's endpoints: ``/openapi.json`` (this document itself),
``/docs``, ``/`` (the status page) and ``/metrics``."""

from __future__ import annotations

from service.http.openapi.spec import JSON, Op
from service.http.route_table import Handler
from service.http.views import docs, status_page
from service.http.views import metrics as metrics_view

OPERATIONS: dict[Handler, Op] = {
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
