"""POST /send with media (issue 24), in-process against the stand-in worker: each kind by base64, URL and
multipart reaches the worker as ``media`` named by the sha256 of bytes that are on disk before the answer;
an Idempotency-Key retry of a URL send is answered without fetching again; every refusal keeps nothing (no row,
no file) and comes before a URL is fetched."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from service.http.appkeys import ACCOUNTS, DATABASE
from service.media.store import FileStore
from service.store import outbox
from tests.helpers import media_samples as samples
from tests.helpers.fake_worker import AUTH, P1, error_of, until

SAMPLES = {"image": (samples.png, "image/png"), "video": (samples.mp4, "video/mp4"),
           "audio": (samples.opus, "audio/ogg"), "document": (samples.pdf, "application/pdf"),
           "sticker": (samples.webp, "image/webp")}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def media_files(client) -> list[Path]:
    """Every blob in the media directory (temp files left by a refusal would be under tmp/ and count too)."""
    return sorted(p for p in client.media_dir.rglob("*") if p.is_file())


@pytest.fixture
async def media_api(api, tmp_path, aiohttp_server):
    """The app with a media URL host on loopback (allowed by WA_MEDIA_FETCH_ALLOW_PRIVATE) counting its hits."""
    hits: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        hits.append(request.path)
        kind = request.match_info["kind"]
        data, mimetype = SAMPLES[kind]
        return web.Response(body=data(), content_type=mimetype,
                            headers={"Content-Disposition": f'attachment; filename="{kind}.bin"'})

    upstream = web.Application()
    upstream.router.add_get("/files/{kind}", serve)
    server = await aiohttp_server(upstream)

    async def build(**env):
        client = await api(WA_MEDIA_FETCH_ALLOW_PRIVATE="127.0.0.1", **env)
        client.media_dir = tmp_path / "data" / "media"
        client.hits = hits
        client.url = lambda kind: str(server.make_url(f"/files/{kind}"))
        return client
    return build


def rows(client) -> list[dict]:
    return client.app[DATABASE].call(outbox.list_messages, "default", limit=100)


@pytest.mark.parametrize("kind", list(SAMPLES))
@pytest.mark.parametrize("how", ["base64", "url", "multipart"])
async def test_each_kind_by_each_source_reaches_the_worker_by_its_sha256(media_api, kind, how):
    client = await media_api()
    data, mimetype = SAMPLES[kind][0](), SAMPLES[kind][1]
    extra = {"ptt": True} if kind == "audio" else {"caption": "look"} if kind in ("image", "video", "document") else {}
    if how == "multipart":
        form = aiohttp.FormData()
        form.add_field("phone_number", P1)
        form.add_field("kind", kind)
        for name, value in extra.items():
            form.add_field(name, str(value).lower() if isinstance(value, bool) else value)
        form.add_field("file", data, filename=f"{kind}.bin", content_type=mimetype)
        res = await client.post("/send", data=form, headers=AUTH)
    else:
        source = {"base64": base64.b64encode(data).decode()} if how == "base64" else {"url": client.url(kind)}
        if kind == "document":
            source["filename"] = "report.pdf"
        res = await client.post("/send", json={"phone_number": P1, kind: source, **extra}, headers=AUTH)
    body = await res.json()
    assert res.status == 200 and body["status"] == "sent" and body["type"] == kind, body
    sent = client.worker.sends[-1]
    assert sent["phone_number"] == P1 and "text" not in sent
    media = sent["media"]
    assert media["kind"] == kind and media["sha256"] == sha(data)
    assert FileStore(client.media_dir).path(sha(data)).read_bytes() == data  # on disk under its sha256
    assert media.get("ptt") is (True if kind == "audio" else None)
    assert media.get("caption") == extra.get("caption")
    if kind == "document":
        assert media["filename"] == ("report.pdf" if how != "multipart" else "document.bin")
    got = await (await client.get(f"/messages/{body['id']}", headers=AUTH)).json()
    assert got["type"] == kind and "message" not in got
    assert got["media"] | {"url": None} == {
        "id": body["id"], "kind": kind, "mimetype": media["mimetype"], "size": len(data), "sha256": sha(data),
        "filename": got["media"]["filename"], "caption": extra.get("caption"), "ptt": kind == "audio",
        "state": "stored", "url": None}
    assert got["media"]["url"] == f"/media/{body['id']}"
    assert client.hits == ([f"/files/{kind}"] if how == "url" else [])


async def test_a_retry_with_its_key_is_answered_without_fetching_or_sending_again(media_api):
    client = await media_api()
    headers = {**AUTH, "Idempotency-Key": "photo-1"}
    request = {"phone_number": P1, "image": {"url": client.url("image")}, "caption": "hi"}
    first = await client.post("/send", json=request, headers=headers)
    again = await client.post("/send", json=request, headers=headers)
    assert first.status == again.status == 200
    assert (await first.json())["id"] == (await again.json())["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.hits == ["/files/image"] and len(client.worker.sends) == 1
    await error_of(await client.post("/send", json={**request, "caption": "other"}, headers=headers),
                   409, "idempotency_key_reused")
    data = base64.b64encode(samples.png()).decode()
    by_bytes = {"phone_number": P1, "image": {"base64": data}}
    key = {**AUTH, "Idempotency-Key": "photo-2"}
    assert (await (await client.post("/send", json=by_bytes, headers=key)).json())["id"] == \
        (await (await client.post("/send", json=by_bytes, headers=key)).json())["id"]
    other = {"phone_number": P1, "image": {"base64": base64.b64encode(samples.png(3, 3)).decode()}}
    await error_of(await client.post("/send", json=other, headers=key), 409, "idempotency_key_reused")
    assert len(client.worker.sends) == 2


REFUSED = [
    ({"image": {"base64": "AAAA", "url": "http://x/"}}, 400, "invalid_media"),
    ({"image": {}}, 400, "invalid_media"),
    ({"image": {"base64": "not base64!"}}, 400, "invalid_media"),
    ({"image": {"base64": base64.b64encode(samples.pdf()).decode()}}, 400, "media_type_not_allowed"),
    ({"image": {"base64": base64.b64encode(samples.png()).decode(), "mimetype": "image/jpeg"}}, 400,
     "media_type_mismatch"),
    ({"audio": {"base64": base64.b64encode(samples.ogg_vorbis()).decode()}, "ptt": True}, 400,
     "media_type_not_allowed"),
    ({"audio": {"base64": base64.b64encode(samples.opus()).decode()}, "caption": "no"}, 400, "invalid_caption"),
    ({"image": {"base64": base64.b64encode(samples.png()).decode()}, "ptt": True}, 400, "invalid_request"),
    ({"image": {"base64": base64.b64encode(samples.png()).decode()}, "message": "and text"}, 400, "invalid_message"),
    ({"image": {"base64": base64.b64encode(samples.png()).decode(), "size": 1}}, 400, "unknown_field"),
    ({"image": {"url": "http://169.254.169.254/latest/meta-data"}}, 400, "media_url_refused"),
    ({"image": {"url": "http://10.1.2.3/x.png"}}, 400, "media_url_refused"),
    ({"sticker": {"base64": base64.b64encode(samples.webp() + b"\0" * 2000).decode()}}, 413, "media_too_large"),
]


@pytest.mark.parametrize(("fields", "status", "code"), REFUSED)
async def test_bad_media_is_a_4xx_that_keeps_nothing(media_api, fields, status, code):
    client = await media_api(WA_MEDIA_MAX_STICKER_BYTES="1024")
    await error_of(await client.post("/send", json={"phone_number": P1, **fields}, headers=AUTH), status, code)
    assert media_files(client) == [] and rows(client) == [] and client.worker.sends == []


@pytest.mark.parametrize(("fields", "code"), [
    ({"phone_number": "12", "kind": "image"}, "invalid_phone_number"),
    ({"phone_number": P1, "kind": "image", "colour": "red"}, "unknown_field"),
    ({"phone_number": P1, "kind": "audio", "caption": "no"}, "invalid_caption"),
    ({"phone_number": P1, "kind": "image", "ptt": "true"}, "invalid_request"),
    ({"phone_number": P1, "kind": "audio", "ptt": "true"}, "invalid_request"),  # after the file: not checked as one
    ({"phone_number": P1, "kind": "gif"}, "invalid_request"),
])
async def test_a_bad_form_keeps_nothing_even_when_its_fields_come_after_the_file(media_api, fields, code):
    client = await media_api()
    form = aiohttp.FormData()
    form.add_field("kind", fields.pop("kind"))
    form.add_field("file", samples.png() if "audio" not in str(fields) else samples.opus(), filename="a.bin")
    for name, value in fields.items():  # after the file: checked once the form is read, before it is committed
        form.add_field(name, value)
    await error_of(await client.post("/send", data=form, headers=AUTH), 400, code)
    assert media_files(client) == [] and rows(client) == []


async def test_a_refused_account_is_409_before_any_fetch_and_a_large_json_body_is_413(media_api):
    client = await media_api(WA_SEND_MAX_BODY_BYTES="4096")
    client.worker.state = "logged_out"
    await until(lambda: client.app[ACCOUNTS].get("default").link.state == "logged_out")
    await error_of(await client.post("/send", json={"phone_number": P1, "image": {"url": client.url("image")}},
                                     headers=AUTH), 409, "not_linked")
    assert client.hits == [] and media_files(client) == []
    client.worker.state = "connected"
    big = {"phone_number": P1, "document": {"base64": base64.b64encode(b"%PDF-1.4\n" + b"x" * 8000).decode()}}
    await error_of(await client.post("/send", json=big, headers=AUTH), 413, "payload_too_large")
    assert media_files(client) == [] and rows(client) == []
    text = await client.post("/send", json={"phone_number": P1, "message": "x" * 5000}, headers=AUTH)
    assert text.status == 413  # the limit is /send's, for text too


async def test_the_accounts_media_quota_refuses_a_send_that_would_pass_it(media_api):
    client = await media_api(WA_MEDIA_QUOTA_BYTES="2000")
    small = {"phone_number": P1, "image": {"base64": base64.b64encode(samples.png()).decode()}}
    assert (await client.post("/send", json=small, headers=AUTH)).status == 200
    assert (await client.post("/send", json=small, headers=AUTH)).status == 200  # held already: costs nothing more
    big = {"phone_number": P1, "document": {"base64": base64.b64encode(samples.pdf() + b"%" * 2000).decode()}}
    key = {**AUTH, "Idempotency-Key": "big-1"}
    await error_of(await client.post("/send", json=big, headers=key), 413, "media_quota_exceeded")
    assert len(rows(client)) == 2 and len(client.worker.sends) == 2
