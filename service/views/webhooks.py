"""Webhook deliveries: ``GET /webhooks/deliveries``, ``GET /webhooks/deliveries/{id}``,
``POST /webhooks/deliveries/{id}/retry`` and the bulk redrive ``POST /webhooks/deliveries/retry``."""

from __future__ import annotations

import time

import structlog
from aiohttp import web

from . import paging
from ..errors import BadRequest, Conflict, NotFound
from ..keys import DATABASE, SETTINGS, WEBHOOKS
from ..models import DeliveryOut, DeliveryPage, RedriveOut, RedriveRequest, parse
from ..store import webhooks as store
from ..validation import json_object
from ..webhooks.delivery import public_url

log = structlog.get_logger("gateway.webhooks")

MAX_LIMIT = 200


def _cursor(seq: int) -> str:
    return paging.encode("d1", seq)


def _seq(cursor: str) -> int:
    return paging.decode("d1", cursor)


def _out(request: web.Request, row: dict, *, with_event: bool = False) -> DeliveryOut:
    active = row["endpoint"] in request.app[WEBHOOKS].workers
    return DeliveryOut.from_row(row, endpoint=public_url(row["endpoint"]), active=active, with_event=with_event)


async def _endpoint(request: web.Request, given: str) -> str:
    """The stored endpoint URL a caller means, given as configured or as the API shows it."""
    for row in await request.app[DATABASE].run(store.endpoints):
        if given in (row["url"], public_url(row["url"])):
            return row["url"]
    raise NotFound("No webhook endpoint with this URL.", code="endpoint_not_found")


async def list_deliveries(request: web.Request) -> web.Response:
    query = request.query
    status = query.get("status")
    if status is not None and status not in store.STATUSES:
        raise BadRequest(f"status must be one of {', '.join(store.STATUSES)}.", code="invalid_status")
    limit = paging.limit(query, MAX_LIMIT)
    before = _seq(query["cursor"]) if "cursor" in query else None
    endpoint = await _endpoint(request, query["endpoint"]) if "endpoint" in query else None
    rows = await request.app[DATABASE].run(store.list_deliveries, status=status, endpoint=endpoint,
                                           limit=limit + 1, before_seq=before)
    more = len(rows) > limit
    rows = rows[:limit]
    page = DeliveryPage(deliveries=[_out(request, r) for r in rows],
                        next_cursor=_cursor(rows[-1]["seq"]) if more else None)
    return web.json_response({"deliveries": [d.public() for d in page.deliveries], "next_cursor": page.next_cursor})


async def get_delivery(request: web.Request) -> web.Response:
    row = await request.app[DATABASE].run(store.get, request.match_info["id"])
    if row is None:
        raise NotFound("No webhook delivery with this id.", code="delivery_not_found")
    return web.json_response(_out(request, row, with_event=True).public())


async def retry_delivery(request: web.Request) -> web.Response:
    delivery_id = request.match_info["id"]
    max_age = request.app[SETTINGS].webhook_max_age
    try:
        row = await request.app[DATABASE].run(store.retry, delivery_id, time.time(), max_age)
    except store.NotFailed as exc:
        raise Conflict(f"The delivery is {exc.status}; only a failed delivery can be retried.",
                       code="not_failed") from None
    if row is None:
        raise NotFound("No webhook delivery with this id.", code="delivery_not_found")
    log.info("webhook.redriven", delivery_id=delivery_id, endpoint=public_url(row["endpoint"]))
    request.app[WEBHOOKS].notify()
    return web.json_response(_out(request, row).public())


async def retry_failed(request: web.Request) -> web.Response:
    body = parse(RedriveRequest, await json_object(request, allow_empty=True))
    endpoint = await _endpoint(request, body.endpoint) if body.endpoint is not None else None
    max_age = request.app[SETTINGS].webhook_max_age
    count = await request.app[DATABASE].run(store.retry_failed, time.time(), max_age, endpoint)
    log.info("webhook.redriven_bulk", deliveries=count,
             endpoint=public_url(endpoint) if endpoint is not None else None)
    request.app[WEBHOOKS].notify()
    return web.json_response(RedriveOut(retried=count).model_dump())
