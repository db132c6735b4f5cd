"""The Python client's media (clients/python/.../media.py) against a real aiohttp server that speaks the media
contract: its forms read by the gateway's own multipart intake (service/media/intake.py, as POST /send does),
and GET /media/{id} answered with Range, ETag and If-Range, with faults the whole stack cannot make on demand:
a connection dropped mid-file, a 503 under an upload, bytes that do not match their sha256. The same flows run
against the real sandbox stack in tests/system/test_client_media_stack.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import tracemalloc

import pytest
from aiohttp import web

import wa_gateway_client as wgc
from service.errors import ApiError, error_response
from service.media.config import MediaSettings
from service.media.intake import Intake
from service.media.store import FileStore
from tests.helpers import media_samples as samples
from wa_gateway_client import errors
from wa_gateway_client.media import suggested_name

BLOB = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(BLOB).hexdigest()


class Gateway:
    """What the test server saw and what it does next."""

    def __init__(self) -> None:
        self.sends: list[dict] = []
        self.ranges: list[str | None] = []
        self.fail_next_send = 0
        self.drop_after: int | None = None  # the next GET /media sends this many bytes, then drops
        self.body = BLOB
        self.etag = SHA
        self.not_ready = 0  # answers 409 media_not_ready this many times first


@pytest.fixture
async def gateway(aiohttp_client, tmp_path):
    config = MediaSettings(directory=tmp_path / "media", limits={"image": 3 << 20, "document": 64 << 20})
    intake = Intake(FileStore(config.directory), config)
    state = Gateway()

    async def send(request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        if request.content_type == "multipart/form-data":
            try:
                fields, stored = await intake.from_multipart(await request.multipart())
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.message)
            seen = {"fields": fields, "sha256": stored.sha256, "size": stored.size, "filename": stored.filename,
                    "mimetype": stored.mimetype, "key": key}
        else:
            seen = {"json": await request.json(), "key": key}
        state.sends.append(seen)
        if state.fail_next_send:
            state.fail_next_send -= 1
            return error_response(503, "worker_unavailable", "retry", headers={"Retry-After": "0"})
        return web.json_response({"id": "01MSG", "phone_number": "+15550002222", "status": "queued",
                                  "whatsapp_id": "3EB0", "created_at": "2026-12-07T00:00:00Z", "type": "image",
                                  "media": {"id": "01MSG", "kind": "image", "state": "stored", "sha256": SHA}},
                                 status=202)

    async def media(request: web.Request) -> web.StreamResponse:
        if state.not_ready:
            state.not_ready -= 1
            return error_response(409, "media_not_ready", "still downloading")
        if request.match_info["id"] == "gone":
            return error_response(410, "media_failed", "expired at WhatsApp")
        state.ranges.append(request.headers.get("Range"))
        start, status = 0, 200
        if request.headers.get("Range") and request.headers.get("If-Range") == f'"{state.etag}"':
            start, status = int(request.headers["Range"].removeprefix("bytes=").rstrip("-")), 206
        resp = web.StreamResponse(status=status, headers={
            "ETag": f'"{state.etag}"', "Content-Type": "application/pdf", "Accept-Ranges": "bytes",
            "Content-Disposition": 'attachment; filename="../report 1.pdf"'})
        resp.content_length = len(state.body) - start
        if status == 206:
            resp.headers["Content-Range"] = f"bytes {start}-{len(state.body) - 1}/{len(state.body)}"
        await resp.prepare(request)
        part = state.body[start:]
        if state.drop_after is not None:
            cut, state.drop_after = state.drop_after, None
            await resp.write(part[:cut])
            request.transport.close()  # the connection dropped mid-file
            return resp
        await resp.write(part)
        return resp

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/send", send)
    app.router.add_post("/accounts/{name}/send", send)
    app.router.add_get("/media/{id}", media)
    app.router.add_get("/accounts/{name}/media/{id}", media)
    server = await aiohttp_client(app)
    state.url = str(server.make_url("")).rstrip("/")
    return state


def client(gateway: Gateway) -> wgc.AsyncClient:
    return wgc.AsyncClient(gateway.url, api_key="k", retry=wgc.Retry(attempts=3, base=0.01))


async def test_a_path_is_sent_as_a_form_the_gateway_takes_with_its_name_caption_and_kind(gateway, tmp_path):
    picture = tmp_path / "Été à la plage.png"
    picture.write_bytes(samples.png())
    async with client(gateway) as wa:
        sent = await wa.account("sales").send_media("+15550002222", "image", path=picture, caption="<b>hi</b>")
    assert sent.id == "01MSG" and sent.media and sent.media.kind == "image"
    [seen] = gateway.sends
    assert seen["fields"] == {"phone_number": "+15550002222", "kind": "image", "caption": "<b>hi</b>"}
    assert seen["filename"] == "Été à la plage.png" and seen["mimetype"] == "image/png"  # sniffed, not declared
    assert seen["sha256"] == hashlib.sha256(samples.png()).hexdigest()


async def test_bytes_go_as_a_form_too_and_a_url_as_json(gateway):
    async with client(gateway) as wa:
        await wa.send_media("+15550002222", "audio", data=samples.opus(), ptt=True)
        await wa.send_media("+15550002222", "document", url="https://example.com/a.pdf", filename="a.pdf",
                            caption="the report")
    form, url = gateway.sends
    assert form["fields"]["ptt"] == "true" and form["mimetype"].startswith("audio/ogg")
    assert url["json"] == {"phone_number": "+15550002222", "document": {"url": "https://example.com/a.pdf",
                                                                        "filename": "a.pdf"},
                           "caption": "the report"}
    with pytest.raises(ValueError, match="exactly one"):
        await client(gateway).send_media("+1", "image", data=b"x", url="https://x")
    with pytest.raises(ValueError, match="kind"):
        await client(gateway).send_media("+1", "gif", data=b"x")


async def test_a_media_reply_names_the_quoted_message_in_the_json_and_in_the_form(gateway):
    async with client(gateway) as wa:
        await wa.send_media("+15550002222", "document", url="https://example.com/a.pdf", reply_to="01QUOTED")
        await wa.send_media("+15550002222", "audio", data=samples.opus(), reply_to="01QUOTED")
        await wa.send_media("+15550002222", "audio", data=samples.opus())
    url, form, plain = gateway.sends
    assert url["json"]["reply_to"] == "01QUOTED" and form["fields"]["reply_to"] == "01QUOTED"
    assert "reply_to" not in plain["fields"]  # absent unless given: a gateway without it still takes the form


async def test_a_retried_upload_is_the_same_request_read_again_from_the_start(gateway, tmp_path):
    document = tmp_path / "big.pdf"
    document.write_bytes(samples.pdf() + b"\n%" + b"x" * (3 << 20))
    gateway.fail_next_send = 1
    async with client(gateway) as wa:
        await wa.send_media("+15550002222", "document", path=document)
    first, second = gateway.sends
    assert first["key"] == second["key"] and first["key"]  # one Idempotency-Key for the call
    assert first["sha256"] == second["sha256"] == hashlib.sha256(document.read_bytes()).hexdigest()


async def test_a_file_is_streamed_not_read_whole_into_memory(gateway, tmp_path):
    document = tmp_path / "big.pdf"
    document.write_bytes(samples.pdf() + b"\n%" + b"x" * (24 << 20))
    async with client(gateway) as wa:
        tracemalloc.start()
        try:
            await wa.send_media("+15550002222", "document", path=document)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert gateway.sends[0]["size"] == document.stat().st_size
    # The test server (in this process) reads in 64 KiB chunks too: the whole peak stays far below the file.
    assert peak < 8 << 20, peak


async def test_a_download_resumes_after_a_dropped_connection_and_is_checked(gateway, tmp_path):
    gateway.drop_after = 300_000
    async with client(gateway) as wa:
        (tmp_path / "dl").mkdir()
        saved = await wa.download_media("01MSG", tmp_path / "dl")
    assert saved.path == tmp_path / "dl" / "report 1.pdf"  # its own name, without the path it claimed
    assert saved.path.read_bytes() == BLOB and saved.sha256 == SHA and saved.mimetype == "application/pdf"
    first, resumed = gateway.ranges  # resumed after what had arrived (some of the 300,000 bytes sent)
    assert first is None and 0 < int(resumed.removeprefix("bytes=").rstrip("-")) <= 300_000, resumed
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["report 1.pdf"]  # no temp file left


async def test_the_bytes_stream_and_a_mismatch_with_their_sha256_raises(gateway, tmp_path):
    async with client(gateway) as wa:
        assert b"".join([c async for c in wa.account("sales").iter_media("01MSG")]) == BLOB
        gateway.etag = "0" * 64
        target = tmp_path / "out.pdf"
        with pytest.raises(errors.MediaCorrupt):
            await wa.download_media("01MSG", target)
    assert not target.exists() and [p.name for p in tmp_path.iterdir()] == ["media"]  # nothing half-written


async def test_a_download_waits_while_the_gateway_is_downloading_and_reports_a_failed_one(gateway, tmp_path):
    gateway.not_ready = 3
    async with client(gateway) as wa:
        with pytest.raises(errors.MediaNotReady):
            await wa.download_media("01MSG", tmp_path / "x")
        gateway.not_ready = 3
        assert (await wa.download_media("01MSG", tmp_path / "x", wait=10)).size == len(BLOB)
        with pytest.raises(errors.MediaFailed) as failed:
            await wa.download_media("gone", tmp_path / "y", wait=10)
    assert failed.value.status == 410 and isinstance(failed.value, errors.GoneError)


async def test_the_blocking_client_has_the_media_methods(gateway, tmp_path):
    def blocking() -> None:  # in a thread: the test server runs on this test's loop
        with wgc.Client(gateway.url, api_key="k") as wa:
            assert b"".join(wa.account("sales").iter_media("01MSG")) == BLOB
            assert wa.download_media("01MSG", tmp_path / "a.pdf").size == len(BLOB)
    await asyncio.to_thread(blocking)


def test_a_suggested_name_is_a_plain_file_name():
    assert suggested_name("01M", "../../etc/passwd", None) == "passwd"
    assert suggested_name("01M", "..\\..\\.bashrc", None) == "bashrc"
    assert suggested_name("01M", "a\x00b\nc.pdf", None) == "abc.pdf"
    assert suggested_name("01M/..", None, "image/jpeg") == "01M_...jpg"
    assert suggested_name("01M", "", "application/pdf") == "01M.pdf"


def test_the_media_object_of_a_message_is_typed():
    data = json.loads('{"id": "1", "direction": "in", "whatsapp_id": "W", "kind": "image", "type": "image", '
                      '"media": {"id": "1", "kind": "image", "size": 3, "state": "downloading", "new": 1}}')
    message = wgc.models.InboundMessage.model_validate(data)
    assert message.media and message.media.state == "downloading" and message.media.size == 3
    event = wgc.models.Event.model_validate({"id": "e", "type": "media.stored", "data": data})
    assert event.media and event.media.kind == "image" and event.message is None
