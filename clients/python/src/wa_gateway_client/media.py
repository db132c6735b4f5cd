"""Media (issue 24): send an image, video, audio, voice note, document or sticker, and download a message's
media, from any account. Mixed into :class:`AsyncAccount` (and so into the blocking ``Account`` too).

    await wa.send_media("+14155550123", "image", path="cat.jpg", caption="Our cat")
    await wa.send_media("+14155550123", "document", url="https://example.com/report.pdf")
    saved = await wa.download_media(message.id, "downloads/")       # a directory: the file's own name in it
    async for chunk in wa.iter_media(message.id): ...               # or the bytes as they come

Why it is shaped like this:
- A path or bytes go as ``multipart/form-data`` with the file last, streamed from the file by aiohttp (never
  read whole into memory), so the gateway stores them as they come; a URL goes as JSON and the gateway fetches
  it. The mimetype is left to the gateway unless given: it checks the bytes anyway, and a guess from the file
  name would turn a misnamed file into a refusal.
- One Idempotency-Key per call, as for text: a retried upload (429/503, a dropped connection) is the same
  message, never a second one; the file is read again from its start for each attempt.
- A download that drops mid-way resumes where it stopped (``Range`` with ``If-Range`` on the sha256 ETag),
  and the bytes are checked against that sha256 at the end: a file on disk is either whole and verified, or
  absent (written beside its target and renamed).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import mimetypes
import os
import re
import tempfile
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

import aiohttp

from . import errors
from .conversation import post_message
from .models import Message
from .retry import retry_after_seconds

if TYPE_CHECKING:
    from .client import AsyncClient

KINDS = ("image", "video", "audio", "document", "sticker")
CHUNK = 64 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class Download:
    """A downloaded media file: where it is, its size, sha256 (checked), mimetype and file name (if any)."""

    path: Path
    size: int
    sha256: str
    mimetype: str | None
    filename: str | None


@dataclass
class _Progress:
    """What a download has received so far, so that a retry resumes after it."""

    received: int = 0
    etag: str | None = None
    mimetype: str | None = None
    filename: str | None = None
    total: int | None = None


class MediaMethods:
    """Media of one account; needs the account's ``_client`` and ``_p`` (the path prefix)."""

    _client: AsyncClient

    def _p(self, path: str) -> str:
        raise NotImplementedError

    async def send_media(self, phone_number: str, kind: str, *, path: str | os.PathLike[str] | None = None,
                         data: bytes | bytearray | memoryview | None = None, url: str | None = None,
                         caption: str | None = None, ptt: bool | None = None, filename: str | None = None,
                         mimetype: str | None = None, reply_to: str | None = None,
                         idempotency_key: str | None = None, wait: float | None = None) -> Message:
        """Send media of ``kind`` (image, video, audio, document, sticker) from exactly one of a file ``path``,
        ``data`` (bytes) or a ``url`` the gateway fetches. ``ptt=True`` makes audio a voice note (OGG/Opus);
        ``filename`` names a document (default: the path's name); ``caption`` is not for audio or stickers;
        ``reply_to`` quotes a message of that chat. Answers and waits as :meth:`send` does."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if sum(x is not None for x in (path, data, url)) != 1:
            raise ValueError("give exactly one of path=, data= or url=")
        send = functools.partial(post_message, self._client, self._p("/send"), upload=True,
                                 idempotency_key=idempotency_key or uuid.uuid4().hex, wait=wait)
        if url is not None:
            media = {k: v for k, v in (("url", url), ("mimetype", mimetype), ("filename", filename)) if v is not None}
            body = {"phone_number": phone_number, kind: media, **{k: v for k, v in (
                ("caption", caption), ("ptt", ptt), ("reply_to", reply_to)) if v is not None}}
            return await send(json=body)
        fields = {"phone_number": phone_number, "kind": kind, "caption": caption, "reply_to": reply_to,
                  "ptt": None if ptt is None else ("true" if ptt else "false")}
        source: bytes | Path = bytes(data) if data is not None else Path(path)  # type: ignore[arg-type]
        if isinstance(source, Path):
            filename = filename or source.name
            await asyncio.to_thread(source.stat)  # a missing file raises here, before any request
        opened: list[IO[bytes]] = []
        try:
            return await send(data=_form(fields, source, filename, mimetype, opened))
        finally:
            for file in opened:  # aiohttp closes what it sent; not a file of an attempt that failed before
                file.close()

    def _media_path(self, message_id: str) -> str:
        """The gateway path of a message's media (``/media/{id}``, per account ``/accounts/{name}/media/{id}``)."""
        return self._p(f"/media/{quote(message_id, safe='')}")

    async def iter_media(self, message_id: str, *, wait: float = 0,
                         chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """The bytes of a message's media as they come (checked against their sha256 at the end:
        :class:`errors.MediaCorrupt` otherwise). ``wait``: seconds to wait while the gateway is still
        downloading an inbound file (:class:`errors.MediaNotReady` after that)."""
        progress = _Progress()
        async for chunk in self._chunks(message_id, progress, wait, chunk_size):
            yield chunk

    async def download_media(self, message_id: str, path: str | os.PathLike[str] | None = None, *,
                             wait: float = 0) -> Download:
        """Save a message's media to ``path``: a file (replaced), or a directory (None: the current one) where
        it is named after the file's own name (else the message id and the type's extension), never
        replacing a file there. Written beside it and renamed once whole and checked, so the target never
        holds a partial file."""
        progress = _Progress()
        target = Path(path) if path is not None else Path.cwd()
        if str(path).endswith(("/", os.sep)) and not target.is_dir():
            raise FileNotFoundError(2, "No such directory", str(path))
        async with aclosing(self._chunks(message_id, progress, wait, CHUNK)) as chunks:
            first = await anext(chunks, b"")  # the answer's headers name the file
            if target.is_dir():  # a name of the sender's choosing: never one that replaces a file
                target = unused(target / suggested_name(message_id, progress.filename, progress.mimetype))
            fd, temp = tempfile.mkstemp(prefix=".wa-media-", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    await asyncio.to_thread(out.write, first)
                    async for chunk in chunks:
                        await asyncio.to_thread(out.write, chunk)
                os.replace(temp, target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        return Download(target, progress.received, progress.etag or "", progress.mimetype, progress.filename)

    async def _chunks(self, message_id: str, progress: _Progress, wait: float,
                      chunk_size: int) -> AsyncGenerator[bytes, None]:
        """The media's bytes, resuming after a dropped connection; checked against the ETag's sha256."""
        client = self._client
        path = self._media_path(message_id)
        digest = hashlib.sha256()
        deadline = asyncio.get_running_loop().time() + wait
        attempt = 0
        while True:
            try:
                async with client._http().get(client.url + path, headers=_range_headers(client, progress),
                                               timeout=_stream_timeout(client.timeout)) as resp:
                    if resp.status >= 400:
                        raise errors.from_response(resp.status, errors.json_or_none(await resp.read()),
                                                   retry_after_seconds(resp.headers.get("Retry-After")))
                    skip = _start(resp, progress)
                    async for chunk in resp.content.iter_chunked(chunk_size):
                        if skip:  # a 200 to a resumed request: drop what we already have
                            chunk, skip = chunk[skip:], max(0, skip - len(chunk))
                            if not chunk:
                                continue
                        digest.update(chunk)
                        progress.received += len(chunk)
                        attempt = 0
                        yield chunk
                    if progress.total is not None and progress.received < progress.total:
                        raise aiohttp.ClientPayloadError("the answer ended early")
                    break
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error: errors.GatewayError = errors.GatewayUnreachable(f"GET {path}: {type(exc).__name__}: {exc}")
            except errors.GatewayError as exc:
                error = exc
            attempt += 1
            delay = client.retry.delay(min(attempt - 1, 5), error.retry_after)
            if isinstance(error, errors.MediaNotReady) and asyncio.get_running_loop().time() + delay < deadline:
                attempt = 0
            elif attempt >= client.retry.attempts or not _retryable(error):
                raise error
            await asyncio.sleep(delay)
        if progress.etag and digest.hexdigest() != progress.etag:
            raise errors.MediaCorrupt(f"the bytes of {message_id}'s media do not match their sha256",
                                      status=0, details={"expected": progress.etag, "got": digest.hexdigest()})


def _form(fields: dict[str, str | None], content: bytes | Path, filename: str | None, mimetype: str | None,
          opened: list[IO[bytes]]) -> Callable[[], aiohttp.FormData]:
    """A fresh form per attempt (aiohttp spends a form, and closes its file, once sent), the file last (the
    gateway needs ``kind`` before it) and read from its start in chunks. Field values unquoted: the gateway
    reads a UTF-8 file name as is."""
    name = filename.replace("\r", " ").replace("\n", " ") if filename else None

    def make() -> aiohttp.FormData:
        form = aiohttp.FormData(quote_fields=False)
        for field, value in fields.items():
            if value is not None:
                form.add_field(field, value)
        file: IO[bytes] = io.BytesIO(content) if isinstance(content, bytes) else content.open("rb")
        opened.append(file)
        form.add_field("file", file, filename=name, content_type=mimetype or "application/octet-stream")
        return form
    return make


def _range_headers(client: AsyncClient, progress: _Progress) -> dict[str, str]:
    headers = dict(client._headers)
    if progress.received and progress.etag:
        headers["Range"] = f"bytes={progress.received}-"
        headers["If-Range"] = f'"{progress.etag}"'
    return headers


def _stream_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """No limit on the whole (a large file takes as long as it takes), but on connecting and on each read."""
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)


def _start(resp: aiohttp.ClientResponse, progress: _Progress) -> int:
    """Take in an answer's headers; how many of its first bytes we already have (a 200 to a resumed request)."""
    etag = (resp.headers.get("ETag") or "").strip('"') or None
    if resp.status == 206:
        match = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", ""))
        if match is None or int(match[1]) != progress.received or etag != progress.etag:
            raise errors.UnexpectedResponse("a resumed download answered another range", status=206)
        progress.total = int(match[3])
        return 0
    skip = progress.received
    progress.etag = etag
    progress.mimetype = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
    progress.filename = resp.content_disposition.filename if resp.content_disposition else None
    progress.total = resp.content_length
    return skip


def _retryable(error: errors.GatewayError) -> bool:
    return isinstance(error, errors.GatewayUnreachable) or error.status in (429, 503)


def suggested_name(message_id: str, filename: str | None, mimetype: str | None) -> str:
    """A safe file name: the media's own (its last path segment, no control characters, no leading dot), else
    the message id with the mimetype's extension."""
    if filename:
        name = filename.replace("\\", "/").rsplit("/", 1)[-1]
        name = "".join(c for c in name if c.isprintable()).strip().lstrip(".")
        if name:
            return name[:200]
    extension = mimetypes.guess_extension(mimetype or "") or ""
    return re.sub(r"[^\w.-]", "_", message_id) + extension


def unused(path: Path) -> Path:
    """``path``, or ``name (2).ext``, ``name (3).ext``... when it exists."""
    n = 1
    candidate = path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
    return candidate
