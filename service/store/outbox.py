"""The outbox's queries: accept, dispatch bookkeeping, receipts, listing. SQL only.

Every function takes the connection first and runs inside the writer thread's transaction
(``Database.run(fn, ...)``), so each is atomic and functions that check-then-write (idempotency keys,
the outbox limit, cancelling) cannot race each other.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from service.store import chat_index, event_log, leases, outbox_pg
from service.store.ids import new_id
from service.store.outbox_ids import OutboundExtra as OutboundExtra  # re-exported: callers name them outbox.*
from service.store.outbox_ids import OutboundMedia as OutboundMedia
from service.store.outbox_ids import is_group as is_group
from service.store.outbox_ids import media_identity as media_identity
from service.store.outbox_ids import request_hash as request_hash
from service.store.outbox_ids import wa_id_for as wa_id_for
from service.store.outbox_keys import IDEMPOTENCY_WINDOW as IDEMPOTENCY_WINDOW  # re-exported, as below
from service.store.outbox_keys import KeyReused as KeyReused
from service.store.outbox_keys import key_in_use as key_in_use
from service.store.outbox_keys import key_row as _key_row
from service.store.outbox_keys import replay_of as _replay_of
from service.store.outbox_keys import replayed as replayed
from service.store.paging import newest_first

PENDING = ("queued", "sending")
RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}
STEP_COLUMN = {"queued": "queued_at", "sending": "sending_at", "sent": "sent_at",
               "delivered": "delivered_at", "read": "read_at", "failed": "failed_at"}

class OutboxFull(Exception):
    """The account has ``max_outbox`` messages waiting already."""


class NotCancellable(Exception):
    """The message left ``queued`` (it is sending or sent)."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


def _written(conn: sqlite3.Connection, account: str, message_id: str) -> dict[str, Any]:
    """A message this transaction has just written: it is there (absent would be the store's bug)."""
    row = get(conn, account, message_id)
    if row is None:
        raise LookupError(f"message {message_id} is missing inside the transaction that wrote it")
    return row


# --- accepting ---------------------------------------------------------------------------------

def accept(conn: sqlite3.Connection, *, account: str, phone_number: str, body: str,
           idempotency_key: str | None, now: float, ttl: float, max_outbox: int,
           wait_reason: str | None = None, media: OutboundMedia | None = None,
           extra: OutboundExtra | None = None) -> tuple[dict[str, Any], bool]:
    """Store a new outbound message, or return the one the key already names: (message, created).
    ``wait_reason``: why it will wait (the account is not connected now), shown from the first answer.
    ``media``: its stored media (``body`` is then the caption, or ''); ``extra``: what else it is."""
    rhash = request_hash(phone_number, body, media, extra.identity if extra else None)
    message_id = new_id(now)
    action = extra.action if extra else None
    values = (account, message_id, wa_id_for(message_id), phone_number, body,
              now + (extra.ttl if extra and extra.ttl is not None else ttl), idempotency_key, rhash, now, wait_reason,
              *((media.kind, media.sha256, media.mimetype, media.size, media.filename, int(media.ptt)) if media
                else (None, None, None, None, None, 0)),
              *((action, extra.content, extra.target_id, extra.reply_to) if extra else (None, None, None, None)))
    if getattr(conn, "dialect", "sqlite") == "postgresql":  # one round trip when nothing stands in the way
        found = outbox_pg.accept_at_once(conn, values, max_outbox=max_outbox, chat_kind=chat_index.kind_of(
            phone_number) if action in chat_index.MESSAGE_ACTIONS else None)
        if found is not None:
            return dict(found), True
    if idempotency_key is not None:
        key_row = _key_row(conn, account, idempotency_key)
        if key_row is not None:  # a new key (the common case) has no row to judge nor to delete
            original = _replay_of(conn, account, key_row, rhash, now)
            if original is not None:
                return original, False
            # expired (or its message is gone): the key starts over
            conn.execute("DELETE FROM idempotency_keys WHERE account = ? AND key = ?", (account, idempotency_key))
    _take_place(conn, account, max_outbox)
    # RETURNING: the row as stored (defaults and seq included) without reading it again; nothing later in this
    # function changes it.
    written = conn.execute(
        "INSERT INTO messages (account, id, wa_id, direction, phone_number, body, status, expires_at,"
        " idempotency_key, request_hash, created_at, queued_at, next_attempt_at, wait_reason, media_kind,"
        " media_sha256, media_mimetype, media_size, media_filename, media_ptt, action, content, target_id, reply_to)"
        " VALUES (?, ?, ?, 'out', ?, ?, 'queued', ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (*values[:9], now, *values[9:]),  # created_at and queued_at
    ).fetchone()
    row = dict(written)
    chat_index.outbound(conn, account, phone_number, message_id, action, now)  # its chat
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        # The instance serving the account hears of it when this commits (service/cluster/pg_notify.py).
        conn.execute("SELECT pg_notify('wa_outbox', ?)", (f"{account}\t{phone_number}",))
    if idempotency_key is not None:
        conn.execute(
            "INSERT INTO idempotency_keys (account, key, message_id, request_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            (account, idempotency_key, message_id, rhash, now),
        )
    return row, True


def _take_place(conn: sqlite3.Connection, account: str, max_outbox: int) -> None:
    """One more waiting message for ``account``, or OutboxFull: one row read and written, whatever the
    backlog (``outbox_depth``, kept by accept, advance and fail)."""
    if conn.execute("UPDATE outbox_depth SET waiting = waiting + 1 WHERE account = ? AND waiting < ?",
                    (account, max_outbox)).rowcount:
        return
    depth_row = conn.execute("SELECT 1 FROM outbox_depth WHERE account = ?", (account,)).fetchone()
    if depth_row is not None or max_outbox < 1:
        raise OutboxFull()
    conn.execute("INSERT INTO outbox_depth (account, waiting) VALUES (?, 1)", (account,))


def _left_queue(conn: sqlite3.Connection, account: str) -> None:
    """A waiting message became sent, delivered, read or failed."""
    conn.execute("UPDATE outbox_depth SET waiting = waiting - 1 WHERE account = ? AND waiting > 0", (account,))


# --- reading -----------------------------------------------------------------------------------

def get(conn: sqlite3.Connection, account: str, message_id: str) -> dict[str, Any] | None:
    return _row(conn.execute("SELECT * FROM messages WHERE account = ? AND id = ?", (account, message_id)).fetchone())


def by_wa_id(conn: sqlite3.Connection, account: str, wa_id: str) -> dict[str, Any] | None:
    return _row(conn.execute("SELECT * FROM messages WHERE account = ? AND wa_id = ?", (account, wa_id)).fetchone())


def list_messages(conn: sqlite3.Connection, account: str, *, direction: str = "out", status: str | None = None,
                  phone_number: str | None = None, limit: int = 50,
                  before_seq: int | None = None) -> list[dict[str, Any]]:
    """Newest first; ``before_seq`` continues after the last row of the previous page."""
    filters = {"account": account, "direction": direction, "status": status, "phone_number": phone_number}
    return newest_first(conn, "SELECT * FROM messages", filters, limit=limit, before_seq=before_seq)


def pending_count(conn: sqlite3.Connection, account: str) -> int:
    """Counted, not read from ``outbox_depth``: the tests hold one against the other."""
    return int(conn.execute(
        "SELECT COUNT(*) FROM messages WHERE account = ? AND status IN ('queued', 'sending')", (account,)
    ).fetchone()[0])


def depth(conn: sqlite3.Connection, account: str) -> int:
    row = conn.execute("SELECT waiting FROM outbox_depth WHERE account = ?", (account,)).fetchone()
    return 0 if row is None else row[0]


def heads(conn: sqlite3.Connection, account: str) -> list[dict[str, Any]]:
    """Per recipient, its oldest message still waiting: only it may go (order per recipient)."""
    return [dict(r) for r in conn.execute(
        "SELECT m.* FROM messages m JOIN ("
        "  SELECT phone_number, MIN(seq) AS seq FROM messages"
        "  WHERE account = ? AND direction = 'out' AND status IN ('queued', 'sending') GROUP BY phone_number"
        ") h ON m.seq = h.seq ORDER BY m.next_attempt_at, m.seq",
        (account,),
    )]


# --- dispatch bookkeeping ----------------------------------------------------------------------

def recover_sending(conn: sqlite3.Connection, now: float, account: str | None = None) -> int:
    """At start (of the account's dispatcher): messages that were being sent when the gateway stopped, or
    when the account's former owner lost it, go back to the queue (resent with the same WhatsApp id, so
    the recipient still sees one). ``account`` None: every account's."""
    where, args = ("status = 'sending'", [now]) if account is None else \
        ("account = ? AND status = 'sending'", [now, account])
    cur = conn.execute(
        "UPDATE messages SET status = 'queued', wait_reason = 'resend_after_restart', next_attempt_at = ?"
        f" WHERE {where}", args,
    )
    return cur.rowcount


def requeue_interrupted(conn: sqlite3.Connection, account: str, message_ids: list[str], now: float) -> list[str]:
    """At a graceful stop: sends cut off at the drain's deadline go back to the queue, as ``recover_sending``
    does at start after a crash (resent with the same WhatsApp id). Returns those that were ``sending``."""
    back = []
    for message_id in message_ids:
        cur = conn.execute(
            "UPDATE messages SET status = 'queued', wait_reason = 'resend_after_restart', next_attempt_at = ?"
            " WHERE account = ? AND id = ? AND status = 'sending'", (now, account, message_id),
        )
        if cur.rowcount:
            back.append(message_id)
    return back


def mark_sending(conn: sqlite3.Connection, message_id: str, now: float, first_contact: bool) -> dict[str, Any] | None:
    """queued -> sending (one attempt spent); None if it is no longer queued (cancelled, receipted)."""
    cur = conn.execute(
        "UPDATE messages SET status = 'sending', sending_at = ?, attempts = attempts + 1, wait_reason = NULL,"
        " first_contact = ? WHERE id = ? AND status = 'queued'",
        (now, int(first_contact), message_id),
    )
    if cur.rowcount != 1:
        return None
    return _row(conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone())


def mark_sending_run(conn: sqlite3.Connection, message_ids: list[str], now: float,
                     first_contact: bool, fence: tuple[str, str, int] | None = None) -> list[dict[str, Any]]:
    """``mark_sending`` for a recipient's next messages, in order, in one transaction: stops at the first
    that is no longer queued (cancelled or receipted meanwhile), so the run sent never has a gap.
    ``fence`` (account, instance, generation): in a cluster, only while this instance holds the account's
    lease at that generation (leases.NotOwner otherwise; nothing is marked)."""
    if fence is not None:
        leases.check(conn, *fence)
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        # Claimed with FOR UPDATE SKIP LOCKED: a row another transaction holds (a cancel, a receipt being
        # stored) ends the run here instead of making the dispatcher wait on it.
        free = {r[0] for r in conn.execute(
            "SELECT id FROM messages WHERE id = ANY(?) AND status = 'queued' FOR UPDATE SKIP LOCKED",
            (list(message_ids),))}
        message_ids = list(message_ids)
        for k, message_id in enumerate(message_ids):
            if message_id not in free:
                message_ids = message_ids[:k]
                break
    rows = []
    for message_id in message_ids:
        row = mark_sending(conn, message_id, now, first_contact)
        if row is None:
            break
        rows.append(row)
    return rows


def next_queued(conn: sqlite3.Connection, account: str, phone_number: str, after_seq: int,
                limit: int) -> list[dict[str, Any]]:
    """The recipient's waiting messages after ``after_seq``, oldest first (the rest of a send run)."""
    return [dict(r) for r in conn.execute(
        "SELECT * FROM messages WHERE account = ? AND phone_number = ? AND seq > ?"
        " AND status IN ('queued', 'sending') ORDER BY seq LIMIT ?", (account, phone_number, after_seq, limit),
    )]


def advance_run(conn: sqlite3.Connection, account: str, message_ids: list[str], status: str,
                now: float) -> list[tuple[dict[str, Any] | None, tuple[str, ...]]]:
    """``advance`` for several messages in one transaction (the worker took a run of them)."""
    return [advance(conn, account, message_id, status, now) for message_id in message_ids]


def set_status(conn: sqlite3.Connection, account: str, message_id: str | None, status: str, now: float, *,
               wa_id: str | None = None) -> dict[str, Any] | None:
    """Move a message forward to ``status`` (sent, delivered, read), filling every skipped step's time.
    Never backwards; a receipt wins over ``failed`` (the recipient has it, whatever we believed)."""
    return advance(conn, account, message_id, status, now, wa_id=wa_id)[0]


def advance(conn: sqlite3.Connection, account: str, message_id: str | None, status: str, now: float, *,
            wa_id: str | None = None) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """``set_status``, and the steps (sent, delivered, read) whose time this call filled: each step is
    reached once per message, here and nowhere else, so the latency histograms (service/http/metrics.py)
    observe each message once per step, whichever path (the dispatcher's ack, a receipt) got there first."""
    row = get(conn, account, message_id) if message_id else by_wa_id(conn, account, wa_id or "")
    if row is None or status not in RANK:
        return None, ()
    current = row["status"]
    if current != "failed" and RANK[current] >= RANK[status]:
        return None, ()
    reached = tuple(step for step in ("sent", "delivered", "read")
                    if RANK[step] <= RANK[status] and row[STEP_COLUMN[step]] is None)
    sets = ["status = ?", "reason = NULL", "wait_reason = NULL"]
    args: list[Any] = [status]
    for step in ("sent", "delivered", "read"):
        if RANK[step] <= RANK[status]:
            col = STEP_COLUMN[step]
            sets.append(f"{col} = COALESCE({col}, ?)")
            args.append(now)
    if current == "failed":
        sets.append("failed_at = NULL")
    conn.execute(f"UPDATE messages SET {', '.join(sets)} WHERE seq = ?", (*args, row["seq"]))
    if current in PENDING:
        _left_queue(conn, row["account"])
    updated = _written(conn, account, row["id"])
    status_event(conn, updated, now)
    return updated, reached


def requeue(conn: sqlite3.Connection, message_id: str, *, next_attempt_at: float, wait_reason: str,
            last_error: str | None, refund_attempt: bool) -> dict[str, Any] | None:
    """sending -> queued for a later try (a transient failure, or no connection: then no attempt is spent)."""
    conn.execute(
        "UPDATE messages SET status = 'queued', next_attempt_at = ?, wait_reason = ?, last_error = ?,"
        " attempts = attempts - ? WHERE id = ? AND status = 'sending'",
        (next_attempt_at, wait_reason, last_error, 1 if refund_attempt else 0, message_id),
    )
    return _row(conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone())


def hold(conn: sqlite3.Connection, message_id: str, *, next_attempt_at: float, wait_reason: str | None) -> None:
    """A queued message must wait (the governor, no connection): the reason shows on the message."""
    conn.execute(
        "UPDATE messages SET next_attempt_at = ?, wait_reason = ? WHERE id = ? AND status = 'queued'",
        (next_attempt_at, wait_reason, message_id),
    )


def fail(conn: sqlite3.Connection, message_id: str, reason: str, now: float, *,
         last_error: str | None = None, from_status: tuple[str, ...] = PENDING) -> dict[str, Any] | None:
    marks = ",".join("?" * len(from_status))
    cur = conn.execute(
        f"UPDATE messages SET status = 'failed', reason = ?, failed_at = ?, wait_reason = NULL,"
        f" last_error = COALESCE(?, last_error) WHERE id = ? AND status IN ({marks})",
        (reason, now, last_error, message_id, *from_status),
    )
    if cur.rowcount != 1:
        return None
    row = _row(conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone())
    assert row is not None  # updated just now, in this transaction
    _left_queue(conn, row["account"])  # from_status is always a subset of PENDING
    status_event(conn, row, now)
    return row


def cancel(conn: sqlite3.Connection, account: str, message_id: str, now: float) -> dict[str, Any] | None:
    """queued -> failed(cancelled); None for an unknown id; NotCancellable once it left the queue."""
    row = get(conn, account, message_id)
    if row is None:
        return None
    if row["status"] == "failed" and row["reason"] == "cancelled":
        return row  # cancelling twice is fine
    if row["status"] != "queued":
        raise NotCancellable(row["status"])
    return fail(conn, message_id, "cancelled", now, from_status=("queued",))


def expire(conn: sqlite3.Connection, account: str, now: float) -> list[str]:
    """Queued messages past their TTL fail with ``expired``; returns their ids."""
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM messages WHERE account = ? AND status = 'queued' AND expires_at <= ?", (account, now)
    )]
    for message_id in ids:
        fail(conn, message_id, "expired", now, from_status=("queued",))
    return ids


def flag_undelivered(conn: sqlite3.Connection, account: str, sent_before: float, now: float) -> list[dict[str, Any]]:
    """Sent messages still without a delivery receipt long after the server took them get the reason
    ``no_delivery_receipt`` (the contact's phone may be off, or could not decrypt them and its retries were
    not answered), with a ``message.status`` event saying so; a receipt that still comes clears it (advance).
    Returns the flagged rows."""
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM messages WHERE account = ? AND status = 'sent' AND sent_at < ? AND reason IS NULL"
        " AND (action IS NULL OR action NOT IN ('read', 'presence'))",  # no receipt ever comes for those
        (account, sent_before),
    )]
    rows = []
    for message_id in ids:
        conn.execute("UPDATE messages SET reason = 'no_delivery_receipt' WHERE id = ?", (message_id,))
        row = _written(conn, account, message_id)
        status_event(conn, row, now)
        rows.append(row)
    return rows


def first_contact_sends(conn: sqlite3.Connection, account: str, since: float) -> list[float]:
    """When the first messages to unknown numbers went, for the governor's daily budget after a restart."""
    return [r[0] for r in conn.execute(
        "SELECT sending_at FROM messages WHERE account = ? AND first_contact = 1 AND sending_at >= ?",
        (account, since),
    )]


def status_event(conn: sqlite3.Connection, row: dict[str, Any], now: float) -> None:
    """A ``message.status`` event in the same transaction as the change it reports."""
    group = is_group(row["phone_number"])
    data = {
        "id": row["id"], "whatsapp_id": row["wa_id"], "phone_number": None if group else row["phone_number"],
        "status": row["status"], "reason": row["reason"], **({"group_id": row["phone_number"]} if group else {}),
    }
    event_log.append(conn, row["account"], "message.status", data, now, subject=row["phone_number"])
