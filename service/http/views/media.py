"""``GET /media/{id}``: the bytes of a message's media (a contact's once downloaded, or one we sent), by message id.

Read through the media store (``MEDIA_STORE``: the disk, or a remote store) only, streamed. HTTP's caching and
partial requests work as a browser or a download tool expects: the ETag is the sha256 (the content never changes
under an id), ``If-None-Match`` answers 304, one ``Range`` answers 206 (or 416 when it lies past the end); a
request for several ranges is answered whole (200), which RFC 9110 allows, rather than multipart/byteranges.

Everything about the file came from a contact, so nothing of it is trusted: the response is always an
attachment (a browser never renders it on the gateway's origin), with ``nosniff`` and a sandboxing CSP; the
Content-Type is the declared mimetype only when it is a plain ``type/subtype``; the filename loses any path,
control characters and quotes, and goes as RFC 6266's ``filename*`` when it is not ASCII.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from email.utils import encode_rfc2231
from typing import Any

import structlog
from aiohttp import payload, web

from service.errors import error_response
from service.http.appkeys import DATABASE, MEDIA_STORE
from service.http.views.context import account_of
from service.store import inbound_media

log = structlog.get_logger("gateway.media")

RETRY_AFTER = 5  # seconds, on 409 media_not_ready
CACHE = "private, max-age=86400"  # the bytes under an id never change; only the key's holder may keep them
FALLBACK_TYPE = "application/octet-stream"
_MIMETYPE = re.compile(r"[\w.+-]{1,127}/[\w.+-]{1,127}(?:\s*;\s*[\w.+-]{1,64}=[\w.+-]{1,64}){0,4}", re.ASCII)
_UNSAFE_ASCII = re.compile(r'[^\x20-\x7e]|["\\%]')
MAX_FILENAME = 200


def content_type(mimetype: str | None) -> str:
    """The sender's mimetype when it is a plain ``type/subtype[; key=value]``, else octet-stream."""
    return mimetype if mimetype is not None and _MIMETYPE.fullmatch(mimetype) else FALLBACK_TYPE


def safe_filename(name: str | None) -> str | None:
    """A contact's filename as a name only: no directories, no control or format characters, at most
    MAX_FILENAME characters; None when nothing is left."""
    if not name:
        return None
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] not in "CZ" or c == " ").strip(" .")
    return name[:MAX_FILENAME] or None


def disposition(filename: str | None, message_id: str, mimetype: str) -> str:
    """``attachment`` with the filename (RFC 6266): the message id and an extension when it has none; a non-ASCII
    name goes as ``filename*`` (RFC 5987, UTF-8) after an ASCII fallback."""
    name = safe_filename(filename)
    if name is None:
        extension = mimetypes.guess_extension(mimetype.split(";", 1)[0].strip()) or ""
        name = f"{message_id}{extension}"
    fallback = _UNSAFE_ASCII.sub("_", name)
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += "; filename*=" + encode_rfc2231(name, "utf-8")
    return value


def _byte_range(request: web.Request, etag: str, size: int) -> tuple[int, int] | None:
    """[start, end) of one satisfiable Range, None to send the whole file; raises ``_Unsatisfiable``. A Range
    that is not one well-formed ``bytes=`` range (several, or garbage) is ignored, as RFC 9110 lets a server do;
    so is one whose If-Range names another version."""
    if "Range" not in request.headers:
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        return None
    try:
        wanted = request.http_range
    except ValueError:
        return None
    start, stop = wanted.start, wanted.stop
    if start is None:
        return None
    if start < 0:  # a suffix: the last -start bytes
        start = max(0, size + start)
    stop = size if stop is None else min(stop, size)
    if start >= size:
        raise _Unsatisfiable
    return start, stop


class _Unsatisfiable(Exception):
    pass


def _unservable(found: dict[str, Any] | None) -> web.Response | None:
    """The contract's error for a message without servable media; None when its bytes should be there."""
    if found is None:
        return error_response(404, "media_not_found", "No media with this message id.")
    if found["state"] == "downloading":
        return error_response(409, "media_not_ready", "The media is still being downloaded; retry shortly.",
                              headers={"Retry-After": str(RETRY_AFTER)})
    if found["state"] == "failed":
        return error_response(410, "media_failed", "The media could not be downloaded from WhatsApp.",
                              details={"reason": found["error"]})
    if found["state"] == "pruned":
        return _pruned()
    return None


def _pruned() -> web.Response:
    return error_response(410, "media_pruned", "The media was deleted by the media retention.")


async def get_media(request: web.Request) -> web.StreamResponse:
    """The bytes, or the contract's error. Not a prepared StreamResponse: the body streams from the store as the
    response's payload, so the middlewares still add their headers (X-Request-ID, CORS) before it is sent."""
    message_id = request.match_info["id"]
    name = account_of(request).name
    found = await request.app[DATABASE].run(inbound_media.served, name, message_id)
    refused = _unservable(found)
    if refused is not None:
        return refused
    assert found is not None
    store = request.app[MEDIA_STORE]
    sha256 = found["sha256"]
    size = await store.stat(sha256)
    if size is None:  # the row says stored, the store no longer has it
        log.warning("media.blob_missing", message_id=message_id)
        return _pruned()
    etag = f'"{sha256}"'
    mimetype = content_type(found["mimetype"])
    headers = {"ETag": etag, "Cache-Control": CACHE, "Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'; sandbox",
               "Content-Disposition": disposition(found["filename"], message_id, mimetype)}
    if any(tag.value in (sha256, "*") for tag in request.if_none_match or ()):
        return web.Response(status=304, headers=headers)
    try:
        part = _byte_range(request, etag, size)
    except _Unsatisfiable:
        return error_response(416, "range_not_satisfiable", f"The media has {size} bytes; the Range lies past them.",
                              headers={"Content-Range": f"bytes */{size}"})
    start, stop = part or (0, size)
    if part is not None:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers |= {"Content-Type": mimetype, "Content-Length": str(stop - start)}
    body = payload.AsyncIterablePayload(store.read(sha256, start, stop))
    return web.Response(status=206 if part is not None else 200, body=body, headers=headers)
