"""The accounts: ``GET /accounts``, ``POST /accounts``, ``GET /accounts/{account}``, ``PATCH
/accounts/{account}`` (its own proxy for WhatsApp, from its next connection), ``DELETE /accounts/{account}``
(log out at WhatsApp, remove its data, keep nothing behind)."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web

from service import proxy_url
from service.errors import ApiError, Conflict
from service.http.appkeys import ACCOUNTS, DATABASE, SCOPED_KEYS, SETTINGS, WEBHOOKS
from service.http.models import AccountCreateRequest, AccountUpdateRequest, parse
from service.http.validation import json_object
from service.http.views.context import account_of, on_owner
from service.runtime.accounts import DEFAULT, Account, Elsewhere
from service.store import accounts as registry
from service.store.event_log import iso

log = structlog.get_logger("gateway.accounts")

STATUS_TIMEOUT = 2.0


async def _view(request: web.Request, account: Account | Elsewhere) -> dict[str, Any]:
    """The account with its WhatsApp state (null while its worker does not answer, or, in a cluster, while
    another instance serves it: ``instance`` names that one)."""
    row = await request.app[DATABASE].run(registry.get, account.name) or {}
    proxy = _proxy(request, row.get("proxy_url"))
    if isinstance(account, Elsewhere):
        return {"name": account.name, "shard": row.get("shard"), "created_at": iso(row.get("created_at")),
                "state": None, "connected": None, "phone_number": None, "proxy": proxy, "instance": account.owner}
    try:
        async with asyncio.timeout(STATUS_TIMEOUT):
            status = await account.worker.status()
    except (ApiError, TimeoutError):
        status = {}
    return {
        "name": account.name, "shard": account.shard, "created_at": iso(row.get("created_at")),
        "state": status.get("state"), "connected": status.get("connected"),
        "phone_number": status.get("phone_number"), "proxy": proxy,
    }


def _proxy(request: web.Request, own: str | None) -> dict[str, Any]:
    """The proxy the account's connections use, redacted: its own (a URL or ``direct``), else WA_PROXY_URL."""
    if own is not None:
        return {"url": None if own == proxy_url.DIRECT else proxy_url.redact(own), "source": "account"}
    default = request.app[SETTINGS].proxy
    return {"url": default.redacted if default else None, "source": "global"}


async def list_accounts(request: web.Request) -> web.Response:
    runtime = request.app[ACCOUNTS]
    names = await runtime.listed()
    found = [a for a in (runtime.lookup(n) for n in names) if a is not None]
    views = await asyncio.gather(*(_view(request, a) for a in found))
    return web.json_response({"accounts": list(views)})


async def create(request: web.Request) -> web.Response:
    body = parse(AccountCreateRequest, await json_object(request))
    try:
        account = await request.app[ACCOUNTS].create(body.name, body.proxy_url)
    except registry.AccountExists:
        raise Conflict(f"An account named {body.name} exists already.", code="account_exists") from None
    except registry.TooManyAccounts as exc:
        raise Conflict(f"This gateway serves at most {exc.limit} accounts (WA_MAX_ACCOUNTS).",
                       code="too_many_accounts") from None
    return web.json_response(await _view(request, account), status=201,
                             headers={"Location": f"/accounts/{account.name}"})


@on_owner
async def get(request: web.Request) -> web.Response:
    return web.json_response(await _view(request, account_of(request)))


@on_owner
async def update(request: web.Request) -> web.Response:
    """Admin key only (middlewares.py): a proxy decides where the account's traffic goes."""
    body = parse(AccountUpdateRequest, await json_object(request))
    account = account_of(request)
    await request.app[ACCOUNTS].set_proxy(account.name, body.proxy_url)
    return web.json_response(await _view(request, account))


@on_owner
async def delete(request: web.Request) -> web.Response:
    account = account_of(request)
    if account.name == DEFAULT:
        raise Conflict("The default account always exists; POST /disconnect unlinks it.", code="default_account")
    result = await request.app[ACCOUNTS].delete(account.name)
    request.app[SCOPED_KEYS].invalidate()  # its keys stop working now, not at the next key change
    await request.app[WEBHOOKS].forget_account(account.name)  # its webhook rows went with it: stop their workers
    return web.json_response({"name": account.name, "deleted": True, "unlinked": result["unlinked"]})
