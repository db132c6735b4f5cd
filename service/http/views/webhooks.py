"""Webhooks over HTTP.

Global (admin key only): ``GET /webhooks/deliveries``, ``GET /webhooks/deliveries/{id}``,
``POST /webhooks/deliveries/{id}/retry`` and the bulk redrive ``POST /webhooks/deliveries/retry``: every
delivery, to global (WA_WEBHOOK_URL) and account endpoints alike.

Per account (the admin key or a key scoped to that account): ``GET|POST /accounts/{account}/webhooks``,
``DELETE /accounts/{account}/webhooks/{id}`` and the same four delivery routes under
``/accounts/{account}/webhooks/deliveries``, which see only the deliveries to that account's own endpoints
(not those of its events to the global endpoints: those are the admin's). There is no original-path
(``/webhooks``) form for ``default``: ``/webhooks/...`` keeps its global meaning; use
``/accounts/default/webhooks``.

Test pings: ``POST /webhooks/test`` (admin key: a given URL, or configured endpoints of any kind) and
``POST /accounts/{account}/webhooks/test`` (that account's own endpoints): one signed ``webhook.test`` each,
sent now (service/webhooks/ping.py), never stored as a delivery.

Tenants (keys scoped to an account) never learn what a receiver answered: a ping says delivered or not, and
a delivery's status code and error text are hidden from them (``_tenant_safe``). An endpoint's secret is in
the creation and rotation answers only (``POST /accounts/{account}/webhooks/{id}/rotate-secret``)."""

from __future__ import annotations

import time
from typing import Any

import structlog
from aiohttp import web

from service.errors import BadRequest, Conflict, NotFound
from service.http.appkeys import DATABASE, SCOPE, SETTINGS, WEBHOOKS
from service.http.models import (
    DeliveryOut,
    DeliveryPage,
    RedriveOut,
    RedriveRequest,
    WebhookCreateRequest,
    WebhookRotateRequest,
    WebhookTestRequest,
    parse,
)
from service.http.validation import json_object
from service.http.views import paging
from service.http.views.context import account_of
from service.settings import is_webhook_url
from service.states import DELIVERY_STATUSES
from service.store import webhooks as store
from service.store.event_log import TYPES as EVENT_TYPES
from service.store.event_log import iso
from service.webhooks import ping
from service.webhooks.address import REFUSED_REASON, AddressRefused
from service.webhooks.endpoint_names import public_url

log = structlog.get_logger("gateway.webhooks")

MAX_LIMIT = 200
MAX_URL_LENGTH = 2048


def _cursor(seq: int) -> str:
    return paging.encode("d1", seq)


def _seq(cursor: str) -> int:
    return paging.decode("d1", cursor)


async def _urls(request: web.Request) -> dict[str, str]:
    """Endpoint id -> URL (a global endpoint's id is its URL; an account's is whe_...)."""
    return {r["id"]: r["url"] for r in await request.app[DATABASE].run(store.endpoints)}


def _tenant(request: web.Request) -> bool:
    """A key scoped to an account (not the admin's): it never learns what a receiver answered."""
    return request.get(SCOPE) is not None


def _tenant_safe(row: dict[str, Any]) -> dict[str, Any]:
    """A delivery as a tenant sees it: no status code, and no error text beyond the gateway's own refusal."""
    error = row["last_error"]
    if error is not None:
        error = REFUSED_REASON if REFUSED_REASON in error else "not delivered"
    return {**row, "last_status_code": None, "last_error": error}


def _out(request: web.Request, row: dict[str, Any], urls: dict[str, str], *, with_event: bool = False) -> DeliveryOut:
    active = row["endpoint"] in request.app[WEBHOOKS].workers
    url = urls.get(row["endpoint"], row["endpoint"])
    row = _tenant_safe(row) if _tenant(request) else row
    return DeliveryOut.from_row(row, endpoint=public_url(url), active=active, with_event=with_event)


async def _endpoints(request: web.Request, given: str, account: str | None = None) -> list[str]:
    """The endpoint ids a caller means: given as an id, or as a URL as configured or as the API shows it
    (every endpoint with that URL). With ``account``: among that account's endpoints only."""
    found = [row["id"] for row in await request.app[DATABASE].run(store.endpoints)
             if (account is None or row["account"] == account)
             and given in (row["id"], row["url"], public_url(row["url"]))]
    if not found:
        raise NotFound("No webhook endpoint with this URL or id.", code="endpoint_not_found")
    return found


def _scope(request: web.Request) -> str | None:
    """The account of an ``/accounts/{account}/webhooks/...`` route (checked to exist), None for ``/webhooks/...``."""
    return account_of(request).name if "account" in request.match_info else None


async def list_deliveries(request: web.Request) -> web.Response:
    query = request.query
    status = query.get("status")
    if status is not None and status not in DELIVERY_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(DELIVERY_STATUSES)}.", code="invalid_status")
    limit = paging.limit(query, MAX_LIMIT)
    before = _seq(query["cursor"]) if "cursor" in query else None
    account = _scope(request)
    endpoints = await _endpoints(request, query["endpoint"], account) if "endpoint" in query else None
    rows = await request.app[DATABASE].run(store.list_deliveries, status=status, endpoints=endpoints,
                                           account=account, limit=limit + 1, before_seq=before)
    more = len(rows) > limit
    rows = rows[:limit]
    urls = await _urls(request)
    page = DeliveryPage(deliveries=[_out(request, r, urls) for r in rows],
                        next_cursor=_cursor(rows[-1]["seq"]) if more else None)
    return web.json_response({"deliveries": [d.public() for d in page.deliveries], "next_cursor": page.next_cursor})


async def get_delivery(request: web.Request) -> web.Response:
    row = await request.app[DATABASE].run(store.get, request.match_info["id"], _scope(request))
    if row is None:
        raise NotFound("No webhook delivery with this id.", code="delivery_not_found")
    return web.json_response(_out(request, row, await _urls(request), with_event=True).public())


async def retry_delivery(request: web.Request) -> web.Response:
    delivery_id = request.match_info["id"]
    max_age = request.app[SETTINGS].webhook_max_age
    try:
        row = await request.app[DATABASE].run(store.retry, delivery_id, time.time(), max_age, _scope(request))
    except store.NotFailed as exc:
        raise Conflict(f"The delivery is {exc.status}; only a failed delivery can be retried.",
                       code="not_failed") from None
    if row is None:
        raise NotFound("No webhook delivery with this id.", code="delivery_not_found")
    urls = await _urls(request)
    log.info("webhook.redriven", delivery_id=delivery_id, endpoint=public_url(urls.get(row["endpoint"], "")))
    request.app[WEBHOOKS].notify()
    return web.json_response(_out(request, row, urls).public())


async def retry_failed(request: web.Request) -> web.Response:
    body = parse(RedriveRequest, await json_object(request, allow_empty=True))
    account = _scope(request)
    endpoints = await _endpoints(request, body.endpoint, account) if body.endpoint is not None else None
    max_age = request.app[SETTINGS].webhook_max_age
    count = await request.app[DATABASE].run(store.retry_failed, time.time(), max_age, endpoints=endpoints,
                                            account=account)
    log.info("webhook.redriven_bulk", deliveries=count, account=account,
             endpoint=public_url(body.endpoint) if body.endpoint is not None else None)
    request.app[WEBHOOKS].notify()
    return web.json_response(RedriveOut(retried=count).model_dump())


# --- an account's own endpoints --------------------------------------------------------------------

def _webhook(request: web.Request, row: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as the API shows it: the URL with credentials and query values hidden, never the secret."""
    return {"id": row["id"], "url": public_url(row["url"]), "events": [t for t in row["events"].split(",") if t],
            "created_at": iso(row["created_at"]), "active": row["id"] in request.app[WEBHOOKS].workers}


async def list_account_webhooks(request: web.Request) -> web.Response:
    account = account_of(request)
    rows = await request.app[DATABASE].run(store.account_endpoints, account.name)
    return web.json_response({"webhooks": [_webhook(request, r) for r in rows]})


async def create_account_webhook(request: web.Request) -> web.Response:
    account = account_of(request)
    body = parse(WebhookCreateRequest, await json_object(request))
    if len(body.url) > MAX_URL_LENGTH or not is_webhook_url(body.url):
        # Never echo the value: a URL may carry credentials.
        raise BadRequest(f"url must be an http:// or https:// URL with a host, no fragment and no whitespace "
                         f"(at most {MAX_URL_LENGTH} characters).", code="invalid_url")
    types = tuple(dict.fromkeys(body.events)) if body.events is not None else EVENT_TYPES
    if not types or any(t not in EVENT_TYPES for t in types):
        raise BadRequest(f"events must list one or more of {', '.join(EVENT_TYPES)}.", code="invalid_events")
    limit = request.app[SETTINGS].webhook_max_per_account
    try:
        row = await request.app[WEBHOOKS].add_account_endpoint(account.name, body.url, types, limit)
    except (AddressRefused, TimeoutError):
        raise BadRequest("url must reach a public address: its host is, or resolves to, a loopback, private, "
                         "link-local or otherwise internal address (or it does not resolve). The operator may "
                         "allow internal receivers (WA_WEBHOOK_ALLOW_PRIVATE).",
                         code="webhook_url_not_allowed") from None
    except store.EndpointExists:
        raise Conflict("This URL is already a webhook of this account.", code="webhook_exists") from None
    except store.NoAccount:
        raise NotFound("No account with this name.", code="account_not_found") from None
    except store.TooManyEndpoints as exc:
        raise Conflict(f"An account has at most {exc.limit} webhooks (WA_WEBHOOK_MAX_PER_ACCOUNT).",
                       code="too_many_webhooks") from None
    # The only answer with the secret (with the rotation's): no cache keeps it.
    return web.json_response({**_webhook(request, row), "secret": row["secret"]}, status=201,
                             headers={"Location": f"/accounts/{account.name}/webhooks/{row['id']}",
                                      "Cache-Control": "no-store"})


async def rotate_account_webhook_secret(request: web.Request) -> web.Response:
    """A new secret for one of the account's webhooks; the old one signs beside it for ``overlap`` seconds."""
    account = account_of(request)
    body = parse(WebhookRotateRequest, await json_object(request, allow_empty=True))
    endpoint_id = request.match_info["id"]
    done = await request.app[WEBHOOKS].rotate_secret(account.name, endpoint_id, body.overlap)
    if done is None:
        raise NotFound("This account has no webhook with this id.", code="webhook_not_found")
    secret, until = done
    return web.json_response({"id": endpoint_id, "secret": secret,
                              "previous_valid_until": iso(until) if until is not None else None},
                             headers={"Cache-Control": "no-store"})


async def delete_account_webhook(request: web.Request) -> web.Response:
    account = account_of(request)
    row = await request.app[WEBHOOKS].remove_account_endpoint(account.name, request.match_info["id"])
    if row is None:
        raise NotFound("This account has no webhook with this id.", code="webhook_not_found")
    return web.json_response({**_webhook(request, row), "deleted": True})


# --- test pings -------------------------------------------------------------------------------------

async def _ping_targets(request: web.Request, body: WebhookTestRequest, account: str | None) -> list[ping.Target]:
    """Whom a test pings: the given URL (global route only), the configured endpoint(s) named by ``endpoint``,
    or every configured endpoint: WA_WEBHOOK_URL's and every account's (global route) or the account's own."""
    if body.url is not None and body.endpoint is not None:
        raise BadRequest("Give url or endpoint, not both.", code="invalid_request")
    if body.url is not None:
        if account is not None:
            raise BadRequest("An account's test pings only its own webhooks: give endpoint, or nothing for all "
                             "of them (POST /webhooks/test with an admin key takes a url).", code="url_not_allowed")
        if len(body.url) > MAX_URL_LENGTH or not is_webhook_url(body.url):
            raise BadRequest(f"url must be an http:// or https:// URL with a host, no fragment and no whitespace "
                             f"(at most {MAX_URL_LENGTH} characters).", code="invalid_url")  # never echoed
        # The admin's URL: signed with the global secret, checked like an account's endpoint.
        return [ping.Target(body.url, None, None, await request.app[WEBHOOKS].signing_secrets())]
    service = request.app[WEBHOOKS]
    targets = []
    if account is None and service.urls:
        secrets = await service.signing_secrets()
        targets = [ping.Target(url, None, None, secrets, trusted=True) for url in service.urls]
    rows = await request.app[DATABASE].run(store.account_endpoints, account)
    own = await service.endpoint_secrets(account)
    targets += [ping.Target(r["url"], r["id"], r["account"], own[r["id"]]) for r in rows if r["id"] in own]
    if body.endpoint is None:
        return targets
    given = body.endpoint
    chosen = [t for t in targets if given in (t.id, t.url, public_url(t.url))]
    if not chosen:
        raise NotFound("No configured webhook with this id or URL" + (" for this account." if account else "."),
                       code="webhook_not_found")
    return chosen


async def ping_webhooks(request: web.Request) -> web.Response:
    """``POST /webhooks/test`` (admin key) and ``POST /accounts/{account}/webhooks/test`` (its own webhooks)."""
    account = _scope(request)
    body = parse(WebhookTestRequest, await json_object(request, allow_empty=True))
    targets = await _ping_targets(request, body, account)
    results = await ping.ping(targets, request.app[WEBHOOKS].egress, request.app[SETTINGS].webhook_timeout)
    if _tenant(request):
        results = [ping.tenant_view(r) for r in results]
    return web.json_response({"results": results})
