"""Media uploaded as multipart/form-data (service/media/intake.py ``from_multipart``), through a real aiohttp
server: the file part is streamed into the store in chunks, checked like any media, and a body that ends early
(truncated, or the client gone) is 400 ``invalid_media`` with nothing left on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from service.errors import ApiError, error_response
from service.media.config import MediaSettings
from service.media.intake import Intake
from service.media.store import FileStore, FileWriter
from tests.helpers import media_samples as samples

BOUNDARY = "gatewayboundary"


def on_disk(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
async def upload(aiohttp_client, tmp_path):
    """POST /upload: the form's fields and stored file, or the error; ``seen`` collects what each request ended
    with (also when the client is gone and no answer can reach it)."""
    config = MediaSettings(directory=tmp_path / "media", limits={"image": 3 * 1024 * 1024, "audio": 10_000})
    intake = Intake(FileStore(config.directory), config)
    seen: list[object] = []

    async def handler(request: web.Request) -> web.Response:
        try:
            fields, stored = await intake.from_multipart(await request.multipart())
        except ApiError as exc:
            seen.append(exc.code)
            return error_response(exc.status, exc.code, exc.message)
        except BaseException as exc:  # the client gone: cancelled, or a reset
            seen.append(type(exc).__name__)
            raise
        seen.append(stored)
        return web.json_response({"fields": fields, "sha256": stored.sha256, "mimetype": stored.mimetype,
                                  "filename": stored.filename, "size": stored.size, "kind": stored.kind})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/upload", handler)
    client = await aiohttp_client(app)
    client.seen = seen
    client.media = config.directory
    return client


def form(*parts: tuple[str, bytes, str | None, str | None], close: bool = True) -> bytes:
    """A multipart body by hand: (name, value, filename, content type) per part."""
    body = b""
    for name, value, filename, content_type in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += (f"Content-Type: {content_type}\r\n" if content_type else "").encode() + b"\r\n" + value + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def test_a_form_with_its_file_is_stored_streamed_in_chunks(upload, monkeypatch):
    chunks: list[int] = []
    write = FileWriter.write
    monkeypatch.setattr(FileWriter, "write", lambda self, chunk: (chunks.append(len(chunk)), write(self, chunk))[1])
    image = samples.png() + b"\x00" * (2 * 1024 * 1024)  # bytes after IEND: still a PNG to the sniffing
    data = aiohttp.FormData()
    data.add_field("phone_number", "+14155550123")
    data.add_field("kind", "image")
    data.add_field("file", image, filename="cat.png", content_type="image/png")
    data.add_field("caption", "a cat")
    response = await upload.post("/upload", data=data)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["fields"] == {"phone_number": "+14155550123", "kind": "image", "caption": "a cat"}
    assert (body["mimetype"], body["filename"], body["size"], body["kind"]) == (
        "image/png", "cat.png", len(image), "image")
    assert len(chunks) > 16 and max(chunks) <= 64 * 1024  # never the whole file at once
    assert [p.name for p in on_disk(upload.media)] == [body["sha256"][2:]]


async def test_a_voice_note_by_form(upload):
    body = form(("kind", b"audio", None, None), ("ptt", b"true", None, None),
                ("file", samples.opus(), "note.ogg", "audio/ogg; codecs=opus"))
    response = await upload.post("/upload", data=body, headers=HEADERS)
    assert response.status == 200, await response.text()
    assert (await response.json())["mimetype"] == "audio/ogg; codecs=opus"


@pytest.mark.parametrize("cut", [10, 200, -40, -3])
async def test_a_truncated_body_is_400_invalid_media_and_leaves_nothing(upload, cut):
    whole = form(("kind", b"image", None, None), ("file", samples.png() + b"\x00" * 300, "a.png", "image/png"))
    response = await upload.post("/upload", data=whole[:cut], headers=HEADERS)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_media"
    assert on_disk(upload.media) == []


async def test_a_client_gone_mid_file_leaves_nothing(upload):
    head = form(("kind", b"image", None, None), ("file", samples.png() + b"\x00" * 100_000, "a.png", "image/png"))
    reader, writer = await asyncio.open_connection(upload.server.host, upload.server.port)
    writer.write(f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: {HEADERS['Content-Type']}\r\n"
                 f"Content-Length: {len(head)}\r\n\r\n".encode() + head[:60_000])
    await writer.drain()
    writer.close()
    for _ in range(100):
        if upload.seen:
            break
        await asyncio.sleep(0.05)
    # Cancelled with the connection (aiohttp's handler cancellation), or the body's end seen as a truncation
    assert upload.seen in (["CancelledError"], ["invalid_media"])
    assert on_disk(upload.media) == []


@pytest.mark.parametrize(("parts", "status", "code"), [
    ((("kind", b"image", None, None), ("file", samples.pdf(), "a.png", "image/png")), 400, "media_type_mismatch"),
    ((("kind", b"image", None, None), ("file", samples.pdf(), "a.pdf", None)), 400, "media_type_not_allowed"),
    ((("kind", b"audio", None, None), ("ptt", b"yes", None, None), ("file", samples.mp4(), "a.m4a", None)),
     400, "media_type_not_allowed"),
    ((("kind", b"audio", None, None), ("file", samples.opus() * 20, "big.opus", None)), 413, "media_too_large"),
    ((("file", samples.png(), "a.png", "image/png"), ("kind", b"image", None, None)), 400, "invalid_request"),
    ((("kind", b"picture", None, None), ("file", samples.png(), "a.png", None)), 400, "invalid_request"),
    ((("kind", b"audio", None, None), ("ptt", b"maybe", None, None), ("file", samples.opus(), None, None)),
     400, "invalid_request"),
    ((("kind", b"image", None, None),), 400, "invalid_media"),
    ((("kind", b"image", None, None), *[(f"f{i}", b"x" * 20_000, None, None) for i in range(7)],
      ("file", samples.png(), "a.png", None)), 400, "invalid_request"),  # text fields over 128 KiB together
    ((("kind", b"image", None, None), ("file", samples.png(), "a.png", None), ("file", samples.png(), "b.png", None)),
     400, "invalid_media"),
])
async def test_a_bad_form_is_refused_and_leaves_nothing(upload, parts, status, code):
    response = await upload.post("/upload", data=form(*parts), headers=HEADERS)
    assert response.status == status, await response.text()
    assert (await response.json())["error"]["code"] == code
    assert on_disk(upload.media) == []
