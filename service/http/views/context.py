"""Which account a request acts on: ``/accounts/{account}/...`` names it; the original routes
(``/status``, ``/send``, ...) act on ``default``. In a cluster the account may be served by another
instance: ``on_owner`` forwards the routes that need its WhatsApp session there."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from service.errors import ApiError, NotFound
from service.http.appkeys import ACCOUNTS, SETTINGS
from service.runtime.accounts import DEFAULT, Account, Elsewhere

# What a forwarded request keeps: the caller's credentials, body type, request id and idempotency key.
FORWARD_HEADERS = ("X-API-Key", "Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key", "Accept")
# What the owner's answer keeps besides its body and status.
ANSWER_HEADERS = ("Retry-After", "Cache-Control", "Location", "X-Request-ID")
FORWARDED_BY = "X-WA-Forwarded-By"
FORWARD_TIMEOUT = 40.0  # above POST /connect's wait for a QR


def account_name(request: web.Request) -> str:
    return request.match_info.get("account", DEFAULT)


def account_of(request: web.Request) -> Account | Elsewhere:
    """The account served here, or (in a cluster) one that another instance serves; 404 for no account."""
    account = request.app[ACCOUNTS].lookup(account_name(request))
    if account is None:
        raise NotFound("No account with this name.", code="account_not_found")
    return account


async def forward(request: web.Request, account: Elsewhere) -> web.Response:
    """The answer of the instance that serves ``account`` to this very request (one hop at most)."""
    if account.owner_url is None or FORWARDED_BY in request.headers:
        owner = f"instance {account.owner}" if account.owner else "no instance yet (its lease is being taken over)"
        raise ApiError(f"The account {account.name} is served by {owner}, which this instance cannot reach "
                       "(WA_INSTANCE_URL); retry in a few seconds or call that instance.", code="account_elsewhere",
                       status=503, details={"instance": account.owner})
    headers = {name: request.headers[name] for name in FORWARD_HEADERS if name in request.headers}
    headers[FORWARDED_BY] = request.app[SETTINGS].instance_id
    body = await request.read()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT)) as session:
            async with session.request(request.method, account.owner_url + request.path_qs, data=body or None,
                                       headers=headers, allow_redirects=False) as res:
                answer = await res.read()
                kept = {name: res.headers[name] for name in ANSWER_HEADERS if name in res.headers}
                return web.Response(status=res.status, body=answer, headers=kept,
                                    content_type=res.content_type, charset=res.charset)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(f"The instance serving {account.name} ({account.owner}) did not answer: {type(exc).__name__}; "
                       "retry in a few seconds.", code="account_elsewhere", status=503,
                       details={"instance": account.owner}) from None


def served_here(request: web.Request) -> Account:
    """The account of a view wrapped in ``on_owner``: one served here (the wrapper forwarded any other)."""
    account = account_of(request)
    assert isinstance(account, Account), "on_owner forwards a request on an account served elsewhere"
    return account


Handler = Callable[[web.Request], Awaitable[web.Response]]


def on_owner(view: Handler) -> Handler:
    """A view that needs the account's WhatsApp session runs where the session is: here, or forwarded."""
    @functools.wraps(view)
    async def wrapper(request: web.Request) -> web.Response:
        account = account_of(request)
        if isinstance(account, Elsewhere):
            return await forward(request, account)
        return await view(request)
    return wrapper
