"""Input checks for the public API: the JSON body reader and the rules for phone numbers and text.

Everything here turns hostile input into a 4xx with a precise code, before anything else runs:
- the body: ``application/json`` only (415), read within ``WA_BODY_TIMEOUT`` (408), a broken
  ``Content-Encoding`` or chunked framing (400), a client that goes away (``ClientAborted``);
- the JSON: strict UTF-8, at most ``MAX_JSON_DEPTH`` levels, integers within 64 bits, no
  NaN/Infinity, no duplicate keys, no lone surrogates (``invalid_json``);
- phone numbers: one rule shared with the worker (``node_worker/src/phone.js``), pinned by the
  vectors in ``tests/fixtures/phone_numbers.json``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import phonenumbers
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from service import proxy_url
from service.errors import (
    ApiError,
    BadRequest,
    ClientAborted,
    RequestTimeout,
    UnsupportedMediaType,
)
from service.http.appkeys import SETTINGS
from service.http.body_deadline import body_deadline

MAX_JSON_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidInput(ValueError):
    """A value breaks one of the rules below; the message is safe to show (it never echoes input).

    ``code`` overrides the field's error code (``message_too_long`` rather than ``invalid_message``).
    """

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code


# --- the body ------------------------------------------------------------------------------------

def _require_json_content_type(request: web.Request) -> None:
    if "Content-Type" not in request.headers:
        raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
    try:
        mime, charset = request.content_type, request.charset
    except Exception:  # a header aiohttp cannot even parse is no JSON content type either
        mime, charset = "", None
    if mime != "application/json":
        raise UnsupportedMediaType("Only Content-Type: application/json is accepted.")
    if charset is not None and charset.lower().replace("-", "") != "utf8":
        raise UnsupportedMediaType("JSON bodies must be UTF-8 (charset=utf-8 or none).")


def _check_transfer_coding(request: web.Request) -> None:
    """Only ``chunked`` is a transfer coding here: aiohttp reads ``gzip, chunked`` as plain chunked, so a
    compressed body would be taken for the JSON itself. Any other coding is refused, never ignored: 400, as
    aiohttp's parser answers ``Transfer-Encoding: gzip`` alone (a client's request we do not take, no failure
    of ours)."""
    codings = [c.strip().lower() for value in request.headers.getall("Transfer-Encoding", []) for c in value.split(",")]
    unknown = [c for c in codings if c not in ("chunked", "")]
    if unknown:
        raise ApiError("Only Transfer-Encoding: chunked is supported; compress with Content-Encoding instead.",
                       code="unsupported_transfer_encoding", status=400)


async def _read_body(request: web.Request, max_bytes: int | None = None) -> bytes:
    """The whole body within ``WA_BODY_TIMEOUT`` seconds (more for a large body that keeps coming:
    body_deadline.py), or a clean 408/400/413/abort. ``max_bytes``: this endpoint's own limit instead of
    ``WA_MAX_BODY_BYTES`` (``POST /send`` takes media in base64)."""
    _check_transfer_coding(request)
    length, limit = request.content_length, request.client_max_size
    if (request.content.is_eof() and length is not None and length <= min(limit, max_bytes or limit)
            and "Content-Encoding" not in request.headers):
        # All of it came with the headers (a small body does): no deadline to keep, no limit to move (its length
        # is within both), and no timer task per request on the hot route (POST /send).
        return await request.read()
    settings = request.app[SETTINGS]
    if max_bytes is not None:
        request = request.clone(client_max_size=max_bytes)
    try:
        async with body_deadline(request, settings.body_timeout, settings.media.body_min_rate):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {settings.body_timeout:g} seconds"
            f" (or at {settings.media.body_min_rate} bytes per second once larger)."
        ) from None
    except (HttpProcessingError, RequestPayloadError):
        # Invalid gzip/deflate data or broken chunked framing; or a body shorter than its
        # Content-Length because the client closed the connection.
        if request.transport is None or request.transport.is_closing():
            raise ClientAborted("connection closed mid-body") from None
        # The parser has given up on this body: mark it finished, or aiohttp's lingering read
        # after our answer would raise the same error again and log it as unhandled.
        request.content.feed_eof()
        raise BadRequest(
            "The request body could not be decoded (Content-Encoding or framing).", code="invalid_body"
        ) from None
    except ConnectionError:
        raise ClientAborted("connection closed mid-body") from None


class _Reject(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:  # also keeps int() away from its 4300-digit ValueError
        raise _Reject("Integers must fit in 64 bits.")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _Reject("Integers must fit in 64 bits.")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Reject("Numbers must be finite.")
    return value


def _parse_constant(text: str) -> float:
    raise _Reject("NaN and Infinity are not JSON.")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Reject("An object repeats a key.")
    return obj


def _check_tree(value: Any) -> None:
    """Depth and string checks without recursion, so no input can exhaust the stack."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _LONE_SURROGATE.search(node):
                raise _Reject("Strings must be valid Unicode (no lone surrogates).")
        elif isinstance(node, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise _Reject(f"JSON may nest at most {MAX_JSON_DEPTH} levels deep.")
            if isinstance(node, dict):
                stack.extend((k, depth) for k in node)
                stack.extend((v, depth + 1) for v in node.values())
            else:
                stack.extend((v, depth + 1) for v in node)


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, bounded depth and numbers, unique keys, valid Unicode strings."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8.", code="invalid_json") from None
    try:
        value = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant,
            object_pairs_hook=_object,
        )
        _check_tree(value)
    except _Reject as exc:
        raise BadRequest(str(exc), code="invalid_json") from None
    except RecursionError:
        raise BadRequest(
            f"JSON may nest at most {MAX_JSON_DEPTH} levels deep.", code="invalid_json"
        ) from None
    except ValueError:  # json.JSONDecodeError and anything else the decoder refuses
        raise BadRequest("The request body is not valid JSON.", code="invalid_json") from None
    return value


async def json_object(request: web.Request, *, allow_empty: bool = False,
                      max_bytes: int | None = None) -> dict[str, Any]:
    """The request body as a JSON object; no body at all is ``{}`` where the endpoint allows it.

    An empty POST with no Content-Type (``curl -X POST .../connect``) stays valid where allowed;
    any body must be ``application/json`` (a ``text/plain`` one is the cross-site request hole).
    """
    if not request.body_exists:
        if allow_empty:
            return {}
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    _require_json_content_type(request)
    raw = await _read_body(request, max_bytes)
    if not raw.strip():
        if allow_empty:
            return {}
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    return body


# --- phone numbers -------------------------------------------------------------------------------

# ASCII only: Python's \d and str.isdigit() accept Arabic-Indic or fullwidth digits, and
# phonenumbers would quietly normalise them; the worker's rule (phone.js) would not.
_PHONE_INPUT = re.compile(r"\+[0-9 ().\-]+")
_PHONE_SEPARATORS = re.compile(r"[ ().\-]")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
PHONE_EXAMPLE = "+1234567890"


def phone_number(value: str) -> str:
    """Normalise to E.164 ``+<digits>``: ASCII, a leading '+', a known country calling code,
    7 to 15 digits, separators space - . ( ) allowed.

    Validity for a given country is not required (the contract's own example, +1234567890, is no
    valid US number): WhatsApp itself answers whether a number exists. The country calling code
    is checked with ``phonenumbers``; the worker checks the same list.
    """
    if not value.isascii():
        raise InvalidInput(f"phone_number must use the digits 0-9 only, like {PHONE_EXAMPLE}.")
    text = value.strip(" ")
    if not _PHONE_INPUT.fullmatch(text):
        raise InvalidInput(
            f"phone_number must be in international format: '+', country code and number, like {PHONE_EXAMPLE}."
        )
    compact = "+" + _PHONE_SEPARATORS.sub("", text[1:])
    if not _E164.fullmatch(compact):
        raise InvalidInput(
            f"phone_number must have 7 to 15 digits after the '+' and no leading 0, like {PHONE_EXAMPLE}."
        )
    try:
        parsed = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if (parsed is None or parsed.country_code is None
            or phonenumbers.region_code_for_country_code(parsed.country_code) == "ZZ"):
        raise InvalidInput("phone_number does not start with a known country calling code.")
    return compact


GROUP_ID_EXAMPLE = "120363012345678901@g.us"
_GROUP_ID = re.compile(r"[0-9]{5,40}(-[0-9]{5,20})?@g\.us")


def group_id(value: str) -> str:
    """A WhatsApp group's jid: ``<digits>@g.us`` (or the older ``<creator>-<time>@g.us``), as GET /groups lists it."""
    if len(value) > 64 or not _GROUP_ID.fullmatch(value):
        raise InvalidInput(f"group_id must be a WhatsApp group id like {GROUP_ID_EXAMPLE}.", code="invalid_group_id")
    return value


def country_calling_codes() -> list[int]:
    """Every country calling code ``phonenumbers`` knows (the worker keeps the same list)."""
    return sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


# --- text ----------------------------------------------------------------------------------------

def message_text(value: str, max_chars: int) -> str:
    if not value.strip():
        raise InvalidInput("message must not be empty.")
    if "\x00" in value:
        raise InvalidInput("message must not contain NUL characters.")
    if _LONE_SURROGATE.search(value):
        raise InvalidInput("message must be valid Unicode (no lone surrogates).")
    if len(value) > max_chars:
        raise InvalidInput(f"message is longer than {max_chars} characters.", code="message_too_long")
    return value


# --- idempotency keys ----------------------------------------------------------------------------

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def idempotency_key(value: str) -> str:
    """``Idempotency-Key``: 1 to 255 visible ASCII characters (no spaces, no control characters)."""
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidInput("Idempotency-Key must be 1 to 255 visible ASCII characters.", "invalid_idempotency_key")
    return value


# --- account names -------------------------------------------------------------------------------

# A slug: lower-case ASCII letters, digits and '-', starting with a letter and ending with a letter or
# a digit, 2 to 32 characters. Safe as one URL path segment, a file or directory name, a supervisord
# or log field, and the same on case-insensitive file systems (lower case only).
_ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]")
ACCOUNT_NAME_EXAMPLE = "sales-eu"
# Words that read as routes or roles rather than accounts (``/accounts/new``, ``/accounts/me``): refused
# so that no account can be mistaken for one. ``default`` is no reserved word: it always exists
# (creating it again is a 409 account_exists).
RESERVED_ACCOUNT_NAMES = frozenset({
    "accounts", "account", "admin", "administrator", "all", "any", "api", "connect", "disconnect", "docs",
    "events", "gateway", "health", "keys", "me", "messages", "metrics", "new", "none", "null", "openapi",
    "qr", "root", "self", "send", "shard", "shards", "static", "status", "system", "webhooks", "worker",
})


def account_name(value: str) -> str:
    """An account name as given (no normalisation: ``Sales`` is refused, not lower-cased)."""
    if not _ACCOUNT_NAME.fullmatch(value):
        raise InvalidInput(
            "name must be 2 to 32 characters: lower-case letters a-z, digits and '-', starting with a "
            f"letter and ending with a letter or digit, like {ACCOUNT_NAME_EXAMPLE}.",
            "invalid_account_name",
        )
    if value in RESERVED_ACCOUNT_NAMES:
        raise InvalidInput("name is a reserved word; choose another account name.", "reserved_account_name")
    return value


def key_label(value: str) -> str:
    """A scoped key's label: at most 100 characters, no control characters."""
    if len(value) > 100:
        raise InvalidInput("label must be at most 100 characters.")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value) or _LONE_SURROGATE.search(value):
        raise InvalidInput("label must be printable text (no control characters).")
    return value


def proxy_setting(value: str) -> str:
    """An account's ``proxy_url``: ``direct`` (no proxy although WA_PROXY_URL is set) or a proxy URL
    (service/proxy_url.py), returned as given (trimmed); the message never repeats it."""
    value = value.strip()
    if value == proxy_url.DIRECT:
        return value
    try:
        return proxy_url.parse(value).url
    except proxy_url.ProxyUrlError as exc:
        raise InvalidInput(f"proxy_url is {exc}, or \"direct\" for no proxy, or null for WA_PROXY_URL.",
                           "invalid_proxy_url") from None
