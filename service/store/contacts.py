"""The contacts an account has heard from: SQL only.

A contact that wrote to the account is a known contact from then on: the governor's budget of first
messages to new contacts (``WA_NEW_CONTACTS_PER_DAY``) does not count sends to it.
"""

from __future__ import annotations

import sqlite3

from service.store.outbox_ids import is_group


def record_inbound(conn: sqlite3.Connection, account: str, phone_number: str, now: float) -> None:
    updated = conn.execute(
        "UPDATE contacts SET last_inbound_at = ? WHERE account = ? AND phone_number = ?", (now, account, phone_number)
    ).rowcount
    if not updated:
        conn.execute(
            "INSERT INTO contacts (account, phone_number, first_inbound_at, last_inbound_at) VALUES (?, ?, ?, ?)",
            (account, phone_number, now, now),
        )


def is_first_contact(conn: sqlite3.Connection, account: str, recipient: str) -> bool:
    """Whether a send to ``recipient`` is a first contact (the governor's budget): a number that never wrote to the
    account. A group is none: its own governor limits apply."""
    return not is_group(recipient) and not is_known_contact(conn, account, recipient)


def is_known_contact(conn: sqlite3.Connection, account: str, phone_number: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM contacts WHERE account = ? AND phone_number = ?", (account, phone_number)
    ).fetchone() is not None
