"""Which account a request acts on: ``/accounts/{account}/...`` names it; the original routes
(``/status``, ``/send``, ...) act on ``default``."""

from __future__ import annotations

from aiohttp import web

from ..accounts import DEFAULT, Account
from ..errors import NotFound
from ..keys import ACCOUNTS


def account_name(request: web.Request) -> str:
    return request.match_info.get("account", DEFAULT)


def account_of(request: web.Request) -> Account:
    account = request.app[ACCOUNTS].get(account_name(request))
    if account is None:
        raise NotFound("No account with this name.", code="account_not_found")
    return account
