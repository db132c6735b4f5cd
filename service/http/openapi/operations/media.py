"""The documentation of ``/media/{id}``: the bytes of a message's media."""

from __future__ import annotations

from service.http.openapi.spec import DEFAULT_NOTE, Op, Param
from service.http.route_table import Handler
from service.http.views import media

_BYTES = {"*/*": {"schema": {"type": "string", "contentEncoding": "binary"}}}
_SERVED = ("ETag", "Accept-Ranges", "Content-Disposition", "Cache-Control")

OPERATIONS: dict[Handler, Op] = {
    media.get_media: Op(
        "The bytes of a message's media", "Messages", {200: _BYTES, 206: _BYTES, 304: {}},
        params=(Param("Range", "header", {"type": "string", "examples": ["bytes=0-1023", "bytes=-1024"]},
                      "One byte range: 206 with Content-Range; past the end 416. Several ranges, or a malformed "
                      "one, are ignored: the whole file (200)."),
                Param("If-None-Match", "header", {"type": "string"},
                      "The ETag you hold: 304 when it is this media's (it never changes under an id)."),
                Param("If-Range", "header", {"type": "string"},
                      "Send the Range only when the ETag is still this one (it always is).")),
        errors={404: ("media_not_found",), 409: ("media_not_ready",), 410: ("media_failed", "media_pruned"),
                416: ("range_not_satisfiable",)},
        headers={200: _SERVED, 206: (*_SERVED, "Content-Range"), 304: ("ETag", "Cache-Control"),
                 409: ("Retry-After",), 416: ("Content-Range",)},
        description="The media of the message `id` (the message id of `GET /messages/{id}`; received or sent), "
                    "streamed: Content-Type is the sender's mimetype (application/octet-stream when it is not a "
                    "plain type), ETag is `\"<sha256>\"`, and it is always an attachment (`filename` of a document, "
                    "else the id and an extension; `filename*` when not ASCII), with `X-Content-Type-Options: "
                    "nosniff`. A contact's media is downloaded after `message.received`: until `media.stored` it is "
                    "409 `media_not_ready` (with Retry-After); 410 `media_failed` after `media.failed` (its `reason`), "
                    "410 `media_pruned` once the media retention deleted it; 404 `media_not_found` for an id without "
                    "media. " + DEFAULT_NOTE),
}
