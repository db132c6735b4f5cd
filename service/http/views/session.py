"""The WhatsApp session as the public API sees it: status, connect, disconnect."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.errors import ApiError, error_response
from service.http.appkeys import PAIRING_LIMIT, SETTINGS
from service.http.models import ConnectRequest, DisconnectRequest, parse
from service.http.pairing_limit import PairingRateLimited
from service.http.validation import json_object
from service.http.views.context import account_name, on_owner, served_here
from service.runtime.worker_client import WorkerApi
from service.states import WORKER_PAIRING_ERRORS


@on_owner
async def status(request: web.Request) -> web.Response:
    return web.json_response(await served_here(request).worker.status())


@on_owner
async def connect(request: web.Request) -> web.Response:
    # `curl -X POST .../connect` (no body, no Content-Type) is the original contract and stays valid.
    body = parse(ConnectRequest, await json_object(request, allow_empty=True))
    wait = request.app[SETTINGS].connect_qr_wait
    worker = served_here(request).worker
    if body.phone_number is None:
        return web.json_response(await worker.connect(wait))
    try:
        return web.json_response(await _pairing_code(request, worker, wait, body.phone_number))
    except PairingRateLimited as exc:
        return error_response(exc.status, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)},
                              details=exc.details)


async def _pairing_code(request: web.Request, worker: WorkerApi, wait: float, phone_number: str) -> dict[str, Any]:
    """POST /connect {"phone_number"}: a code asked for within the account's limit (service/http/pairing_limit.py)."""
    limit, name = request.app[PAIRING_LIMIT], account_name(request)
    token = limit.take(name)
    try:
        answer = await worker.connect(wait, phone_number=phone_number)
    except ApiError as exc:
        if exc.code == PairingRateLimited.code:  # WhatsApp's own refusal: hold the account
            raise limit.refused(name) from None
        if exc.code not in WORKER_PAIRING_ERRORS:  # WhatsApp was not asked (a refused code counts)
            limit.give_back(name, token)
        raise
    if answer.get("state") == "connected":  # a linked account asks for no code
        limit.give_back(name, token)
    return answer


@on_owner
async def disconnect(request: web.Request) -> web.Response:
    parse(DisconnectRequest, await json_object(request, allow_empty=True))
    return web.json_response(await served_here(request).worker.disconnect())
