"""The documentation of webhooks: an account's own (``/accounts/{account}/webhooks``), the signed test ping
and the deliveries with their redrive (``/webhooks/deliveries``, globally and per account)."""

from __future__ import annotations

from service.http import models
from service.http.openapi.spec import CURSOR, Op, Param, limit
from service.http.route_table import Handler
from service.http.views import webhooks
from service.states import DELIVERY_STATUSES

DELIVERY_QUERY = (
    Param("status", "query", {"type": "string", "enum": list(DELIVERY_STATUSES)}),
    Param("endpoint", "query", {"type": "string"}, "A webhook id (whe_...) or URL, as configured or as listed."),
    limit(webhooks.MAX_LIMIT, 50), CURSOR,
)

OPERATIONS: dict[Handler, Op] = {
    webhooks.list_account_webhooks: Op("List the account's webhooks", "Webhooks", {200: models.WebhookList}),
    webhooks.create_account_webhook: Op(
        "Add a webhook for the account's events", "Webhooks", {201: models.WebhookCreated},
        body=models.WebhookCreateRequest, headers={201: ("Location", "Cache-Control")}, writes=True,
        errors={400: ("invalid_url", "invalid_events", "webhook_url_not_allowed"),
                409: ("webhook_exists", "too_many_webhooks")},
        description="Its host is resolved and every address checked: loopback, private, link-local, unique-local, "
                    "carrier-grade NAT, multicast and the IPv6 forms of those are 400 `webhook_url_not_allowed` "
                    "(unless the operator allows them: WA_WEBHOOK_ALLOW_PRIVATE), as again at every delivery; "
                    "redirects are not followed. The answer shows the webhook's own signing `secret` this once."),
    webhooks.rotate_account_webhook_secret: Op(
        "Rotate a webhook's signing secret", "Webhooks", {200: models.WebhookSecretOut},
        body=models.WebhookRotateRequest, body_optional=True, headers={200: ("Cache-Control",)}, writes=True,
        errors={400: ("invalid_overlap",), 404: ("webhook_not_found",)},
        description="A new secret, shown this once; the old one keeps signing beside it (two signatures in "
                    "`webhook-signature`) for `overlap` seconds (default 86400), so a receiver can switch."),
    webhooks.delete_account_webhook: Op("Remove a webhook", "Webhooks", {200: models.WebhookDeleted},
                                        errors={404: ("webhook_not_found",)}, writes=True),
    webhooks.ping_webhooks: Op(
        "Send a signed test event to webhooks now", "Webhooks", {200: models.WebhookTestOut},
        body=models.WebhookTestRequest, body_optional=True,
        errors={400: ("invalid_url", "invalid_endpoint", "invalid_request", "url_not_allowed"),
                404: ("webhook_not_found",)},
        description="One `webhook.test` event (see `webhooks`) to each target, signed like a real delivery, sent "
                    "at once and only once (not queued, not stored, not retried), with WA_WEBHOOK_TIMEOUT; "
                    "`ok` when it answered 2xx; `status_code`, `error` and `elapsed_ms` with the admin key only "
                    "(a scoped key learns delivered or not). Account webhooks and `url` go only to addresses the "
                    "address policy permits. Targets: `url` (POST /webhooks/test only), or the configured "
                    "`endpoint` (an id, or the URL as configured or listed), or with neither every configured "
                    "webhook: WA_WEBHOOK_URL's and every account's at /webhooks/test, the account's own under "
                    "/accounts/{account}. No webhook at all: empty `results`."),
    webhooks.list_deliveries: Op("List webhook deliveries", "Webhooks", {200: models.DeliveryPage},
                                 params=DELIVERY_QUERY,
                                 errors={400: ("invalid_status", "invalid_limit", "invalid_cursor"),
                                         404: ("endpoint_not_found",)},
                                 description="Newest first. /webhooks/...: every delivery (admin key); under "
                                             "/accounts/{account}: that account's own webhooks only."),
    webhooks.retry_failed: Op("Redrive every failed delivery", "Webhooks", {200: models.RedriveOut},
                              body=models.RedriveRequest, body_optional=True, writes=True,
                              errors={400: ("invalid_endpoint",), 404: ("endpoint_not_found",)}),
    webhooks.get_delivery: Op("One delivery, with the body sent", "Webhooks", {200: models.DeliveryOut},
                              errors={404: ("delivery_not_found",)}),
    webhooks.retry_delivery: Op("Redrive one failed delivery", "Webhooks", {200: models.DeliveryOut},
                                errors={404: ("delivery_not_found",), 409: ("not_failed",)}, writes=True),
}
