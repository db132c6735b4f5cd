"""Which blobs messages reference, and how many bytes an account holds: SQL only, on either engine.

A blob is referenced while a message that is not pruned names it: an outbound row with ``media_sha256`` and no
``media_pruned_at`` (migration 012), an inbound media row with ``sha256`` and no ``pruned_at`` (013, 014), in any
state (a row still downloading will name the blob its download stores). Reference counting is this query, not a
counter beside the rows that could drift from them: the same content sent or received by several messages and
accounts is one blob, kept while any of them needs it.

Retention marks rows pruned (``prune_rows``): an outbound message once it is done (sent, delivered, read or
failed: a queued one still needs its media) and an inbound one once its download ended (stored or failed), when
older than WA_MEDIA_RETENTION. The quota (WA_MEDIA_QUOTA_BYTES) counts the distinct blobs an account's unpruned
messages reference, each once: the same picture sent a hundred times is stored, and counted, once.
"""

from __future__ import annotations

from typing import Any

from service.errors import ApiError

DONE = ("sent", "delivered", "read", "failed")
ENDED = ("stored", "failed")
BATCH = 500  # rows pruned, or blobs looked up, per statement
_UNPRUNED_BLOBS = (  # (sha256, size) of the distinct blobs an account's unpruned messages reference
    "SELECT media_sha256 AS sha256, media_size AS size FROM messages"
    " WHERE account = ? AND media_sha256 IS NOT NULL AND media_pruned_at IS NULL"
    " UNION SELECT sha256, size FROM inbound_media"
    " WHERE account = ? AND sha256 IS NOT NULL AND pruned_at IS NULL AND state <> 'failed'")


class MediaQuotaExceeded(ApiError):
    """The account's stored media plus this one would pass WA_MEDIA_QUOTA_BYTES."""

    status = 413
    code = "media_quota_exceeded"


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def prune_rows(conn: Any, older_than: float, now: float, limit: int = BATCH) -> tuple[int, int]:
    """Mark up to ``limit`` outbound and ``limit`` inbound media rows older than ``older_than`` pruned;
    (outbound, inbound) marked. Called again while it marks a full batch (short transactions)."""
    out = conn.execute(
        "UPDATE messages SET media_pruned_at = ? WHERE seq IN (SELECT seq FROM messages"
        " WHERE media_sha256 IS NOT NULL AND media_pruned_at IS NULL AND created_at < ?"
        f" AND status IN ({_marks(len(DONE))}) ORDER BY created_at LIMIT ?)",
        (now, older_than, *DONE, limit)).rowcount
    rows = conn.execute(
        "SELECT account, message_id FROM inbound_media WHERE pruned_at IS NULL AND created_at < ?"
        f" AND state IN ({_marks(len(ENDED))}) ORDER BY created_at LIMIT ?", (older_than, *ENDED, limit)).fetchall()
    for account, message_id in rows:
        conn.execute("UPDATE inbound_media SET pruned_at = ? WHERE account = ? AND message_id = ?",
                     (now, account, message_id))
    return max(out, 0), len(rows)


def referenced(conn: Any, blobs: list[str]) -> set[str]:
    """Those of ``blobs`` (at most ``BATCH``) that an unpruned message references."""
    if not blobs:
        return set()
    marks = _marks(len(blobs))
    rows = conn.execute(
        f"SELECT media_sha256 FROM messages WHERE media_sha256 IN ({marks}) AND media_pruned_at IS NULL"
        f" UNION SELECT sha256 FROM inbound_media WHERE sha256 IN ({marks}) AND pruned_at IS NULL",
        (*blobs, *blobs)).fetchall()
    return {row[0] for row in rows}


def account_bytes(conn: Any, account: str) -> int:
    """Bytes of the distinct blobs the account's unpruned messages reference (a failed download holds none)."""
    row = conn.execute(f"SELECT COALESCE(SUM(size), 0) FROM ({_UNPRUNED_BLOBS}) AS blobs", (account, account))
    return int(row.fetchone()[0])


def holds(conn: Any, account: str, sha256: str) -> bool:
    """Whether an unpruned message of the account already references the blob (then it costs no quota)."""
    row = conn.execute(f"SELECT 1 FROM ({_UNPRUNED_BLOBS}) AS blobs WHERE sha256 = ? LIMIT 1",
                       (account, account, sha256)).fetchone()
    return row is not None


def quota_left(conn: Any, account: str, quota: int) -> int | None:
    """Bytes the account may still add under ``quota`` (WA_MEDIA_QUOTA_BYTES), never below 0; None: no quota."""
    if quota <= 0:
        return None
    return max(0, quota - account_bytes(conn, account))


def check_quota(conn: Any, account: str, quota: int, sha256: str, size: int) -> None:
    """For ``POST /send``, in the transaction that inserts the outbox row (so that two sends cannot both take the
    last bytes): MediaQuotaExceeded (413) when a blob the account does not hold yet would pass the quota."""
    left = quota_left(conn, account, quota)
    if left is None or size <= left or holds(conn, account, sha256):
        return
    raise MediaQuotaExceeded(f"the account's stored media would pass its quota of {quota} bytes"
                             f" ({quota - left} bytes stored); older media is pruned after WA_MEDIA_RETENTION")


def bytes_by_account(conn: Any) -> dict[str, int]:
    """Every account's bytes (as ``account_bytes`` counts them), for the metrics."""
    rows = conn.execute(
        "SELECT account, COALESCE(SUM(size), 0) FROM ("
        "SELECT account, media_sha256 AS sha256, media_size AS size FROM messages"
        " WHERE media_sha256 IS NOT NULL AND media_pruned_at IS NULL"
        " UNION SELECT account, sha256, size FROM inbound_media"
        " WHERE sha256 IS NOT NULL AND pruned_at IS NULL AND state <> 'failed') AS blobs GROUP BY account")
    return {row[0]: int(row[1]) for row in rows}
