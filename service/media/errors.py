"""The media intake's API errors: each carries its status and code, rendered as ``{"error": {"code", "message"}}``.

A fetch is the caller's URL: its failures and its timeout are the caller's to fix, so they are 4xx (422), not a
502/504 that would read as the gateway's own fault. Messages never repeat the URL, an address or the bytes.
"""

from __future__ import annotations

from service.errors import ApiError, BadRequest


class MediaTooLarge(ApiError):
    status = 413
    code = "media_too_large"


class InvalidMedia(BadRequest):
    """The bytes could not be read: broken base64, a truncated multipart body."""

    code = "invalid_media"


class MediaTypeMismatch(BadRequest):
    """The declared mimetype is not what the bytes are."""

    code = "media_type_mismatch"


class MediaTypeNotAllowed(BadRequest):
    """The bytes are a type WhatsApp does not take for this kind (a PDF as an image), or a voice note is not
    OGG/Opus."""

    code = "media_type_not_allowed"


class MediaUrlRefused(BadRequest):
    """The URL (or a redirect) is not http(s), or its host is an address the gateway may not fetch from."""

    code = "media_url_refused"


class MediaFetchFailed(ApiError):
    """The URL answered with an error status, too many redirects, or the connection failed."""

    status = 422
    code = "media_fetch_failed"


class MediaFetchTimeout(ApiError):
    """The download did not finish within WA_MEDIA_FETCH_TIMEOUT."""

    status = 422
    code = "media_fetch_timeout"
