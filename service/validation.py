"""Input checks for the public API: each returns clean values or raises a 400 with a precise code."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from .errors import ApiError, BadRequest

_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PHONE_DIGITS = re.compile(r"^\+?[1-9]\d{6,14}$")


async def json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}`` where the endpoint allows it."""
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    return body


def phone_number(value: Any) -> str:
    """Normalise to ``+<digits>`` (E.164): 7 to 15 digits, no leading zero."""
    if not isinstance(value, str):
        raise BadRequest("phone_number must be a string like +1234567890.", code="invalid_phone_number")
    compact = _PHONE_SEPARATORS.sub("", value.strip())
    if not _PHONE_DIGITS.match(compact):
        raise BadRequest(
            "phone_number must be in international format, 7 to 15 digits, like +1234567890.",
            code="invalid_phone_number",
        )
    return "+" + compact.lstrip("+")


def message_text(value: Any, max_chars: int) -> str:
    if value is None:
        raise BadRequest("message is required.", code="invalid_message")
    if not isinstance(value, str):
        raise BadRequest("message must be a string.", code="invalid_message")
    if not value.strip():
        raise BadRequest("message must not be empty.", code="invalid_message")
    if len(value) > max_chars:
        raise ApiError(
            f"message is longer than {max_chars} characters.", code="message_too_long", status=400
        )
    return value
