"""An account's WhatsApp groups (issue 26, item 3): list, create, read, rename, describe, change members, invite
links, join, leave. Thin: each view checks its input (models/groups.py; a group id in the path here), then asks the
account's worker, which asks WhatsApp; nothing is stored by the gateway. The worker's refusals keep their status and
code (404 group_not_found, 403 not_admin, 409 not_connected, ...). A participant WhatsApp refused (privacy, not on
WhatsApp, already in) is a result of its own in ``results``, never a failure of the whole call.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from service.errors import BadRequest
from service.http.appkeys import DATABASE, SETTINGS
from service.http.models import parse
from service.http.models.base import iso
from service.http.models.conversation import NoFieldsRequest
from service.http.models.groups import GroupCreateRequest, GroupUpdateRequest, JoinRequest, ParticipantsRequest
from service.http.validation import InvalidInput, group_id, json_object
from service.http.views.context import account_name, on_owner, served_here
from service.store import chat_events


def _id(request: web.Request) -> str:
    """The path's group id: ``120363...@g.us`` plain or URL-encoded (``%40``: aiohttp decodes the path first)."""
    try:
        return group_id(request.match_info["id"])
    except InvalidInput as exc:
        raise BadRequest(exc.message, code="invalid_group_id") from None


async def _body(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    return await json_object(request, allow_empty=allow_empty, max_bytes=request.app[SETTINGS].max_body_bytes)


async def _named(request: web.Request, answer: dict[str, Any]) -> dict[str, Any]:
    """The group's chat takes the subject the worker answered (our create or rename sends us no notification)."""
    note = {"group_id": answer.get("id"), "subject": answer.get("subject")}
    await request.app[DATABASE].run(chat_events.group_named, account_name(request), note, time.time())
    return answer


def _metadata(answer: dict[str, Any]) -> dict[str, Any]:
    """The worker's metadata, with ``created_at`` as every time of the API (WhatsApp gives epoch seconds)."""
    created = answer.get("created_at")
    if isinstance(created, (int, float)) and not isinstance(created, bool):
        answer = {**answer, "created_at": iso(float(created)) if created > 0 else None}
    return answer


@on_owner
async def list_groups(request: web.Request) -> web.Response:
    return web.json_response(await served_here(request).worker.group("GET"))


@on_owner
async def create(request: web.Request) -> web.Response:
    body = parse(GroupCreateRequest, await _body(request))
    answer = await served_here(request).worker.group("POST", body={"subject": body.subject,
                                                                   "participants": body.participants})
    return web.json_response(_metadata(await _named(request, answer)), status=201)


@on_owner
async def get(request: web.Request) -> web.Response:
    gid = _id(request)
    return web.json_response(_metadata(await served_here(request).worker.group("GET", gid)))


@on_owner
async def update(request: web.Request) -> web.Response:
    body = parse(GroupUpdateRequest, await _body(request))  # the body first: an unknown field is named whatever the id
    gid = _id(request)
    fields = body.model_dump(exclude_none=True)
    answer = await served_here(request).worker.group("PATCH", gid, body=fields)
    return web.json_response(_metadata(await _named(request, answer) if "subject" in fields else answer))


@on_owner
async def participants(request: web.Request) -> web.Response:
    action, numbers = parse(ParticipantsRequest, await _body(request)).action()
    gid = _id(request)
    answer = await served_here(request).worker.group("POST", gid, "/participants", body={action: numbers})
    return web.json_response(answer)


@on_owner
async def invite(request: web.Request) -> web.Response:
    gid = _id(request)
    return web.json_response(await served_here(request).worker.group("GET", gid, "/invite"))


@on_owner
async def revoke_invite(request: web.Request) -> web.Response:
    """The current link stops working; the answer is the new one."""
    gid = _id(request)
    return web.json_response(await served_here(request).worker.group("DELETE", gid, "/invite"))


@on_owner
async def join(request: web.Request) -> web.Response:
    body = parse(JoinRequest, await _body(request))
    return web.json_response(await served_here(request).worker.group("POST", None, "/join", body={"code": body.code}))


@on_owner
async def leave(request: web.Request) -> web.Response:
    parse(NoFieldsRequest, await _body(request, allow_empty=True))
    gid = _id(request)
    return web.json_response(await served_here(request).worker.group("POST", gid, "/leave", body={}))
