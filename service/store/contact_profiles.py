"""What an account knows of its contacts (issue 27): push name, the phone's name for it, its LID, whether it is on
WhatsApp. SQL only.

A profile is keyed by the contact's phone number, or by its LID while no phone is known. Learning a LID's phone
(an inbound message naming both, ``contact.updated``, a history sync, a live lookup) folds the LID's profile into
the phone's and merges their chats (chat_index.merge). A field a source does not give is unknown, not cleared: only
the fields given (not None) are written. ``contacts`` (store/contacts.py) keeps its own meaning: who wrote to us.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from service.store import chat_index

FIELDS = ("push_name", "name", "on_whatsapp", "checked_at")


def _row(conn: sqlite3.Connection, account: str, key: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM contact_profiles WHERE account = ? AND key = ?", (account, key)).fetchone()
    return None if row is None else dict(row)


def note(conn: sqlite3.Connection, account: str, phone: str | None, lid: str | None, now: float,
         **given: Any) -> None:
    """What a source says of the contact ``phone`` / ``lid`` (``given``: push_name, name, on_whatsapp, checked_at;
    None is unknown). Both known: the mapping is learned, and the LID's profile and chat merge into the phone's."""
    if phone is None and lid is None:
        return
    if phone is None and lid is not None:
        phone = chat_index.phone_of_lid(conn, account, lid)
    key = phone or lid
    assert key is not None
    values: dict[str, Any] = {k: v for k, v in given.items() if k in FIELDS and v is not None}
    if "on_whatsapp" in values:
        values["on_whatsapp"] = int(bool(values["on_whatsapp"]))
    current = _row(conn, account, key)
    if phone is not None and lid is not None and (current is None or current["lid"] != lid):
        folded = _row(conn, account, lid)
        if folded is not None:
            conn.execute("DELETE FROM contact_profiles WHERE account = ? AND key = ?", (account, lid))
            for field in FIELDS:  # what only the LID's profile knew
                if folded[field] is not None and (current is None or current[field] is None):
                    values.setdefault(field, folded[field])
        chat_index.merge(conn, account, lid, phone, now)
    values |= {"phone_number": phone} if phone is not None else {}
    values |= {"lid": lid} if lid is not None else {}
    if current is None:
        columns = ["account", "key", "updated_at", *values]
        conn.execute(f"INSERT INTO contact_profiles ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     (account, key, now, *values.values()))
        return
    changed = {k: v for k, v in values.items() if current[k] != v}
    if changed:
        sets = ", ".join(f"{k} = ?" for k in changed)
        conn.execute(f"UPDATE contact_profiles SET {sets}, updated_at = ? WHERE account = ? AND key = ?",
                     (*changed.values(), now, account, key))


SELECT = ("SELECT p.*, c.last_activity_at AS last_message_at FROM contact_profiles p"
          " LEFT JOIN chats c ON c.account = p.account AND c.id = p.key")


def get(conn: sqlite3.Connection, account: str, phone: str) -> dict[str, Any] | None:
    """The profile of ``phone`` with its chat's last activity; a number we only wrote to has its chat alone."""
    row = conn.execute(f"{SELECT} WHERE p.account = ? AND p.key = ?", (account, phone)).fetchone()
    if row is not None:
        return dict(row)
    chat = chat_index.get(conn, account, phone)
    if chat is None:
        return None
    return {"key": phone, "phone_number": phone, "lid": chat["lid"], "push_name": None, "name": None,
            "on_whatsapp": None, "checked_at": None, "last_message_at": chat["last_activity_at"]}


def names(conn: sqlite3.Connection, account: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The profiles of ``keys`` (a page of chats), by key."""
    if not keys:
        return {}
    marks = ",".join("?" * len(keys))
    rows = conn.execute(f"SELECT * FROM contact_profiles WHERE account = ? AND key IN ({marks})", (account, *keys))
    return {r["key"]: dict(r) for r in rows}


def like(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere (its own % _ \\ escaped)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_contacts(conn: sqlite3.Connection, account: str, *, limit: int, after: str | None = None,
                  q: str | None = None) -> list[dict[str, Any]]:
    """By key (phone numbers, then LIDs), after ``after`` (the previous page's last key); ``q`` a case-insensitive
    part of a name, push name, phone number or LID."""
    clauses, args = ["p.account = ?"], [account]
    if after is not None:
        clauses.append("p.key > ?")
        args.append(after)
    if q is not None:
        clauses.append("(LOWER(COALESCE(p.name, '')) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(p.push_name, '')) LIKE ?"
                       " ESCAPE '\\' OR p.key LIKE ? ESCAPE '\\')")
        args += [like(q)] * 3
    return [dict(r) for r in conn.execute(f"{SELECT} WHERE {' AND '.join(clauses)} ORDER BY p.key LIMIT ?",
                                          (*args, limit))]
