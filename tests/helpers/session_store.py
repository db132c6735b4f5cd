"""Read the worker's session store from Python, for tests: node_worker/src/journal.js's files, decoded.

The store is a directory of ``snapshot-N.snap`` and ``journal-N.wal`` files made of frames (u32le payload
length, u32le crc32 of the payload, UTF-8 JSON payload). A snapshot frame is ``{"v", "gen", "data": {key:
value}}``, a journal frame ``{"ops": [[key, value | null], ...]}``. Values are Baileys' auth data encoded with
``BufferJSON``: bytes are ``{"type": "Buffer", "data": "<base64>"}``; libsignal's session records hold their
keys as plain base64 strings instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_BASE64 = re.compile(r"^[A-Za-z0-9+/]{20,}={0,2}$")


def frames(buf: bytes) -> Iterator[dict]:
    """The complete, intact frames of one file (a torn or corrupt tail ends the list, as in journal.js)."""
    offset = 0
    while len(buf) - offset >= 8:
        length, crc = struct.unpack_from("<II", buf, offset)
        end = offset + 8 + length
        if end > len(buf):
            return
        body = buf[offset + 8:end]
        if zlib.crc32(body) != crc:
            return
        yield json.loads(body)
        offset = end


def _files(session_dir: Path) -> list[Path]:
    def order(p: Path) -> tuple[int, int]:
        gen = int(re.sub(r"\D", "", p.stem) or 0)
        return gen, 0 if p.suffix == ".snap" else 1
    try:
        names = [p for p in Path(session_dir).iterdir() if p.suffix in (".snap", ".wal")]
    except FileNotFoundError:
        return []
    return sorted(names, key=order)


def records(session_dir: Path) -> Iterator[tuple[str, Any]]:
    """Every (key, value) ever written and still on disk, in order (deleted values included)."""
    for path in _files(session_dir):
        for record in frames(path.read_bytes()):
            yield from (record.get("data") or {}).items()
            for key, value in record.get("ops", []):
                if value is not None:
                    yield key, value


def current(session_dir: Path) -> dict[str, Any]:
    """The store as journal.js would load it: the newest snapshot plus its journal."""
    files = _files(session_dir)
    snaps = [p for p in files if p.suffix == ".snap"]
    gen = int(re.sub(r"\D", "", snaps[-1].stem)) if snaps else 0
    data: dict[str, Any] = {}
    for path in files:
        if int(re.sub(r"\D", "", path.stem) or 0) != gen:
            continue
        for record in frames(path.read_bytes()):
            data.update(record.get("data") or {})
            for key, value in record.get("ops", []):
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
    return data


def is_registered(session_dir: Path) -> bool:
    """Whether the stored creds belong to a paired device (Baileys logs in when ``creds.me`` is set)."""
    creds = current(session_dir).get("creds") or {}
    return bool(creds.get("me") or creds.get("registered"))


def secret_bytes(session_dir: Path) -> set[bytes]:
    """Every byte string of 16+ bytes in the store: BufferJSON values (and the JSON inside them, as in
    sender keys) and base64 strings (libsignal sessions: privKey, rootKey, chain keys)."""
    found: set[bytes] = set()

    def add(raw: bytes) -> None:
        if len(raw) >= 16:
            found.add(raw)

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "Buffer" and isinstance(value.get("data"), str):
                raw = base64.b64decode(value["data"])
                add(raw)
                try:
                    walk(json.loads(raw))
                except ValueError:
                    pass
                return
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and _BASE64.match(value) and re.search("[a-z]", value):
            try:
                add(base64.b64decode(value, validate=True))
            except binascii.Error:
                pass

    for _, value in records(session_dir):
        walk(value)
    return found
