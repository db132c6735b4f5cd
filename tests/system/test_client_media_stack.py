"""The Python client's and the CLI's media against one real sandbox stack (gateway, worker with the real
Baileys, the emulator's media host): what they send arrives at the emulator's contact byte-identical (its
sha256, decrypted by the contact), and what the contact sends downloads byte-identical, to a file, as a
stream and from the CLI, with typed media on the message and typed errors."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

import wa_gateway_client as wgc
from tests.helpers import media_samples as samples
from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import BIN, REPO, Stack, wait_for
from wa_gateway_client import errors

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def stack():
    # The test's own file server is on 127.0.0.1: a URL there is refused unless allowed.
    with Stack({"WA_MEDIA_FETCH_ALLOW_PRIVATE": "127.0.0.1/32"}, sandbox=True) as running:
        pair(running)
        yield running


def at_contact(stack, data: bytes) -> dict:
    """The contact's copy of a media message with these bytes (the sha256 of what it decrypted)."""
    sha = hashlib.sha256(data).hexdigest()

    def found():
        return next((m for m in stack.emu("GET", f"/contacts/{CONTACT}/messages").json()
                     if (m.get("media") or {}).get("sha256") == sha), None)
    return wait_for(found, 30, "the media at the contact")


def from_contact(stack, data: bytes, **media) -> str:
    """The contact sends media; the id of that message at the gateway once its file is stored."""
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages",
                    {"to": PHONE, "media": {**media, "base64": base64.b64encode(data).decode()}})
    assert res.status == 200, res.raw
    sha = hashlib.sha256(data).hexdigest()

    def stored():
        return next((m["id"] for m in stack.get("/messages?direction=in&limit=50").json()["messages"]
                     if (m.get("media") or {}).get("sha256") == sha and m["media"]["state"] == "stored"), None)
    return wait_for(stored, 30, "the contact's media stored at the gateway")


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "wa-gateway"), *args], env=stack.env, cwd=REPO, capture_output=True,
                          timeout=90)


async def test_the_client_sends_a_path_bytes_and_a_url_and_each_arrives_identical(stack, tmp_path):
    picture = tmp_path / "photo.png"
    picture.write_bytes(samples.png(6, 6))
    served = tmp_path / "served"
    served.mkdir()
    (served / "report.pdf").write_bytes(samples.pdf() + b"\n% served")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        async with wgc.AsyncClient(stack.base, api_key=stack.api_key) as wa:
            sent = await wa.send_media(CONTACT, "image", path=picture, caption="a photo")
            assert sent.type == "image" and sent.media and sent.media.sha256 == hashlib.sha256(
                picture.read_bytes()).hexdigest()
            voice = await wa.send_media(CONTACT, "audio", data=samples.opus(), ptt=True)
            assert voice.media and voice.media.ptt is True
            url = f"http://127.0.0.1:{server.server_address[1]}/report.pdf"
            await wa.send_media(CONTACT, "document", url=url, filename="Q4 report.pdf")
            with pytest.raises(errors.MediaTypeMismatch):
                await wa.send_media(CONTACT, "image", data=samples.png(), mimetype="image/jpeg")
    finally:
        server.shutdown()
    assert at_contact(stack, picture.read_bytes())["media"]["caption"] == "a photo"
    assert at_contact(stack, samples.opus())["media"]["ptt"] is True
    assert at_contact(stack, (served / "report.pdf").read_bytes())["media"]["filename"] == "Q4 report.pdf"


async def test_the_client_downloads_a_contacts_media_to_a_file_and_as_a_stream(stack, tmp_path):
    pdf = samples.pdf() + b"\n%" + b"y" * 300_000
    message_id = from_contact(stack, pdf, kind="document", mimetype="application/pdf", filename="../../notes.pdf",
                              caption="notes")
    async with wgc.AsyncClient(stack.base, api_key=stack.api_key) as wa:
        message = await wa.message(message_id)
        assert isinstance(message, wgc.models.InboundMessage) and message.media
        assert message.media.kind == "document" and message.media.size == len(pdf)
        saved = await wa.download_media(message_id, tmp_path)
        assert saved.path == tmp_path / "notes.pdf" and saved.path.read_bytes() == pdf  # no path from the sender
        again = await wa.download_media(message_id, tmp_path)
        assert again.path == tmp_path / "notes (2).pdf"  # a sender's name never replaces a file
        assert b"".join([c async for c in wa.account("default").iter_media(message_id)]) == pdf
        with pytest.raises(errors.MediaNotFound):
            await wa.download_media("01NOSUCHMESSAGE0000000000", tmp_path)
    with wgc.Client(stack.base, api_key=stack.api_key) as blocking:
        assert b"".join(blocking.iter_media(message_id)) == pdf


def test_the_cli_sends_media_and_downloads_it(stack, tmp_path):
    picture = tmp_path / "cli.png"
    picture.write_bytes(samples.png(5, 5))
    sent = cli(stack, "send", CONTACT, "--image", str(picture), "--caption", "from the CLI", "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["media"]["kind"] == "image"
    assert at_contact(stack, picture.read_bytes())["media"]["caption"] == "from the CLI"
    voice = cli(stack, "--sandbox", "send", CONTACT, "--voice", str(REPO / "tests/fixtures/media/voice.opus"))
    assert voice.returncode == 0, voice.stderr
    assert at_contact(stack, samples.opus())["media"]["ptt"] is True

    data = samples.png(7, 7)
    message_id = from_contact(stack, data, kind="image", mimetype="image/png")
    out = tmp_path / "got.png"
    got = cli(stack, "media", "download", message_id, "-o", str(out))
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == data and hashlib.sha256(data).hexdigest().encode() in got.stdout
    piped = cli(stack, "media", "download", message_id, "-o", "-")
    assert piped.returncode == 0 and piped.stdout == data

    missing = cli(stack, "media", "download", "01NOSUCHMESSAGE0000000000")
    assert missing.returncode == 5 and b"media_not_found" in missing.stderr
    nofile = cli(stack, "send", CONTACT, "--document", str(tmp_path / "absent.pdf"))
    assert nofile.returncode == 2 and b"no such file" in nofile.stderr
