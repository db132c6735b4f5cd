"""Issue 24's first acceptance through the whole sandbox stack (supervisord, gateway, the worker with the real
Baileys uploading to the emulator's media host): each kind sent by URL, base64 and multipart arrives at an
emulator contact byte-identical (the sha256 of what the contact decrypted), a voice note marked as one, a
caption and a document's name as sent. One stack for the module; every send goes to its own contact so that
the checks read one inbox each."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import media_samples as samples
from tests.helpers.sandbox import pair
from tests.helpers.stack import Stack, http, wait_for

pytestmark = pytest.mark.system

KINDS = {  # kind: (bytes, declared mimetype, extra request fields)
    "image": (lambda: samples.png(9, 9), "image/png", {"caption": "a picture"}),
    "video": (samples.mp4, "video/mp4", {"caption": "a clip"}),
    "audio": (samples.opus, "audio/ogg", {"ptt": True}),
    "document": (lambda: samples.pdf() + b"% the stack test\n", "application/pdf", {"caption": "the report"}),
    "sticker": (samples.webp, "image/webp", {}),
}
SOURCES = ("base64", "url", "multipart")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A file server on loopback for the URL sends (allowed by the stack's WA_MEDIA_FETCH_ALLOW_PRIVATE)."""
    root = tmp_path_factory.mktemp("served")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def stack():
    with Stack({"WA_MEDIA_FETCH_ALLOW_PRIVATE": "127.0.0.1/32"}, sandbox=True) as running:
        pair(running)
        yield running


def multipart_body(fields: dict[str, str], file: tuple[str, str, str, bytes]) -> tuple[bytes, str]:
    """A form by hand, the file part last: (body, Content-Type)."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    name, filename, mimetype, data = file
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                 f"Content-Type: {mimetype}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def contact_for(kind: str, source: str) -> str:
    return f"+1555021{list(KINDS).index(kind)}{SOURCES.index(source)}{uuid.uuid4().int % 100:02d}"


def send(stack: Stack, served: tuple[Path, str], kind: str, source: str, phone: str, data: bytes) -> dict:
    _, mimetype, extra = KINDS[kind]
    if source == "multipart":
        fields = {"phone_number": phone, "kind": kind,
                  **{k: str(v).lower() if isinstance(v, bool) else v for k, v in extra.items()}}
        body, content_type = multipart_body(fields, ("file", f"{kind}.bin" if kind != "document" else "report.pdf",
                                                     mimetype, data))
        res = http("POST", stack.base + "/send?wait=10", raw=body, headers=stack.auth({"Content-Type": content_type}))
    else:
        if source == "url":
            root, base = served
            name = f"{kind}-{hashlib.sha256(data).hexdigest()[:8]}.bin"
            (root / name).write_bytes(data)
            media = {"url": f"{base}/{name}"}
        else:
            media = {"base64": base64.b64encode(data).decode(), "mimetype": mimetype}
        if kind == "document":
            media["filename"] = "report.pdf"
        res = stack.post("/send?wait=10", {"phone_number": phone, kind: media, **extra})
    assert res.status == 200, res.raw
    return res.json()


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_from_each_source_arrives_byte_identical(stack, served, kind, source):
    data = KINDS[kind][0]()
    phone = contact_for(kind, source)
    sent = send(stack, served, kind, source, phone, data)
    sha = hashlib.sha256(data).hexdigest()
    assert sent["type"] == kind and sent["media"]["sha256"] == sha and sent["media"]["size"] == len(data)

    def arrived():
        inbox = stack.emu("GET", f"/contacts/{phone}/messages").json()
        return next((m for m in inbox if m.get("media")), None)
    got = wait_for(arrived, 30, f"the {kind} at {phone}")
    assert got["id"] == sent["whatsapp_id"]
    media = got["media"]
    assert media["kind"] == kind and media["sha256"] == sha and media["size"] == len(data)
    extra = KINDS[kind][2]
    assert media.get("caption") == extra.get("caption")
    assert bool(media.get("ptt")) is (kind == "audio")  # the voice note is marked as one at the contact
    if kind == "document":
        assert media["filename"] == "report.pdf"
    # The gateway serves what it sent, byte-identical.
    served_back = stack.get(sent["media"]["url"])
    assert served_back.status == 200 and hashlib.sha256(served_back.raw).hexdigest() == sha
