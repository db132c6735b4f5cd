"""The media intake from a URL (issue 24's hostile inputs): a real local HTTP server serves, redirects, stalls
and streams forever. The server is on loopback, so a successful fetch needs the allowlist
(WA_MEDIA_FETCH_ALLOW_PRIVATE), and without it every fetch of it must be refused before a request is sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web

from service.address_policy import system_lookup
from service.errors import ApiError
from service.media.config import MediaSettings
from service.media.intake import Intake, MediaSpec
from service.media.store import FileStore
from tests.helpers import media_samples as samples


def on_disk(root: Path) -> list[Path]:
    """Every file under the media dir, blobs and temp files alike."""
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
async def upstream(aiohttp_server):
    """The caller's media host: ``hits`` lists every path it was asked for."""
    hits: list[str] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        hits.append(request.path)
        name = request.match_info["name"]
        if name == "redirect":
            raise web.HTTPFound(request.query["to"])
        if name == "loop":
            raise web.HTTPFound("/loop")
        if name == "stall":
            await asyncio.sleep(3600)
        if name == "missing":
            raise web.HTTPNotFound()
        if name == "big":  # says it is 1 GB, sends a little, then stalls: refused on its Content-Length alone
            response = web.StreamResponse(headers={"Content-Length": str(10**9)})
            await response.prepare(request)
            await response.write(samples.png())
            await asyncio.sleep(3600)
        if name == "forever":
            response = web.StreamResponse()
            await response.prepare(request)
            while True:
                await response.write(samples.png() * 100)
        body = {"voice.opus": samples.opus(), "photo.png": samples.png(), "report.pdf": samples.pdf()}[name]
        return web.Response(body=body, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    server = await aiohttp_server(app)
    server.hits = hits
    return server


def make_intake(tmp_path, allow=("127.0.0.0/8",), names=None, **settings) -> Intake:
    async def lookup(host: str, port: int) -> list[str]:
        return (names or {}).get(host) or await system_lookup(host, port)
    config = MediaSettings(directory=tmp_path / "media", allow_private=allow, **settings)
    return Intake(FileStore(config.directory), config, lookup=lookup)


async def refused(intake: Intake, url: str, spec: MediaSpec, code: str, status: int = 400) -> ApiError:
    with pytest.raises(ApiError) as raised:
        await intake.from_url(url, spec)
    assert (raised.value.status, raised.value.code) == (status, code)
    assert on_disk(intake.settings.directory) == []
    return raised.value


async def test_a_url_on_the_allowlist_is_fetched_and_stored(tmp_path, upstream):
    intake = make_intake(tmp_path)
    stored = await intake.from_url(str(upstream.make_url("/voice.opus")), MediaSpec("audio", ptt=True))
    assert stored.path.read_bytes() == samples.opus() and stored.size == len(samples.opus())
    assert (stored.mimetype, stored.kind, stored.filename, stored.ptt) == (
        "audio/ogg; codecs=opus", "audio", "voice.opus", True)
    assert on_disk(tmp_path / "media") == [stored.path]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/photo.png", "http://localhost:{port}/photo.png", "http://[::1]:{port}/photo.png",
    "http://2130706433:{port}/photo.png", "http://127.1:{port}/photo.png",
    "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/photo.png", "http://192.168.0.1/photo.png",
    "http://[fd00::1]/photo.png", "http://[::ffff:127.0.0.1]:{port}/photo.png",
])
async def test_loopback_link_local_and_private_addresses_are_refused_before_any_request(tmp_path, upstream, url):
    intake = make_intake(tmp_path, allow=())
    error = await refused(intake, url.format(port=upstream.port), MediaSpec("image"), "media_url_refused")
    assert "127.0.0.1" not in error.message and "169.254" not in error.message
    assert upstream.hits == []


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "data:image/png;base64,AAAA",
                                 "http:///nohost", "http://example.com:99999/a.png", "not a url"])
async def test_only_http_and_https_urls_with_a_host(tmp_path, url):
    await refused(make_intake(tmp_path), url, MediaSpec("image"), "media_url_refused")


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}/photo.png", "http://localhost:{port}/photo.png", "http://169.254.169.254/",
    "http://10.0.0.1/photo.png", "http://[::1]:{port}/photo.png", "file:///etc/passwd",
])
async def test_a_redirect_to_a_refused_address_is_refused(tmp_path, upstream, target):
    """media.test resolves to the server and is allowlisted by name; what it redirects to is checked again."""
    intake = make_intake(tmp_path, allow=("media.test",), names={"media.test": ["127.0.0.1"]})
    url = f"http://media.test:{upstream.port}/redirect?to={target.format(port=upstream.port)}"
    await refused(intake, url, MediaSpec("image"), "media_url_refused")
    assert upstream.hits == ["/redirect"]


async def test_a_redirect_to_an_allowed_place_is_followed(tmp_path, upstream):
    intake = make_intake(tmp_path, allow=("media.test",), names={"media.test": ["127.0.0.1"]})
    url = f"http://media.test:{upstream.port}/redirect?to=/photo.png"
    stored = await intake.from_url(url, MediaSpec("image"))
    assert (stored.mimetype, stored.filename) == ("image/png", "photo.png")
    assert upstream.hits == ["/redirect", "/photo.png"]


async def test_too_many_redirects_fail(tmp_path, upstream):
    intake = make_intake(tmp_path, max_redirects=2)
    await refused(intake, str(upstream.make_url("/loop")), MediaSpec("image"), "media_fetch_failed", 422)
    assert upstream.hits == ["/loop"] * 3


async def test_an_error_status_is_422_with_the_upstream_status(tmp_path, upstream):
    error = await refused(make_intake(tmp_path), str(upstream.make_url("/missing")), MediaSpec("image"),
                          "media_fetch_failed", 422)
    assert error.details == {"upstream_status": 404}


async def test_a_url_that_never_answers_times_out(tmp_path, upstream):
    intake = make_intake(tmp_path, fetch_timeout=0.5)
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(10):  # without its own bound the fetch would wait the hour out
        await refused(intake, str(upstream.make_url("/stall")), MediaSpec("image"), "media_fetch_timeout", 422)
    assert asyncio.get_running_loop().time() - started < 3


async def test_a_url_that_sends_forever_stops_at_the_limit(tmp_path, upstream):
    intake = make_intake(tmp_path, limits={"image": 100_000})
    await refused(intake, str(upstream.make_url("/forever")), MediaSpec("image"), "media_too_large", 413)


async def test_a_content_length_over_the_limit_is_refused_before_the_body(tmp_path, upstream):
    intake = make_intake(tmp_path, limits={"image": 4999}, fetch_timeout=5)
    await refused(intake, str(upstream.make_url("/big")), MediaSpec("image"), "media_too_large", 413)


async def test_fetched_bytes_are_sniffed_too(tmp_path, upstream):
    intake = make_intake(tmp_path)
    await refused(intake, str(upstream.make_url("/report.pdf")), MediaSpec("image"), "media_type_not_allowed")
    await refused(intake, str(upstream.make_url("/photo.png")), MediaSpec("image", mimetype="image/jpeg"),
                  "media_type_mismatch")
    await refused(intake, str(upstream.make_url("/photo.png")), MediaSpec("audio", ptt=True),
                  "media_type_not_allowed")
