"""Who calls /mcp, and the rails that hold for that caller.

The key middleware has already let the request through (an admin key, or a scoped key on /mcp); here the same
presented values are matched again to learn which key it was, because the tools need the key itself (they call
the API with it), its identity (the send budget is per key) and, for a scoped key, the rails the admin set on
it. An admin key's rails are the settings' (WA_MCP_*); a scoped key's own replace each default it sets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aiohttp import web

from service.http.appkeys import API_KEYS, DATABASE, SCOPED_KEYS, SETTINGS
from service.http.middlewares import _presented, key_is_valid
from service.mcp_names import ALL_TOOLS, SAFE_TOOLS
from service.settings import Settings
from service.states import DEFAULT_ACCOUNT
from service.store import mcp_rails


@dataclass(frozen=True, slots=True)
class Rails:
    tools: frozenset[str]  # the tools this caller may list and call
    send_budget: int  # sends per sliding hour
    dry_run: bool  # send tools validate and answer, and send nothing


@dataclass(frozen=True, slots=True)
class Caller:
    key: str  # what it authenticated with: the tools call the API with it (never logged)
    key_ref: str  # the budget's owner: a scoped key's id, or admin:<sha256 prefix>
    scope: str | None  # the account a scoped key is bound to; None: an admin key
    rails: Rails

    @property
    def default_account(self) -> str:
        return self.scope or DEFAULT_ACCOUNT


def registered_tools(settings: Settings) -> frozenset[str]:
    """The tools this gateway has at all: the destructive ones only with WA_MCP_DESTRUCTIVE=true."""
    return frozenset(ALL_TOOLS) if settings.mcp_destructive else frozenset(SAFE_TOOLS)


def admin_rails(settings: Settings) -> Rails:
    return Rails(registered_tools(settings) & frozenset(settings.mcp_tools), settings.mcp_send_budget,
                 settings.mcp_dry_run)


def scoped_rails(settings: Settings, own: dict[str, object]) -> Rails:
    """The settings' rails with what the admin set on the key in their place; a tool the gateway does not have
    (a destructive one without WA_MCP_DESTRUCTIVE) stays out whatever the key lists."""
    defaults = admin_rails(settings)
    tools = own.get("tools")
    budget = own.get("send_budget")
    dry_run = own.get("dry_run")
    return Rails(
        registered_tools(settings) & frozenset(tools) if isinstance(tools, list) else defaults.tools,
        budget if isinstance(budget, int) else defaults.send_budget,
        dry_run if isinstance(dry_run, bool) else defaults.dry_run,
    )


async def caller_of(request: web.Request) -> Caller:
    """The caller of an /mcp request the key middleware let through (else 401 as it would answer)."""
    settings = request.app[SETTINGS]
    for given in _presented(request) or []:
        if key_is_valid(request.app[API_KEYS], given):
            ref = "admin:" + hashlib.sha256(given.encode("ascii")).hexdigest()[:16]
            return Caller(given, ref, None, admin_rails(settings))
        database = request.app[DATABASE]
        scoped = await request.app[SCOPED_KEYS].lookup(database, [given])
        if scoped is not None:
            own = await database.run(mcp_rails.key_rails, scoped.id)
            return Caller(given, scoped.id, scoped.account, scoped_rails(settings, own))
    raise web.HTTPUnauthorized(reason="A valid API key is required.")
