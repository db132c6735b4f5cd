"""The media of a /send request into the store, from base64, a URL or a multipart body: a ``StoredMedia``.

Every source streams into a ``BlobWriter`` (never the whole media in memory but for the base64 text, which the
JSON body already holds), limited by the kind's limit as it comes (413, nothing kept); the first bytes are
sniffed before the blob is committed (400 when the type is wrong: nothing kept); the commit fsyncs. So when
an intake returns, the bytes are durable under their sha256, and when it raises, nothing of them is on disk.

Multipart: the text fields are returned as they are (the view validates ``phone_number``, ``caption``); ``kind``
(and ``ptt``, if any) must come before the ``file`` part (its limit and checks depend on them), the ``file``
part's filename and Content-Type are its ``filename`` and declared ``mimetype``. A body that ends before its
closing boundary is 400 ``invalid_media``.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

import aiohttp

from service.address_policy import AddressPolicy, Lookup, system_lookup
from service.errors import BadRequest
from service.media import sniff
from service.media.config import MediaSettings
from service.media.errors import InvalidMedia, MediaTooLarge
from service.media.fetch import Fetcher
from service.media.kinds import Kind, is_kind
from service.media.store import BlobWriter, MediaStore

B64_CHUNK = 64 * 1024  # base64 characters decoded at a time (a multiple of 4)
FIELDS_MAX = 128 * 1024  # bytes of all the text fields of a multipart form together
_B64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """What the caller says about the media: its kind, and optionally its mimetype, file name, voice note."""

    kind: Kind
    mimetype: str | None = None
    filename: str | None = None
    ptt: bool = False


@dataclass(frozen=True, slots=True)
class StoredMedia:
    sha256: str
    size: int
    mimetype: str  # from the bytes (a voice note's: audio/ogg; codecs=opus)
    kind: Kind
    filename: str | None
    path: Path
    ptt: bool = False


def clean_filename(name: str | None) -> str | None:
    """A file name safe to pass on: its last path segment, no control characters, at most 200 characters."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:200] or None


class Intake:
    def __init__(self, store: MediaStore, settings: MediaSettings, lookup: Lookup = system_lookup):
        self.store = store
        self.settings = settings
        policy = AddressPolicy(allow=settings.allow_private, lookup=lookup)
        self.fetcher = Fetcher(policy, timeout=settings.fetch_timeout, max_redirects=settings.max_redirects)

    async def _finish(self, writer: BlobWriter, spec: MediaSpec, filename: str | None) -> StoredMedia:
        mimetype = sniff.check(writer.head, spec.kind, spec.mimetype, ptt=spec.ptt)  # raises: the exit aborts
        blob = await writer.commit()
        return StoredMedia(blob.sha256, blob.size, mimetype, spec.kind, clean_filename(spec.filename or filename),
                           blob.path, spec.ptt)

    async def from_base64(self, data: str, spec: MediaSpec) -> StoredMedia:
        """Strict base64 (RFC 4648 standard alphabet, padded, no whitespace); broken: 400 ``invalid_media``. A
        ``data:<type>;base64,`` prefix (what a browser's FileReader makes) is taken off, its type declared."""
        raw, spec = _data_url(data.encode("ascii", "replace"), spec)
        limit = self.settings.limit(spec.kind)
        if len(raw) % 4 or not _B64.fullmatch(raw):
            raise InvalidMedia("the media is not valid base64")
        if len(raw) // 4 * 3 - raw[-2:].count(b"=") > limit:  # known before anything is written
            raise MediaTooLarge(f"the media is larger than its limit of {limit} bytes")
        async with self.store.writer(limit) as writer:
            for start in range(0, len(raw), B64_CHUNK):
                try:
                    writer.write(base64.b64decode(raw[start:start + B64_CHUNK], validate=True))
                except binascii.Error:
                    raise InvalidMedia("the media is not valid base64") from None
            return await self._finish(writer, spec, None)

    async def from_url(self, url: str, spec: MediaSpec) -> StoredMedia:
        limit = self.settings.limit(spec.kind)
        async with self.store.writer(limit) as writer:
            name = await self.fetcher.fetch(url, writer, limit)
            return await self._finish(writer, spec, unquote(name) if name else None)

    async def from_multipart(self, reader: aiohttp.MultipartReader, check: Callable[[dict[str, str], MediaSpec], None]
                             | None = None) -> tuple[dict[str, str], StoredMedia]:
        """The form's text fields, and its ``file`` part stored: committed only once the whole form has been
        read up to its closing boundary (a form broken after its file keeps nothing) and ``check`` (the
        caller's rules for the fields, raising its 4xx) took the fields."""
        fields: dict[str, str] = {}
        file: tuple[BlobWriter, MediaSpec] | None = None
        try:
            while (part := await reader.next()) is not None:
                if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                    raise InvalidMedia("every part of the form must be a named field")
                if part.name != "file":
                    fields[part.name] = await _text(part, FIELDS_MAX - sum(len(v) for v in fields.values()))
                    continue
                if file is not None:
                    raise InvalidMedia("the form has more than one file part")
                spec = _file_spec(fields, part)
                file = (self.store.writer(self.settings.limit(spec.kind)), spec)
                async for chunk in _part_chunks(part):
                    file[0].write(chunk)
            if file is None:
                raise InvalidMedia("the form has no file part")
            if check is not None:
                check(fields, file[1])
            return fields, await self._finish(file[0], file[1], None)
        except (ValueError, AssertionError, aiohttp.ClientPayloadError):
            raise InvalidMedia("the multipart body is malformed or truncated") from None
        finally:
            if file is not None:
                file[0].abort()  # a no-op once committed


def _data_url(raw: bytes, spec: MediaSpec) -> tuple[bytes, MediaSpec]:
    """The base64 of a ``data:`` URL, and the spec with its type declared (unless the caller declared one)."""
    if raw[:5].lower() != b"data:":
        return raw, spec
    header, comma, rest = raw.partition(b",")
    if not comma or not header.lower().endswith(b";base64"):
        raise InvalidMedia("a data: URL must be base64: data:<type>;base64,<data>")
    declared = header[5:-7].decode("ascii").strip()
    return rest, spec if spec.mimetype or not declared else replace(spec, mimetype=declared)


def _file_spec(fields: dict[str, str], part: aiohttp.BodyPartReader) -> MediaSpec:
    kind = fields.get("kind", "")
    if not is_kind(kind):
        raise BadRequest("the form needs a kind field (image, video, audio, document or sticker) before its file",
                         code="invalid_request")
    ptt = fields.get("ptt", "").strip().lower()
    if ptt not in TRUE | _FALSE:
        raise BadRequest("ptt must be true or false", code="invalid_request")
    declared = part.headers.get(aiohttp.hdrs.CONTENT_TYPE)
    return MediaSpec(kind=kind, mimetype=None if declared in (None, "application/octet-stream") else declared,
                     filename=part.filename, ptt=ptt in TRUE)


async def _part_chunks(part: aiohttp.BodyPartReader) -> AsyncIterator[bytes]:
    """Until the part's closing boundary: a body that ends before it makes aiohttp raise ValueError (an empty
    read alone is no end: a truncated body returns its last bytes, then nothing)."""
    while not part.at_eof():
        if chunk := await part.read_chunk(64 * 1024):
            yield chunk


async def _text(part: aiohttp.BodyPartReader, room: int) -> str:
    data = b""
    async for chunk in _part_chunks(part):
        data += chunk
        if len(data) > room:
            raise BadRequest(f"the form's text fields are longer than {FIELDS_MAX} bytes", code="invalid_request")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("a form field is not UTF-8", code="invalid_request") from None
