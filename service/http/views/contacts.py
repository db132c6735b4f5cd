"""An account's contacts (issue 27): ``GET /contacts`` (what the gateway knows: push names, the phone's names, LIDs)
and ``GET /contacts/{phone}``, which asks WhatsApp live through the worker while the account is connected (on
WhatsApp or not, its LID, its profile picture when asked) and keeps what it learns; not connected, it answers what
is stored. A picture URL is never stored: WhatsApp's URLs expire.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any

from aiohttp import web

from service.errors import ApiError, BadRequest, NotFound
from service.http.appkeys import DATABASE
from service.http.models import chats as shown
from service.http.validation import InvalidInput, phone_number
from service.http.views import paging
from service.http.views.context import account_of, on_owner, served_here
from service.store import contact_profiles

MAX_LIMIT = 200
MAX_QUERY = 200
LID_SUFFIX = "@lid"
PHONE_KEY = re.compile(r"\+[0-9]{6,17}")
LID_KEY = re.compile(r"[0-9]{1,40}@lid")
MAX_URL = 4096
UNREACHED = (409, 503, 504)  # not connected, or WhatsApp/the worker away: what is stored is the answer


def _phone(raw: str) -> str:
    try:
        return phone_number(raw)
    except InvalidInput as exc:
        raise BadRequest(exc.message, code="invalid_phone_number") from None


def _cursor(key: str) -> str:
    return base64.urlsafe_b64encode(f"k1:{key}".encode()).decode().rstrip("=")


def _after(cursor: str) -> str:
    """The last key of the previous page (a phone number or a LID), from its cursor."""
    try:
        found, _, key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        if found != "k1" or not (PHONE_KEY.fullmatch(key) or LID_KEY.fullmatch(key)):
            raise ValueError
        return key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor must be a next_cursor from an earlier page.", code="invalid_cursor") from None


async def list_contacts(request: web.Request) -> web.Response:
    name = account_of(request).name
    limit = paging.limit(request.query, MAX_LIMIT)
    after = _after(request.query["cursor"]) if "cursor" in request.query else None
    q = request.query.get("q")
    if q is not None and (not 1 <= len(q) <= MAX_QUERY or not q.strip() or "\x00" in q):
        raise BadRequest(f"q must be 1 to {MAX_QUERY} characters of a name or number.", code="invalid_query")
    rows = await request.app[DATABASE].run(contact_profiles.list_contacts, name, limit=limit + 1, after=after, q=q)
    more = len(rows) > limit
    rows = rows[:limit]
    return web.json_response({"contacts": [shown.contact(r) for r in rows],
                              "next_cursor": _cursor(rows[-1]["key"]) if more else None})


def _picture(request: web.Request) -> bool:
    raw = request.query.get("picture", "false")
    if raw not in ("true", "false"):
        raise BadRequest("picture must be true or false.", code="invalid_picture")
    return raw == "true"


@on_owner
async def get_contact(request: web.Request) -> web.Response:
    account = served_here(request)
    phone = _phone(request.match_info["phone"])
    picture = _picture(request)
    db = request.app[DATABASE]
    live: dict[str, Any] | None = None
    if account.link.connected:
        try:
            live = await account.worker.contact(phone, picture=picture)
        except ApiError as exc:
            if exc.status not in UNREACHED:
                raise
    if live is not None:
        lid = live.get("lid") if isinstance(live.get("lid"), str) and live["lid"].endswith(LID_SUFFIX) else None
        now = time.time()
        await db.run(contact_profiles.note, account.name, phone, lid, now, on_whatsapp=live.get("on_whatsapp") is True,
                     checked_at=now)
    row = await db.run(contact_profiles.get, account.name, phone)
    if row is None:
        raise NotFound("The gateway knows nothing of this contact (and could not ask WhatsApp now).",
                       code="contact_not_found")
    answer = shown.contact(row)
    if picture:
        url = live.get("picture_url") if live is not None else None
        answer["picture_url"] = url if isinstance(url, str) and url.startswith("http") and len(url) <= MAX_URL else None
    return web.json_response(answer)
