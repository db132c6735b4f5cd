"""Contacts' media for the gateway's inbound media tests: a worker ``message`` event with ``media`` (as
node_worker/src/session/inbound.js hands it over), a ``ScriptedWorker`` that answers ``POST /media/download`` like
the worker (the file written into WA_MEDIA_DIR under its sha256, then 200) or with a scripted error, and
``stored_media``: a message whose media is in the store already (the view's tests)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from service.errors import ApiError
from service.media.store import MediaStore
from service.states import DEFAULT_ACCOUNT
from service.store import inbound
from service.store.db import Database

PHONE = "+15550002222"
JID = "15550002222@s.whatsapp.net"


def media_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def media_event(data: bytes, n: int = 1, *, kind: str = "image", mimetype: str = "image/jpeg",
                filename: str | None = None, sha256: str | None = None, **media: Any) -> dict[str, Any]:
    """A contact's media message as the worker's event; ``media`` overrides fields of its ``media`` object."""
    digest = hashlib.sha256(data).digest()
    descriptor = {"direct_path": f"/v/t62.7118-24/{n}", "url": None, "media_key": media_key(),
                  "file_enc_sha256": base64.b64encode(os.urandom(32)).decode(),
                  "file_sha256": base64.b64encode(digest).decode(), "file_length": len(data)}
    body = {"kind": kind, "mimetype": mimetype, "size": len(data), "sha256": sha256 or digest.hex(),
            "filename": filename, "caption": "look", "ptt": False, "seconds": None, "width": 2, "height": 2,
            "descriptor": descriptor} | media
    return {"type": "message", "event_id": f"in:{JID}:WAM{n}", "id": f"WAM{n}", "from": PHONE, "lid": None,
            "from_jid": JID, "push_name": "Ana", "timestamp": time.time(), "kind": kind, "text": "look",
            "offline": False, "media": body}


class ScriptedWorker:
    """The worker's ``POST /media/download`` as the downloader calls it (``request``): each call takes the next
    step of ``script`` (None or nothing left: write ``files[media_key]`` where the worker would and answer 200;
    an ``ApiError``: raise it; a dict: answer it as is)."""

    def __init__(self, media_dir: Path):
        self.media_dir = media_dir
        self.files: dict[str, bytes] = {}  # media_key -> the decrypted file
        self.script: list[Any] = []
        self.calls: list[dict[str, Any]] = []
        self.timeouts: list[float | None] = []

    def holds(self, event: dict[str, Any], data: bytes) -> None:
        self.files[event["media"]["descriptor"]["media_key"]] = data

    async def request(self, method: str, path: str, *, json: Any = None, timeout: float | None = None,
                      **_: Any) -> Any:
        assert (method, path) == ("POST", "/media/download")
        self.calls.append(json)
        self.timeouts.append(timeout)
        step = self.script.pop(0) if self.script else None
        if isinstance(step, ApiError):
            raise step
        if isinstance(step, dict):
            return step
        data = self.files[json["descriptor"]["media_key"]]
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.media_dir / sha256[:2] / sha256[2:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return {"sha256": sha256, "size": len(data), "descriptor": json["descriptor"]}


def error(status: int, code: str) -> ApiError:
    return ApiError("scripted", code=code, status=status)


async def stored_media(db: Database, store: MediaStore, data: bytes, n: int = 1, *, account: str = DEFAULT_ACCOUNT,
                       settle: bool = True, **media: Any) -> str:
    """A contact's media message stored, its bytes in ``store`` and (``settle``) marked stored, as the
    downloader leaves it; returns the message id."""
    event = media_event(data, n, **media)
    result = await db.run(inbound.store_worker_event, account, event, time.time())
    message_id: str = json.loads(result["event"]["payload"])["data"]["id"]
    if settle:
        async with store.writer(len(data) + 1) as writer:
            writer.write(data)
            blob = await writer.commit()
        await db.run(inbound.media_settled, account, message_id, time.time(), sha256=blob.sha256, size=blob.size)
    return message_id
