"""The account registry and the keys scoped to one account: SQL only, no HTTP.

Every function takes the writer thread's connection first (``await db.run(fn, ...)``) and runs in that
thread's transaction, so a check and the write that depends on it (the account limit, "exists") cannot
interleave with another request's.

An account is *registered* when it was created (``POST /accounts``, or ``default`` at start-up);
the same table also holds link state written by ``set_linked`` (below) (``registered`` 0 for a row that
only saw a link event). ``get`` and ``list_accounts`` see registered accounts only.

``delete`` removes every row of an account from every table that has an ``account`` column, found by
introspection, so a table added by a later migration is covered without touching this file. On SQLite
that is ``sqlite_master`` + ``PRAGMA table_info``; on PostgreSQL (``conn.dialect``)
``information_schema.columns WHERE column_name = 'account' AND table_schema = current_schema()``.

Keys: only the SHA-256 (hex) of a scoped key is stored, with a short prefix to recognise it in a
listing; the key itself is shown once, by ``POST /accounts/{account}/keys``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from service.states import DEFAULT_ACCOUNT
from service.store.ids import new_id

DEFAULT_SHARD = 0
ACCOUNT_COLUMN = "account"
_KEY_COLUMNS = "id, account, prefix, label, created_at, revoked_at, last_used_at"


class AccountExists(Exception):
    """The name is already a registered account (the API's 409 ``account_exists``)."""


class TooManyAccounts(Exception):
    """Creating one more would pass ``WA_MAX_ACCOUNTS`` (the API's 409 ``too_many_accounts``)."""

    def __init__(self, limit: int):
        super().__init__(f"at most {limit} accounts")
        self.limit = limit


class DefaultAccount(Exception):
    """``default`` always exists: it cannot be deleted (the API's 409)."""


def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


# --- the registry --------------------------------------------------------------------------------

def _written(row: dict[str, Any] | None) -> dict[str, Any]:
    """A row this transaction has just written: it is there (absent would be the store's bug)."""
    if row is None:
        raise LookupError("a row is missing inside the transaction that wrote it")
    return row


def ensure_default(conn: sqlite3.Connection, now: float) -> dict[str, Any]:
    """Register ``default`` (shard 0 unless one is already set); keeps its link state and created_at."""
    conn.execute(
        "INSERT INTO accounts (account, linked, updated_at, created_at, shard, registered)"
        " VALUES (?, 0, ?, ?, ?, 1)"
        " ON CONFLICT (account) DO UPDATE SET registered = 1,"
        " created_at = COALESCE(accounts.created_at, excluded.created_at),"
        " shard = COALESCE(accounts.shard, excluded.shard)",
        (DEFAULT_ACCOUNT, now, now, DEFAULT_SHARD),
    )
    return _written(get(conn, DEFAULT_ACCOUNT))


def count(conn: sqlite3.Connection) -> int:
    """Registered accounts, ``default`` included."""
    return int(conn.execute("SELECT COUNT(*) FROM accounts WHERE registered = 1").fetchone()[0])


def create(conn: sqlite3.Connection, name: str, shard: int, now: float, max_accounts: int,
           proxy_url: str | None = None) -> dict[str, Any]:
    """Register ``name`` on ``shard`` (with its own ``proxy_url``: see ``set_proxy``). ``AccountExists`` first
    (so ``default`` is always a 409 account_exists), then ``TooManyAccounts`` when ``max_accounts`` registered
    accounts exist (``default`` counts). A row left by link state alone (registered 0) is taken over."""
    existing = conn.execute("SELECT registered FROM accounts WHERE account = ?", (name,)).fetchone()
    if existing is not None and existing["registered"]:
        raise AccountExists(name)
    if count(conn) >= max_accounts:
        raise TooManyAccounts(max_accounts)
    conn.execute(
        "INSERT INTO accounts (account, linked, updated_at, created_at, shard, registered, proxy_url)"
        " VALUES (?, 0, ?, ?, ?, 1, ?)"
        " ON CONFLICT (account) DO UPDATE SET registered = 1, created_at = excluded.created_at,"
        " shard = excluded.shard, proxy_url = excluded.proxy_url",
        (name, now, now, shard, proxy_url),
    )
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        # Every instance's lease keeper runs a round now: the account is known everywhere at once, and the
        # instance it belongs to takes it (service/cluster/lease_keeper.py, service/cluster/pg_notify.py).
        conn.execute("SELECT pg_notify('wa_leases', ?)", (name,))
    return _written(get(conn, name))


def get(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    """The registered account ``name`` (account, linked, updated_at, created_at, shard, registered)."""
    return _row(conn.execute("SELECT * FROM accounts WHERE account = ? AND registered = 1", (name,)).fetchone())


def list_accounts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every registered account, oldest first (``default`` first when it was made at start-up)."""
    return [dict(r) for r in conn.execute(
        "SELECT * FROM accounts WHERE registered = 1 ORDER BY created_at, account"
    )]


def set_shard(conn: sqlite3.Connection, name: str, shard: int) -> bool:
    """Move a registered account to ``shard``; False when there is no such account."""
    cur = conn.execute("UPDATE accounts SET shard = ? WHERE account = ? AND registered = 1", (shard, name))
    return cur.rowcount > 0


def set_proxy(conn: sqlite3.Connection, name: str, proxy_url: str | None) -> dict[str, Any] | None:
    """The account's own proxy for its WhatsApp connection: a checked URL (service/proxy_url.py), ``direct``
    (none although WA_PROXY_URL is set) or None (WA_PROXY_URL applies). The account, or None when unknown."""
    conn.execute("UPDATE accounts SET proxy_url = ? WHERE account = ? AND registered = 1", (proxy_url, name))
    return get(conn, name)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def account_tables(conn: sqlite3.Connection) -> list[str]:
    """Every table with an ``account`` column, ``accounts`` last (children before the registry, so a
    future foreign key to it is satisfied while deleting)."""
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        found = [r[0] for r in conn.execute(
            "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t"
            " ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'"
            " WHERE c.table_schema = current_schema() AND c.column_name = ? ORDER BY c.table_name",
            (ACCOUNT_COLUMN,),
        )]
        return sorted(found, key=lambda t: t == "accounts")
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        " ORDER BY name"
    )]
    found = [t for t in tables
             if any(col["name"] == ACCOUNT_COLUMN for col in conn.execute(f"PRAGMA table_info({_quote(t)})"))]
    return sorted(found, key=lambda t: t == "accounts")


def delete(conn: sqlite3.Connection, name: str) -> dict[str, int]:
    """Remove every row of ``name`` from every table with an ``account`` column, in this one
    transaction; returns the rows removed per table (all zero: there was no such account).
    ``default`` is refused (``DefaultAccount``)."""
    if name == DEFAULT_ACCOUNT:
        raise DefaultAccount(name)
    removed = {}
    for table in account_tables(conn):
        # The table name comes from the schema, never from input; the account is a parameter.
        cur = conn.execute(f"DELETE FROM {_quote(table)} WHERE {ACCOUNT_COLUMN} = ?", (name,))
        removed[table] = cur.rowcount
    _keys_changed(conn)
    return removed


def _keys_changed(conn: sqlite3.Connection) -> None:
    """In a cluster every instance caches the scoped keys (service/auth/scoped_keys.py): tell them, at commit."""
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        conn.execute("SELECT pg_notify('wa_keys', '')")


# --- scoped keys ---------------------------------------------------------------------------------

def create_key(conn: sqlite3.Connection, account: str, key_hash: str, prefix: str, label: str | None,
               now: float) -> dict[str, Any]:
    """Store a new key's hash; returns its listing entry (no hash)."""
    key_id = "key_" + new_id(now)
    conn.execute(
        "INSERT INTO account_keys (id, account, hash, prefix, label, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (key_id, account, key_hash, prefix, label, now),
    )
    _keys_changed(conn)
    return _written(get_key(conn, account, key_id))


def get_key(conn: sqlite3.Connection, account: str, key_id: str) -> dict[str, Any] | None:
    return _row(conn.execute(
        f"SELECT {_KEY_COLUMNS} FROM account_keys WHERE account = ? AND id = ?", (account, key_id)
    ).fetchone())


def list_keys(conn: sqlite3.Connection, account: str) -> list[dict[str, Any]]:
    """An account's keys, revoked ones included, oldest first; never the hash."""
    return [dict(r) for r in conn.execute(
        f"SELECT {_KEY_COLUMNS} FROM account_keys WHERE account = ? ORDER BY created_at, id", (account,)
    )]


def revoke_key(conn: sqlite3.Connection, account: str, key_id: str, now: float) -> dict[str, Any] | None:
    """Revoke a key of ``account`` (again: no change, the first revoked_at stays); None when unknown."""
    conn.execute(
        "UPDATE account_keys SET revoked_at = ? WHERE account = ? AND id = ? AND revoked_at IS NULL",
        (now, account, key_id),
    )
    _keys_changed(conn)
    return get_key(conn, account, key_id)


def active_keys(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(hash, id, account) of every key that authenticates: not revoked, its account registered."""
    return [(r["hash"], r["id"], r["account"]) for r in conn.execute(
        "SELECT k.hash, k.id, k.account FROM account_keys k"
        " JOIN accounts a ON a.account = k.account AND a.registered = 1"
        " WHERE k.revoked_at IS NULL"
    )]


def touch_key(conn: sqlite3.Connection, key_id: str, now: float) -> None:
    """Record a use (the middleware calls this at most once a minute per key)."""
    conn.execute("UPDATE account_keys SET last_used_at = ? WHERE id = ?", (now, key_id))


# --- the account's link (the gateway's mirror of "this account was paired") ---------------------------

def set_linked(conn: sqlite3.Connection, account: str, linked: bool, now: float) -> None:
    """Linked (paired, seen connected) or not (logged out): the row is made when the link is seen before
    the account is registered (``registered`` 0 until it is)."""
    updated = conn.execute(
        "UPDATE accounts SET linked = ?, updated_at = ? WHERE account = ?", (int(linked), now, account)
    ).rowcount
    if not updated:
        conn.execute("INSERT INTO accounts (account, linked, updated_at) VALUES (?, ?, ?)", (account, int(linked), now))


def is_linked(conn: sqlite3.Connection, account: str) -> bool | None:
    row = conn.execute("SELECT linked FROM accounts WHERE account = ?", (account,)).fetchone()
    return None if row is None else bool(row[0])
