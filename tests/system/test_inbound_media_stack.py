"""A contact's media through one real sandbox stack (gateway, worker with the real Baileys, the emulator's phone
and media host): each kind the contact sends is announced in the event log as message.received with its media
(state downloading), then media.stored once the gateway had the worker download it, and GET /media/{id} answers
the very bytes the contact sent (their sha256), a Range of them, and 304 for its ETag; the media key is in no
answer and no log line."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3

import pytest

from service.webhooks import secret as webhook_secret
from tests.helpers import media_samples as samples
from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import Stack, wait_for
from tests.helpers.webhook_receiver import Receiver

pytestmark = pytest.mark.system

# kind, bytes, what the contact declares
SENT = [
    ("image", samples.png(5, 3), {"mimetype": "image/png", "caption": "a photo"}),
    ("video", samples.mp4(), {"mimetype": "video/mp4", "caption": "a clip"}),
    ("audio", samples.opus(), {"mimetype": "audio/ogg; codecs=opus", "ptt": True}),
    ("document", samples.pdf() + b"\n% inbound", {"mimetype": "application/pdf", "filename": "Q4 résumé.pdf",
                                                  "caption": "the report"}),
    ("sticker", samples.webp(), {"mimetype": "image/webp"}),
]


@pytest.fixture(scope="module")
def receiver():
    """A webhook receiver that verifies every delivery as the standardwebhooks package does."""
    running = Receiver(webhook_secret.generate()).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stack(receiver):
    with Stack({"WA_WEBHOOK_URL": receiver.url, "WA_WEBHOOK_SECRET": receiver.secret}, sandbox=True) as running:
        pair(running)
        yield running


def test_each_kind_a_contact_sends_is_stored_and_served_identical(stack):
    for kind, data, declared in SENT:
        res = stack.emu("POST", f"/contacts/{CONTACT}/messages",
                        {"to": PHONE, "media": {"kind": kind, "base64": base64.b64encode(data).decode(), **declared}})
        assert res.status == 200, res.raw
    for kind, data, declared in SENT:
        sha = hashlib.sha256(data).hexdigest()
        received = stack.wait_event(lambda e, sha=sha: e["type"] == "message.received"
                                    and (e.get("media") or {}).get("sha256") == sha, 60, f"{kind} received")
        media = received["media"]
        assert received["data"]["type"] == kind and media["kind"] == kind and media["state"] == "downloading", received
        assert media["size"] == len(data) and media["mimetype"] == declared["mimetype"]
        assert media["caption"] == declared.get("caption") and media["ptt"] is bool(declared.get("ptt"))
        assert media["url"] == f"/media/{received['id']}" and "descriptor" not in media
        stored = stack.wait_event(lambda e, i=received["id"]: e["type"] == "media.stored" and e["id"] == i, 60,
                                  f"{kind} stored")
        assert stored["media"]["state"] == "stored" and stored["media"]["sha256"] == sha
        res = stack.get(media["url"])
        assert res.status == 200, res.raw
        assert hashlib.sha256(res.raw).hexdigest() == sha, kind  # the very bytes the contact sent
        assert res.headers["Content-Type"] == declared["mimetype"] and res.headers["ETag"] == f'"{sha}"'
        part = stack.get(media["url"], headers={"Range": "bytes=2-9"})
        assert part.status == 206 and part.raw == data[2:10]
        assert part.headers["Content-Range"] == f"bytes 2-9/{len(data)}"
        assert stack.get(media["url"], headers={"If-None-Match": f'"{sha}"'}).status == 304
        if kind == "document":
            assert "filename*=utf-8''Q4%20r%C3%A9sum%C3%A9.pdf" in res.headers["Content-Disposition"]
        message = stack.get(f"/messages/{received['id']}").json()
        assert message["media"]["state"] == "stored" and message["type"] == kind
    assert not [e for e in stack.events() if e["type"] == "media.failed"]


def test_each_kind_reaches_the_webhook_announced_then_stored_without_its_bytes(stack, receiver):
    """After the test above: each message.received and media.stored of a contact's media was delivered, signed,
    with the media's metadata and URL, never its bytes."""
    def delivered(kind: str, sha: str) -> dict | None:
        seen = {r.event["type"]: r.event for r in receiver.delivered() if r.event is not None
                and (r.event["data"].get("media") or {}).get("sha256") == sha}
        return seen if {"message.received", "media.stored"} <= seen.keys() else None

    for kind, data, _ in SENT:
        sha = hashlib.sha256(data).hexdigest()
        seen = wait_for(lambda kind=kind, sha=sha: delivered(kind, sha), 30, f"{kind}'s webhooks")
        assert seen["message.received"]["data"]["media"]["state"] == "downloading"
        stored = seen["media.stored"]["data"]
        assert stored["type"] == kind and stored["media"]["state"] == "stored"
        assert stack.get(stored["media"]["url"]).raw == data
    bodies = b"".join(r.body for r in receiver.snapshot())
    for _, data, _ in SENT:
        assert base64.b64encode(data) not in bodies and data not in bodies  # metadata only, never the bytes
    # The media keys the worker handed over stay in the store's rows: no answer and no log line shows one.
    keys = _media_keys(stack)
    assert keys is None or len(keys) == len(SENT)
    shown = stack.get("/events?limit=500").raw.decode() + stack.get("/messages?direction=in").raw.decode()
    logs = stack.logs()
    for key in keys or ():
        assert key not in shown and key not in logs


def _media_keys(stack) -> list[str] | None:
    """The media keys in the gateway's store (its SQLite file; None when the stack runs on PostgreSQL)."""
    db = stack.data_dir / "gateway.db"
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        return [json.loads(d)["media_key"] for (d,) in conn.execute("SELECT descriptor FROM inbound_media")]
