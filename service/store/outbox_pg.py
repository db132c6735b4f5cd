"""``outbox.accept`` on PostgreSQL in one statement: every statement is a round trip to the server there (about
0.1 ms over TCP, more than the statement itself), and an accept was eight of them. SQL only.

The common case, a new message with room in the account's ``outbox_depth`` row, is one data-modifying CTE:
the idempotency key claimed (``ON CONFLICT DO NOTHING``: a key in use claims nothing), the depth row taken
(only when the key was claimed, or there is none), the message inserted (only when the depth row was taken), its
chat index rows, the ``pg_notify`` the serving instance waits for, and the message returned. When it returns no
row no message was written and ``outbox.accept`` goes its
statement-by-statement way, which tells a replay, a reused key, an expired key, a full outbox and an account
without a depth row apart, as on SQLite. The batch's SERIALIZABLE transaction (pg.py) holds for the one statement
as for the eight: a concurrent claim of the same key is a serialization failure and the batch runs again.
"""

from __future__ import annotations

from typing import Any

_INSERT = (
    "WITH k AS ("
    " INSERT INTO idempotency_keys (account, key, message_id, request_hash, created_at)"
    " SELECT $1::text, $7::text, $2::text, $8::text, $9::float8 WHERE $7::text IS NOT NULL"
    " ON CONFLICT (account, key) DO NOTHING RETURNING 1"
    "), d AS ("
    " UPDATE outbox_depth SET waiting = waiting + 1"
    " WHERE account = $1::text AND waiting < $21::bigint AND ($7::text IS NULL OR EXISTS (SELECT 1 FROM k))"
    " RETURNING 1"
    "), m AS ("
    " INSERT INTO messages (account, id, wa_id, direction, phone_number, body, status, expires_at, idempotency_key,"
    " request_hash, created_at, queued_at, next_attempt_at, wait_reason, media_kind, media_sha256, media_mimetype,"
    " media_size, media_filename, media_ptt, action, content, target_id, reply_to)"
    " SELECT $1::text, $2::text, $3::text, 'out', $4::text, $5::text, 'queued', $6::float8, $7::text, $8::text,"
    " $9::float8, $9::float8, 0, $10::text, $11::text, $12::text, $13::text, $14::bigint, $15::text, $16::bigint,"
    " $17::text, $18::text, $19::text, $20::text FROM d"
    " RETURNING *"
    ")"
)
_CHAT = (
    ", cm AS ("
    " INSERT INTO chat_messages (account, chat, source, message_id, at, unread)"
    " SELECT account, phone_number, 'out', id, created_at, 0 FROM m"
    " ON CONFLICT (account, message_id) DO NOTHING RETURNING chat"
    "), c AS ("
    " INSERT INTO chats (account, id, kind, last_source, last_message_id, last_activity_at, unread_count, created_at)"
    " SELECT $1::text, chat, $22::text, 'out', $2::text, $9::float8, 0, $9::float8 FROM cm"
    " ON CONFLICT (account, id) DO UPDATE SET last_source = excluded.last_source,"
    " last_message_id = excluded.last_message_id, last_activity_at = excluded.last_activity_at"
    " WHERE chats.last_activity_at <= excluded.last_activity_at"
    ")"
)
# pg_notify returns nothing: joined laterally so that it runs once per inserted message and adds no column.
_RETURN = " SELECT m.* FROM m, LATERAL (SELECT pg_notify('wa_outbox', $1::text || chr(9) || $4::text)) n"
STATEMENTS = {True: _INSERT + _CHAT + _RETURN, False: _INSERT + _RETURN}


def accept_at_once(conn: Any, values: tuple[Any, ...], *, max_outbox: int, chat_kind: str | None) -> Any:
    """The message row, or None (no message written). ``values``: the 20 columns of ``outbox.accept``'s INSERT in
    its order; ``chat_kind``: the recipient chat's kind when the message belongs to it (chat_index.outbound), or
    None. A key this statement claimed without a message (no depth row yet, or a full outbox) names a message that
    does not exist: ``outbox.accept``'s own way takes such a key as free, as an expired one, and the piece's
    rollback (OutboxFull) takes the claim back with everything else."""
    return conn.execute(STATEMENTS[chat_kind is not None],
                        (*values, max_outbox, *((chat_kind,) if chat_kind is not None else ()))).fetchone()
