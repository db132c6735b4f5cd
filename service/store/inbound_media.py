"""The media of contacts' messages: one ``inbound_media`` row per media message, and its downloader's states.

A row is stored with its message (service/store/inbound.py), in state ``downloading``; the account's downloader
(service/runtime/downloads.py) claims due rows, asks the worker for the file, and moves each row to ``stored``
or ``failed`` (the events are appended by inbound.py, which shows the message). SQL only.

The worker's ``descriptor`` (direct path, URL, media key and hashes) is what a download needs and a secret
(the media key decrypts the file): it is read only by ``due`` for the downloader, and ``public`` never shows it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from service.states import DEFAULT_ACCOUNT
from service.store import outbox

KINDS = ("image", "video", "audio", "document", "sticker")  # service/media/kinds.py's (the store imports no media)
STATES = ("downloading", "stored", "failed")
MAX_TEXT = 1024  # a filename or mimetype longer than this is cut: the sender chose it
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COLUMNS = ("kind", "mimetype", "size", "sha256", "filename", "caption", "ptt", "seconds", "width", "height", "state",
            "error", "descriptor")  # what ``parse`` makes, in this order
_PUBLIC = ("kind", "mimetype", "size", "sha256", "filename", "caption", "seconds", "width", "height", "state",
           "error")


def _text(value: Any, limit: int | None = MAX_TEXT) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value if limit is None else value[:limit]


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse(event: dict[str, Any]) -> dict[str, Any] | None:
    """The columns of a worker ``message`` event's ``media``, or None when it carries none (or an unknown kind).
    A media without a usable descriptor is stored ``failed``: nothing could ever download it."""
    media = event.get("media")
    if not isinstance(media, dict):
        return None
    kind = media.get("kind") if media.get("kind") in KINDS else event.get("kind")
    if kind not in KINDS:
        return None
    sha256 = media.get("sha256")
    descriptor = media.get("descriptor")
    usable = isinstance(descriptor, dict) and bool(descriptor.get("direct_path") or descriptor.get("url")) \
        and bool(descriptor.get("media_key"))
    return {
        "kind": kind, "mimetype": _text(media.get("mimetype")), "size": _count(media.get("size")),
        "sha256": sha256.lower() if isinstance(sha256, str) and _SHA256.fullmatch(sha256.lower()) else None,
        "filename": _text(media.get("filename")), "caption": _text(media.get("caption"), None),
        "ptt": int(media.get("ptt") is True), "seconds": _count(media.get("seconds")),
        "width": _count(media.get("width")), "height": _count(media.get("height")),
        "state": "downloading" if usable else "failed", "error": None if usable else "invalid_descriptor",
        "descriptor": json.dumps(descriptor if usable else {}, separators=(",", ":")),
    }


def insert(conn: sqlite3.Connection, account: str, message_id: str, media: dict[str, Any], now: float) -> None:
    """The row of a new media message (``media``: what ``parse`` made), due at once."""
    columns = ("account", "message_id", *_COLUMNS, "attempts", "next_attempt_at", "created_at", "updated_at")
    values = (account, message_id, *(media[c] for c in _COLUMNS), 0, now, now, now)
    conn.execute(f"INSERT INTO inbound_media ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                 values)


def get(conn: sqlite3.Connection, account: str, message_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM inbound_media WHERE account = ? AND message_id = ?",
                       (account, message_id)).fetchone()
    return dict(row) if row is not None else None


def attach(conn: sqlite3.Connection, account: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each inbound message row with its media row under ``media`` (None for a message without media)."""
    ids = [m["id"] for m in messages]
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 200):  # a page is at most 200 messages; bounded anyway
        chunk = ids[start:start + 200]
        rows = conn.execute(f"SELECT * FROM inbound_media WHERE account = ? AND message_id IN "
                            f"({', '.join('?' * len(chunk))})", (account, *chunk))
        found.update({row["message_id"]: dict(row) for row in rows})
    for message in messages:
        message["media"] = found.get(message["id"])
    return messages


def url(account: str, message_id: str) -> str:
    """Where its bytes are served (service/http/views/media.py): the original path for ``default``."""
    return f"/media/{message_id}" if account == DEFAULT_ACCOUNT else f"/accounts/{account}/media/{message_id}"


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The media as the API and the events show it: never the descriptor."""
    shown = {"id": row["message_id"], **{k: row[k] for k in _PUBLIC}, "ptt": bool(row["ptt"])}
    shown["url"] = url(row["account"], row["message_id"])
    return {k: shown[k] for k in ("id", "kind", "mimetype", "size", "sha256", "filename", "caption", "ptt", "seconds",
                                  "width", "height", "state", "url", "error")}


def served(conn: sqlite3.Connection, account: str, message_id: str) -> dict[str, Any] | None:
    """What ``GET /media/{id}`` serves for the message ``message_id``, received or sent: its ``state``
    (downloading, stored, failed, pruned), ``sha256``, ``mimetype``, ``filename``, ``kind`` and ``error``. None
    when no message with this id carries media. A sent message's media is read from its outbox columns
    (migration 012): stored from its acceptance on."""
    row = get(conn, account, message_id)
    if row is not None:
        state = "pruned" if row["state"] == "stored" and row.get("pruned_at") is not None else row["state"]
        return {"state": state, **{k: row[k] for k in ("sha256", "mimetype", "filename", "kind", "error")}}
    sent = outbox.get(conn, account, message_id)
    if sent is None or not sent.get("media_sha256"):
        return None
    return {"state": "pruned" if sent.get("media_pruned_at") is not None else "stored",
            "sha256": sent["media_sha256"], "mimetype": sent.get("media_mimetype"),
            "filename": sent.get("media_filename"), "kind": sent.get("media_kind"), "error": None}


# --- the downloader's states ----------------------------------------------------------------------


def due(conn: sqlite3.Connection, account: str, now: float, limit: int,
        skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows to download now, oldest due first, with what the worker needs (the message's WhatsApp id and chat,
    the descriptor as an object); ``skip``: those in flight."""
    sql = ("SELECT d.*, m.wa_id, m.chat_jid FROM inbound_media d JOIN inbound_messages m"
           " ON m.account = d.account AND m.id = d.message_id"
           " WHERE d.account = ? AND d.state = 'downloading' AND d.next_attempt_at <= ?")
    args: list[Any] = [account, now]
    if skip:
        sql += f" AND d.message_id NOT IN ({', '.join('?' * len(skip))})"
        args.extend(skip)
    rows = [dict(r) for r in conn.execute(sql + " ORDER BY d.next_attempt_at LIMIT ?", (*args, limit))]
    for row in rows:
        row["descriptor"] = json.loads(row["descriptor"])
    return rows


def next_due(conn: sqlite3.Connection, account: str) -> float | None:
    """When the account's next download is due (None: none is waiting)."""
    value = conn.execute("SELECT MIN(next_attempt_at) FROM inbound_media WHERE account = ? AND state = 'downloading'",
                         (account,)).fetchone()[0]
    return float(value) if value is not None else None


def resume(conn: sqlite3.Connection, account: str, now: float) -> int:
    """Every download of the account due now: at start (a crash left them ``downloading``, none is in flight) and
    when the account connects (those that waited for the connection)."""
    return conn.execute("UPDATE inbound_media SET next_attempt_at = ? WHERE account = ? AND state = 'downloading'"
                        " AND next_attempt_at > ?", (now, account, now)).rowcount


def claim(conn: sqlite3.Connection, account: str, message_id: str, until: float, now: float) -> bool:
    """One more attempt, counted before it starts (a download that crashes the worker every time is still bounded)
    and not due again before ``until`` (while it runs). False when the row is no longer downloading."""
    return conn.execute(
        "UPDATE inbound_media SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?"
        " WHERE account = ? AND message_id = ? AND state = 'downloading'", (until, now, account, message_id),
    ).rowcount == 1


def retry(conn: sqlite3.Connection, account: str, message_id: str, at: float, now: float, *,
          give_back: bool = False) -> None:
    """Try again at ``at``; ``give_back``: the attempt did not count (the account was not connected)."""
    conn.execute(
        "UPDATE inbound_media SET next_attempt_at = ?, updated_at = ?, attempts = attempts - ?"
        " WHERE account = ? AND message_id = ? AND state = 'downloading'",
        (at, now, int(give_back), account, message_id),
    )


def stored(conn: sqlite3.Connection, account: str, message_id: str, sha256: str, size: int,
           descriptor: dict[str, Any] | None, now: float) -> bool:
    """Downloading -> stored: the file is in the media store. A new ``descriptor`` (a media retry gave a new
    direct path) replaces the old one. False when the row was no longer downloading."""
    sql = "UPDATE inbound_media SET state = 'stored', sha256 = ?, size = ?, error = NULL, next_attempt_at = NULL," \
          " updated_at = ?"
    args: list[Any] = [sha256, size, now]
    if descriptor is not None:
        sql += ", descriptor = ?"
        args.append(json.dumps(descriptor, separators=(",", ":")))
    sql += " WHERE account = ? AND message_id = ? AND state = 'downloading'"
    return conn.execute(sql, (*args, account, message_id)).rowcount == 1


def failed(conn: sqlite3.Connection, account: str, message_id: str, error: str, now: float) -> bool:
    """Downloading -> failed, with why. False when the row was no longer downloading."""
    return conn.execute(
        "UPDATE inbound_media SET state = 'failed', error = ?, next_attempt_at = NULL, updated_at = ?"
        " WHERE account = ? AND message_id = ? AND state = 'downloading'", (error, now, account, message_id),
    ).rowcount == 1
