"""Keys scoped to one account (admin key only): ``POST /accounts/{account}/keys`` makes one and shows its
value this once, ``GET /accounts/{account}/keys`` lists them without values, ``DELETE
/accounts/{account}/keys/{id}`` revokes one (at once: the middleware's table is invalidated), ``PATCH
/accounts/{account}/keys/{id}`` sets its MCP rails (read on every MCP request: no cache to invalidate)."""

from __future__ import annotations

import time
from sqlite3 import Connection
from typing import Any

import structlog
from aiohttp import web

from service.auth.scoped_keys import new_key
from service.errors import NotFound
from service.http.appkeys import DATABASE, SCOPED_KEYS
from service.http.models import KeyCreated, KeyCreateRequest, KeyOut, KeyUpdateRequest, parse
from service.http.validation import json_object
from service.store import accounts as store
from service.store import mcp_rails

log = structlog.get_logger("gateway.keys")


async def _account(request: web.Request) -> str:
    name = request.match_info["account"]
    if await request.app[DATABASE].run(store.get, name) is None:
        raise NotFound("No account with this name.", code="account_not_found")
    return name


async def create_key(request: web.Request) -> web.Response:
    account = await _account(request)
    body = parse(KeyCreateRequest, await json_object(request, allow_empty=True))
    key, digest, prefix = new_key()
    row = await request.app[DATABASE].run(_create, account, digest, prefix, body, time.time())
    request.app[SCOPED_KEYS].invalidate()
    log.info("account_key.created", account=account, key_id=row["id"])  # never the key or its prefix
    created = KeyCreated.from_row(row, key=key).model_dump(exclude={"mcp"})
    if body.mcp is not None:
        created["mcp"] = body.mcp.model_dump(exclude_none=True)
    return web.json_response(created, status=201, headers={"Cache-Control": "no-store"})


def _create(conn: Connection, account: str, digest: str, prefix: str, body: KeyCreateRequest,
            now: float) -> dict[str, Any]:
    """The key and its MCP rails in one transaction: a key never works without the rails it was given."""
    row = store.create_key(conn, account, digest, prefix, body.label, now)
    if body.mcp is not None:
        mcp_rails.set_key_rails(conn, row["id"], body.mcp.tools, body.mcp.send_budget_per_hour, body.mcp.dry_run)
    return row


async def list_keys(request: web.Request) -> web.Response:
    account = await _account(request)
    rows, rails = await request.app[DATABASE].run(_listing, account)
    return web.json_response({"keys": [KeyOut.from_row(r, rails.get(r["id"])).shown() for r in rows]})


def _listing(conn: Connection, account: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    return store.list_keys(conn, account), mcp_rails.rails_of_keys(conn, account)


async def revoke_key(request: web.Request) -> web.Response:
    account = await _account(request)
    row = await request.app[DATABASE].run(store.revoke_key, account, request.match_info["id"], time.time())
    if row is None:
        raise NotFound("This account has no key with this id.", code="key_not_found")
    request.app[SCOPED_KEYS].invalidate()
    log.info("account_key.revoked", account=account, key_id=row["id"])
    rails = await request.app[DATABASE].run(mcp_rails.rails_of_keys, account)
    return web.json_response(KeyOut.from_row(row, rails.get(row["id"])).shown())


async def update_key(request: web.Request) -> web.Response:
    """``PATCH``: a key's MCP rails, replaced whole; a live key's sessions follow them from their next request."""
    account = await _account(request)
    body = parse(KeyUpdateRequest, await json_object(request))
    row = await request.app[DATABASE].run(_set_rails, account, request.match_info["id"], body)
    if row is None:
        raise NotFound("This account has no key with this id.", code="key_not_found")
    log.info("account_key.rails_set", account=account, key_id=row["id"])
    rails = await request.app[DATABASE].run(mcp_rails.rails_of_keys, account)
    return web.json_response(KeyOut.from_row(row, rails.get(row["id"])).shown())


def _set_rails(conn: Connection, account: str, key_id: str, body: KeyUpdateRequest) -> dict[str, Any] | None:
    row = store.get_key(conn, account, key_id)
    if row is not None:
        rails = body.mcp
        mcp_rails.set_key_rails(conn, key_id, rails.tools if rails else None,
                                rails.send_budget_per_hour if rails else None, rails.dry_run if rails else None)
    return row
