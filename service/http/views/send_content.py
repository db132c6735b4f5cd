"""What a ``POST /send`` is besides text or media (issue 25): a location, contact cards, a poll, and a reply's quote,
turned into the row's ``OutboundExtra``: the worker's fields (what Baileys is given) and the API's view of them.

A reply names a message of the same chat by our id (a contact's or ours, not failed); the worker is given the quoted
message's WhatsApp id, whose it is and its text, so that the contact's phone shows the quote as WhatsApp does.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import vobject
from aiohttp import web

from service.errors import ApiError, BadRequest, Conflict, NotFound
from service.http.appkeys import DATABASE
from service.http.models import SendRequest
from service.store import outbox_targets
from service.store.outbox import OutboundExtra

POLL_SECRET_BYTES = 32  # a poll's messageSecret, as WhatsApp's apps make it: the key its votes are encrypted to


def identity(body: SendRequest) -> str | None:
    """What the request asked for besides its text or media (the Idempotency-Key's hash part), or None."""
    asked = body.model_dump(include={"location", "contacts", "vcards", "poll", "reply_to", "mentions"},
                            exclude_none=True)
    return json.dumps(asked, sort_keys=True, ensure_ascii=False) if asked else None


def vcard(name: str, phone: str) -> str:
    """A vCard 3.0 of a name and a number as WhatsApp's apps write one (``waid``: the number's WhatsApp id)."""
    card = vobject.vCard()
    card.add("fn").value = name
    card.add("n").value = vobject.vcard.Name(given=name)
    tel = card.add("tel")
    tel.value = phone
    tel.type_param = "CELL"
    tel.params["WAID"] = [phone.lstrip("+")]
    return str(card.serialize())


def _content(body: SendRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """(worker fields, public view) of a location, contact cards or a poll; ({}, {}) for text and media."""
    if body.location is not None:
        place = body.location.model_dump(exclude_none=True)
        return {"location": place}, {"location": place}
    if body.contacts is not None or body.vcards is not None:
        cards = [vcard(c.name, c.phone_number) for c in body.contacts] if body.contacts else list(body.vcards or [])
        names = [c.name for c in body.contacts] if body.contacts else [_fn(card) for card in cards]
        display = names[0] if len(names) == 1 else f"{len(names)} contacts"
        return ({"contacts": {"display_name": display, "vcards": cards}},
                {"contacts": [{"name": n} for n in names], "vcards": cards})
    if body.poll is not None:
        poll = body.poll
        secret = base64.b64encode(secrets.token_bytes(POLL_SECRET_BYTES)).decode()
        return ({"poll": {"name": poll.question, "values": list(poll.options),
                          "selectable_count": 0 if poll.multiple else 1, "secret": secret}},
                {"poll": {"question": poll.question, "options": list(poll.options), "multiple": poll.multiple}})
    return {}, {}


def _fn(card: str) -> str:
    return str(vobject.readOne(card).fn.value)


async def extra_of(request: web.Request, account: str, body: SendRequest) -> OutboundExtra | None:
    """The row's ``OutboundExtra`` for the request's location, contacts, poll or reply; None for a plain text or
    media. 404 ``message_not_found`` for a ``reply_to`` that names no message of the account."""
    asked = identity(body)
    if asked is None:
        return None
    worker, public = _content(body)
    if body.reply_to is not None:
        worker["quoted"] = await quoted(request, account, body.reply_to, body.recipient)
    if body.mentions is not None:
        worker["mentions"] = list(body.mentions)
        public["mentions"] = list(body.mentions)
    return OutboundExtra(action=body.content_kind,
                         content=json.dumps({"worker": worker, "public": public or None}),
                         identity=asked, reply_to=body.reply_to)


async def reply_extra(request: web.Request, account: str, recipient: str, reply_to: str | None) -> OutboundExtra | None:
    """A multipart media send's reply (its ``reply_to`` field), as ``extra_of`` makes it for a JSON one."""
    if reply_to is None:
        return None
    worker = {"quoted": await quoted(request, account, reply_to, recipient)}
    return OutboundExtra(action=None, content=json.dumps({"worker": worker, "public": None}),
                         identity=json.dumps({"reply_to": reply_to}, sort_keys=True), reply_to=reply_to)


async def quoted(request: web.Request, account: str, message_id: str, phone: str) -> dict[str, Any]:
    """The worker's view of the message a reply quotes (``{id, from_me, text, lid}``), checked: a message of the
    account (404), of this chat (400), not failed (409)."""
    target = await request.app[DATABASE].run(outbox_targets.find, account, message_id)
    if target is None:
        raise NotFound("reply_to names no message of this account.", code="message_not_found")
    if not target.is_message:
        raise Conflict("reply_to names an action (a reaction, an edit, ...), not a message.", code="not_a_message")
    if target.chat != phone:
        raise BadRequest("reply_to names a message of another chat: a reply quotes a message of its own chat.",
                         code="invalid_reply_to")
    if target.direction == "out" and target.row["status"] == "failed":
        raise ApiError("reply_to names a message that failed: it never reached the contact.",
                       code="message_failed", status=409)
    shown = {"id": target.row["wa_id"], "from_me": target.direction == "out", "text": target.text,
             "lid": target.row.get("lid")}
    if target.direction == "in" and target.row.get("group_id"):
        shown["participant"] = target.row["chat_jid"]  # who in the group wrote it
    return shown
