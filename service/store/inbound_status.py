"""Moving outbox messages forward (sent, delivered, read) several at a time: the per-message hot path.

Every message the gateway sends comes back as two or three statuses (the dispatcher's record of the worker's
ack, the worker's ``sent``, the contact's ``delivered`` and ``read``), each stored with its ``message.status``
event. ``outbox.advance`` does one with five statements and two full rows read back; here each is a narrow read
of the steps already filled, one ``UPDATE ... RETURNING *`` and the event, and the queue's depth row is written
once per batch. The semantics are ``outbox.advance``'s exactly (never backwards, a receipt wins over ``failed``,
each step reached once); tests/app/test_event_store.py holds the two side by side.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from service.store import outbox

STEPS = ("sent", "delivered", "read")
_OLD = "SELECT seq, status, sent_at, delivered_at, read_at FROM messages WHERE account = ? AND "
_BY_ID, _BY_WA_ID = _OLD + "id = ?", _OLD + "wa_id = ?"


def _update_sql(status: str, was_failed: bool) -> str:
    sets = ["status = ?", "reason = NULL", "wait_reason = NULL"]
    for step in STEPS:
        if outbox.RANK[step] <= outbox.RANK[status]:
            col = outbox.STEP_COLUMN[step]
            sets.append(f"{col} = COALESCE({col}, ?)")
    if was_failed:
        sets.append("failed_at = NULL")
    return f"UPDATE messages SET {', '.join(sets)} WHERE seq = ? RETURNING *"


# (status, was it failed) -> its UPDATE and how many step times it fills: built once, not per message.
_UPDATES = {(s, f): (_update_sql(s, f), sum(outbox.RANK[t] <= outbox.RANK[s] for t in STEPS))
            for s in STEPS for f in (False, True)}
_FILLED = {"sent": 2, "delivered": 3, "read": 4}  # the narrow row's column of each step


def advance_many(conn: sqlite3.Connection, account: str, moves: Sequence[tuple[str | None, str | None, str]],
                 now: float) -> list[tuple[dict[str, Any] | None, tuple[str, ...]]]:
    """``outbox.advance`` for each (message id, or None and its WhatsApp id; status), in order, in this
    transaction: per move the row it changed (None when it changed nothing) and the steps it filled."""
    results: list[tuple[dict[str, Any] | None, tuple[str, ...]]] = []
    left_queue = 0
    for message_id, wa_id, status in moves:
        old = conn.execute(_BY_ID if message_id else _BY_WA_ID, (account, message_id or wa_id or "")).fetchone()
        if old is None or status not in _FILLED:
            results.append((None, ()))
            continue
        current = old[1]
        if current != "failed" and outbox.RANK[current] >= outbox.RANK[status]:
            results.append((None, ()))
            continue
        reached = tuple(step for step in STEPS
                        if outbox.RANK[step] <= outbox.RANK[status] and old[_FILLED[step]] is None)
        sql, times = _UPDATES[(status, current == "failed")]
        row = dict(conn.execute(sql, (status, *([now] * times), old[0])).fetchone())
        if current in outbox.PENDING:
            left_queue += 1
        outbox.status_event(conn, row, now)
        results.append((row, reached))
    if left_queue:  # as outbox's one-at-a-time ``waiting - 1 WHERE waiting > 0``, for the whole batch
        conn.execute("UPDATE outbox_depth SET waiting = CASE WHEN waiting > ? THEN waiting - ? ELSE 0 END"
                     " WHERE account = ?", (left_queue, left_queue, account))
    return results


def advance_run(conn: sqlite3.Connection, account: str, message_ids: list[str], status: str,
                now: float) -> list[tuple[dict[str, Any] | None, tuple[str, ...]]]:
    """The dispatcher's record of a run the worker took (``outbox.advance_run``'s contract)."""
    return advance_many(conn, account, [(message_id, None, status) for message_id in message_ids], now)
