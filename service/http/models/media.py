"""The media of a contact's message, as ``GET /messages/{id}`` and the ``message.received`` / ``media.*`` events
show it (service/store/inbound_media.py ``public``). The bytes themselves are ``GET /media/{id}``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class InboundMediaOut(BaseModel):
    """A contact's media: announced with ``message.received`` (state ``downloading``), then ``media.stored`` (its
    bytes at ``url``) or ``media.failed`` (``error`` says why)."""

    id: str  # the message id
    kind: Literal["image", "video", "audio", "document", "sticker"]
    mimetype: str | None  # as the sender declared it
    size: int | None  # bytes: announced, then the stored file's
    sha256: str | None  # hex of the file: announced by the sender, checked on download
    filename: str | None  # a document's name, as the sender wrote it (never trust it as a path)
    caption: str | None
    ptt: bool  # a voice note
    seconds: int | None  # audio and video
    width: int | None
    height: int | None
    state: Literal["downloading", "stored", "failed"]
    # Where the bytes are served: /media/{id} for the default account, /accounts/{name}/media/{id} otherwise.
    url: str
    # Why it failed: media_gone, media_corrupt, sha256_mismatch, media_too_large, media_expired, invalid_media,
    # invalid_descriptor, too_many_attempts, or the last download error's code; null otherwise.
    error: str | None
