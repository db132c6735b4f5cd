"""Webhook deliveries: SQL only (no HTTP, no aiohttp imports).

Each configured endpoint has a cursor into the event log. ``fan_out`` turns the events beyond it into
one ``pending`` delivery each (those the endpoint's filter wants) and moves the cursor in the same
transaction, so a crash neither skips nor doubles an event. ``claim`` hands a worker the deliveries it
may attempt now: per (endpoint, account, subject) only the oldest pending one (a contact's events
arrive in order; a failed one no longer blocks), due, and not in flight. A claim leases the delivery
and counts the attempt; a delivery whose attempt never reported (the gateway died) is attempted again
once its lease ends, or at once after a restart (``reset_leases``): at least once, same webhook-id.

Statuses: ``pending`` -> ``delivered`` | ``failed`` (dead-lettered); ``retry`` puts a failed one back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from service.states import DELIVERY_STATUSES
from service.store import event_log
from service.store.ids import new_id
from service.store.paging import newest_first

STATUSES = DELIVERY_STATUSES
_COLUMNS = ("seq, id, endpoint, event_seq, event_id, event_type, account, subject, payload, status, attempts, "
            "next_attempt_at, lease_until, expires_at, last_attempt_at, last_status_code, last_error, "
            "created_at, delivered_at, failed_at, updated_at")


class NotFailed(Exception):
    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


def register(conn: sqlite3.Connection, urls: tuple[str, ...] | list[str], now: float) -> dict[str, int]:
    """Mark exactly ``urls`` as the active global endpoints (WA_WEBHOOK_URL); returns each one's cursor.

    A new endpoint, or one that was not configured in the previous run, starts at the end of the log
    (it gets the events from now on, not the history); one that stays configured keeps its cursor.
    A global endpoint's id is its URL. Account endpoints (``add_account_endpoint``) are left alone.
    """
    was_active = {r["id"] for r in conn.execute(
        "SELECT id FROM webhook_endpoints WHERE active = 1 AND account IS NULL")}
    conn.execute("UPDATE webhook_endpoints SET active = 0, updated_at = ? WHERE active = 1 AND account IS NULL",
                 (now,))
    head = event_log.last_seq(conn)
    cursors = {}
    for url in urls:
        row = conn.execute("SELECT cursor FROM webhook_endpoints WHERE id = ? AND account IS NULL", (url,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO webhook_endpoints (id, url, account, cursor, active, created_at, updated_at) "
                         "VALUES (?, ?, NULL, ?, 1, ?, ?)", (url, url, head, now, now))
            cursors[url] = head
        elif url in was_active:
            conn.execute("UPDATE webhook_endpoints SET active = 1, updated_at = ? WHERE id = ?", (now, url))
            cursors[url] = row["cursor"]
        else:
            conn.execute("UPDATE webhook_endpoints SET active = 1, cursor = ?, updated_at = ? WHERE id = ?",
                         (head, now, url))
            cursors[url] = head
    return cursors


def min_cursor(conn: sqlite3.Connection) -> int | None:
    """The oldest event seq an active endpoint still has to read past (pruning the log must keep it)."""
    cursor: int | None = conn.execute("SELECT MIN(cursor) FROM webhook_endpoints WHERE active = 1").fetchone()[0]
    return cursor


def endpoints(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every endpoint ever configured (global and account ones, removed ones too)."""
    return [dict(r) for r in conn.execute(
        "SELECT id, url, account, events, cursor, active, created_at, deleted_at FROM webhook_endpoints "
        "ORDER BY account IS NOT NULL, account, created_at, id")]


# --- endpoints of one account (managed by API) ----------------------------------------------------

class EndpointExists(Exception):
    """The URL is already configured for this account (the API's 409 ``webhook_exists``)."""


class NoAccount(Exception):
    """The account is not (or no longer) registered."""


class TooManyEndpoints(Exception):
    """One more would pass ``WA_WEBHOOK_MAX_PER_ACCOUNT`` (the API's 409 ``too_many_webhooks``)."""

    def __init__(self, limit: int):
        super().__init__(f"at most {limit} webhooks per account")
        self.limit = limit


_ENDPOINT_COLUMNS = "id, url, account, events, cursor, active, created_at, updated_at, deleted_at"


def account_endpoints(conn: sqlite3.Connection, account: str | None = None) -> list[dict[str, Any]]:
    """The account endpoints not deleted (of ``account``, or of every account), oldest first."""
    sql = f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account IS NOT NULL AND deleted_at IS NULL"
    args: list[Any] = []
    if account is not None:
        sql += " AND account = ?"
        args.append(account)
    return [dict(r) for r in conn.execute(sql + " ORDER BY created_at, id", args)]


def add_account_endpoint(conn: sqlite3.Connection, account: str, url: str, types: tuple[str, ...], now: float,
                         max_per_account: int, secret: str | None = None) -> dict[str, Any]:
    """A new endpoint for ``account`` only, starting at the current end of the log (no history), signed with
    its own ``secret`` (never returned by a listing). ``EndpointExists`` when the URL is configured for the
    account already, ``TooManyEndpoints`` at the limit; both checked in this transaction."""
    if conn.execute("SELECT 1 FROM accounts WHERE account = ? AND registered = 1", (account,)).fetchone() is None:
        raise NoAccount(account)  # deleted meanwhile: no endpoint may outlive its account
    live = account_endpoints(conn, account)
    if any(r["url"] == url for r in live):
        raise EndpointExists(url)
    if len(live) >= max_per_account:
        raise TooManyEndpoints(max_per_account)
    endpoint_id = "whe_" + new_id(now)
    conn.execute("INSERT INTO webhook_endpoints (id, url, account, events, cursor, active, created_at, updated_at, "
                 "secret) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
                 (endpoint_id, url, account, ",".join(types), event_log.last_seq(conn), now, now, secret))
    row = get_endpoint(conn, endpoint_id)
    assert row is not None  # inserted just above, in this transaction
    return row


# --- an account endpoint's signing secret (read only to sign; shown once by the API) ---------------------

def signing_secrets(conn: sqlite3.Connection, account: str | None = None) -> dict[str, dict[str, Any]]:
    """Endpoint id -> {secret, secret_previous, secret_previous_until} of the live account endpoints."""
    sql = ("SELECT id, secret, secret_previous, secret_previous_until FROM webhook_endpoints "
           "WHERE account IS NOT NULL AND deleted_at IS NULL")
    args: list[Any] = []
    if account is not None:
        sql += " AND account = ?"
        args.append(account)
    return {r["id"]: dict(r) for r in conn.execute(sql, args)}


def fill_missing_secrets(conn: sqlite3.Connection, make: Callable[[], str], now: float) -> int:
    """Give each account endpoint without a secret (made before secrets were per endpoint) one of its own."""
    ids = [r["id"] for r in conn.execute(
        "SELECT id FROM webhook_endpoints WHERE account IS NOT NULL AND secret IS NULL")]
    for endpoint_id in ids:
        conn.execute("UPDATE webhook_endpoints SET secret = ?, updated_at = ? WHERE id = ? AND secret IS NULL",
                     (make(), now, endpoint_id))
    return len(ids)


def rotate_secret(conn: sqlite3.Connection, account: str, endpoint_id: str, new: str, now: float,
                  overlap: float) -> dict[str, Any] | None:
    """``new`` becomes the endpoint's secret; the one it replaces signs beside it until ``now + overlap``
    (not at all when 0). None when ``account`` has no such live endpoint."""
    previous = "secret" if overlap > 0 else "NULL"
    cur = conn.execute(
        f"UPDATE webhook_endpoints SET secret_previous = {previous}, secret_previous_until = ?, secret = ?, "
        "updated_at = ? WHERE id = ? AND account = ? AND deleted_at IS NULL",
        (now + overlap if overlap > 0 else None, new, now, endpoint_id, account))
    return signing_secrets(conn, account).get(endpoint_id) if cur.rowcount else None


def get_endpoint(conn: sqlite3.Connection, endpoint_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?", (endpoint_id,)).fetchone()
    return dict(row) if row is not None else None


def remove_account_endpoint(
    conn: sqlite3.Connection, account: str, endpoint_id: str, now: float
) -> dict[str, Any] | None:
    """Stop an account endpoint: it gets no more deliveries and its pending ones are not attempted (they
    stay listed, like a URL removed from WA_WEBHOOK_URL). None when the account has no such endpoint."""
    cur = conn.execute("UPDATE webhook_endpoints SET active = 0, deleted_at = ?, updated_at = ? "
                       "WHERE id = ? AND account = ? AND deleted_at IS NULL", (now, now, endpoint_id, account))
    return get_endpoint(conn, endpoint_id) if cur.rowcount else None


def fan_out(conn: sqlite3.Connection, url: str, types: tuple[str, ...], now: float, max_age: float,
            limit: int = 500, account: str | None = None) -> tuple[int, bool]:
    """Create the deliveries of the next events for the endpoint ``url`` (its id: the URL of a global
    endpoint, whe_... of an account's), only ``account``'s events when given; (created, more may be waiting).
    An endpoint no longer stored (its account was deleted) creates nothing.

    Runs on the database's one writer, so no event can commit under it: when fewer than ``limit``
    match, every event up to the current end of the log has been seen and the cursor moves there.
    (On PostgreSQL, where sequence values commit out of order, ``event_log.append`` draws each seq under a
    lock held to its commit, so the events this reads are a prefix of the log too: store/pg.py.)
    """
    found = conn.execute("SELECT cursor FROM webhook_endpoints WHERE id = ?", (url,)).fetchone()
    if found is None:
        return 0, False
    cursor = found["cursor"]
    rows = event_log.after(conn, cursor, account=account, types=types, limit=limit)
    for ev in rows:
        conn.execute(
            "INSERT INTO webhook_deliveries (id, endpoint, event_seq, event_id, event_type, account, subject, "
            "payload, status, attempts, next_attempt_at, expires_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?) ON CONFLICT (endpoint, event_seq) DO NOTHING",
            ("whd_" + new_id(now), url, ev["seq"], ev["id"], ev["type"], ev["account"], ev["subject"],
             ev["payload"], now, now + max_age, now, now),
        )
    more = len(rows) == limit
    new_cursor = rows[-1]["seq"] if more else max(event_log.last_seq(conn), cursor)
    if new_cursor != cursor:
        conn.execute("UPDATE webhook_endpoints SET cursor = ?, updated_at = ? WHERE id = ?", (new_cursor, now, url))
    return len(rows), more


def _heads(conn: sqlite3.Connection, url: str) -> list[dict[str, Any]]:
    """The oldest pending delivery of each (account, subject) of ``url``; a NULL subject is one group."""
    return [dict(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM webhook_deliveries WHERE seq IN ("
        " SELECT MIN(seq) FROM webhook_deliveries WHERE endpoint = ? AND status = 'pending'"
        " GROUP BY account, subject) ORDER BY next_attempt_at, seq", (url,))]


def claim(
    conn: sqlite3.Connection, url: str, now: float, limit: int, lease: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(deliveries to attempt now, deliveries dead-lettered now because they outlived ``expires_at``).

    Each claimed delivery counts one attempt and is leased for ``lease`` seconds. One that was
    attempted before is attempted once more even past its age (``decide`` then dead-letters it); one
    never attempted that waited behind an older delivery of its contact past its age fails here.
    """
    claimed: list[dict[str, Any]] = []
    expired: list[dict[str, Any]] = []
    for _ in range(100):  # an expired head makes way for the next of its subject: look again
        expired_now = False
        for row in _heads(conn, url):
            if len(claimed) >= limit:
                break
            if row["lease_until"] is not None and row["lease_until"] > now:
                continue
            if row["expires_at"] <= now and row["attempts"] == 0:  # waited its whole age behind another
                expired.append(fail(conn, row["seq"], now, row["last_status_code"],
                                    _aged(row["last_error"])))
                expired_now = True
                continue
            if row["next_attempt_at"] > now:
                continue
            conn.execute("UPDATE webhook_deliveries SET attempts = attempts + 1, lease_until = ?, "
                         "last_attempt_at = ?, updated_at = ? WHERE seq = ?", (now + lease, now, now, row["seq"]))
            row.update(attempts=row["attempts"] + 1, lease_until=now + lease, last_attempt_at=now, updated_at=now)
            claimed.append(row)
        if not expired_now or len(claimed) >= limit:
            break
    return claimed, expired


def _aged(last_error: str | None) -> str:
    return "max_age" + (f" (last: {last_error})" if last_error else "")


def delivered(conn: sqlite3.Connection, seq: int, now: float, status_code: int) -> dict[str, Any]:
    conn.execute("UPDATE webhook_deliveries SET status = 'delivered', delivered_at = ?, lease_until = NULL, "
                 "last_status_code = ?, last_error = NULL, updated_at = ? WHERE seq = ? AND status = 'pending'",
                 (now, status_code, now, seq))
    return _by_seq(conn, seq)


def retry_later(conn: sqlite3.Connection, seq: int, now: float, status_code: int | None, error: str,
                next_attempt_at: float) -> dict[str, Any]:
    conn.execute("UPDATE webhook_deliveries SET next_attempt_at = ?, lease_until = NULL, last_status_code = ?, "
                 "last_error = ?, updated_at = ? WHERE seq = ? AND status = 'pending'",
                 (next_attempt_at, status_code, error, now, seq))
    return _by_seq(conn, seq)


def fail(conn: sqlite3.Connection, seq: int, now: float, status_code: int | None, error: str) -> dict[str, Any]:
    """Dead-letter a delivery: it is not attempted again unless retried, and no longer blocks its subject."""
    conn.execute("UPDATE webhook_deliveries SET status = 'failed', failed_at = ?, lease_until = NULL, "
                 "last_status_code = ?, last_error = ?, updated_at = ? WHERE seq = ? AND status = 'pending'",
                 (now, status_code, error, now, seq))
    return _by_seq(conn, seq)


def reset_leases(conn: sqlite3.Connection) -> int:
    """At start-up: attempts that were in flight when the gateway stopped are due again at once."""
    return conn.execute("UPDATE webhook_deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL").rowcount


def release(conn: sqlite3.Connection, seqs: list[int], now: float) -> int:
    """At a graceful stop: attempts the drain cut off stay pending and are due again at once (each stays
    counted: the endpoint may have had it, and the next attempt carries the same webhook-id)."""
    released = 0
    for seq in seqs:
        released += conn.execute("UPDATE webhook_deliveries SET lease_until = NULL, updated_at = ? "
                                 "WHERE seq = ? AND status = 'pending' AND lease_until IS NOT NULL",
                                 (now, seq)).rowcount
    return released


def _by_seq(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
    return dict(conn.execute(f"SELECT {_COLUMNS} FROM webhook_deliveries WHERE seq = ?", (seq,)).fetchone())


_OF_ACCOUNT = "endpoint IN (SELECT id FROM webhook_endpoints WHERE account = ?)"


def get(conn: sqlite3.Connection, delivery_id: str, account: str | None = None) -> dict[str, Any] | None:
    """One delivery; with ``account``, only one to that account's own endpoints."""
    sql, args = f"SELECT {_COLUMNS} FROM webhook_deliveries WHERE id = ?", [delivery_id]
    if account is not None:
        sql += f" AND {_OF_ACCOUNT}"
        args.append(account)
    row = conn.execute(sql, args).fetchone()
    return dict(row) if row is not None else None


def list_deliveries(conn: sqlite3.Connection, *, status: str | None = None, endpoint: str | None = None,
                    limit: int = 50, before_seq: int | None = None, endpoints: list[str] | None = None,
                    account: str | None = None) -> list[dict[str, Any]]:
    """Newest first; ``before_seq`` continues a page. ``endpoints``: to any of these endpoint ids;
    ``account``: to that account's own endpoints only (not the global ones)."""
    if endpoints is None and account is None:
        return newest_first(conn, f"SELECT {_COLUMNS} FROM webhook_deliveries",
                            {"status": status, "endpoint": endpoint}, limit=limit, before_seq=before_seq)
    clauses, args = _delivery_filters(status=status, endpoint=endpoint, endpoints=endpoints, account=account)
    if before_seq is not None:
        clauses.append("seq < ?")
        args.append(before_seq)
    return [dict(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM webhook_deliveries WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?",
        (*args, limit))]


def retry(conn: sqlite3.Connection, delivery_id: str, now: float, max_age: float,
          account: str | None = None) -> dict[str, Any] | None:
    """Put one failed delivery back to pending with its attempts reset; None if unknown (to ``account``'s
    endpoints, when given), NotFailed if not failed."""
    row = get(conn, delivery_id, account)
    if row is None:
        return None
    if row["status"] != "failed":
        raise NotFailed(row["status"])
    _redrive(conn, "id = ?", [delivery_id], now, max_age)
    return get(conn, delivery_id)


def retry_failed(conn: sqlite3.Connection, now: float, max_age: float, endpoint: str | None = None,
                 endpoints: list[str] | None = None, account: str | None = None) -> int:
    """Bulk redrive: every failed delivery (to ``endpoint``, to any of ``endpoints``, to ``account``'s own
    endpoints) back to pending; returns how many."""
    clauses, args = _delivery_filters(status=None, endpoint=endpoint, endpoints=endpoints, account=account)
    return _redrive(conn, " AND ".join(["1 = 1", *clauses]), args, now, max_age)


def _delivery_filters(*, status: str | None, endpoint: str | None, endpoints: list[str] | None,
                      account: str | None) -> tuple[list[str], list[Any]]:
    """WHERE clauses and arguments selecting deliveries by status, endpoint, endpoint list, account."""
    clauses, args = [], []
    for column, value in (("status", status), ("endpoint", endpoint)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if endpoints is not None:
        clauses.append(f"endpoint IN ({','.join('?' * len(endpoints))})" if endpoints else "1 = 0")
        args.extend(endpoints)
    if account is not None:
        clauses.append(_OF_ACCOUNT)
        args.append(account)
    return clauses, args


def _redrive(conn: sqlite3.Connection, where: str, args: list[Any], now: float, max_age: float) -> int:
    return conn.execute(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, lease_until = NULL, "
        f"expires_at = ?, failed_at = NULL, updated_at = ? WHERE status = 'failed' AND {where}",
        [now, now + max_age, now, *args],
    ).rowcount


def summary(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Pending and failed deliveries per endpoint (delivered ones are not counted: they are pruned)."""
    out: dict[str, dict[str, int]] = {}
    for r in conn.execute("SELECT endpoint, status, COUNT(*) AS n FROM webhook_deliveries "
                          "WHERE status IN ('pending', 'failed') GROUP BY endpoint, status"):
        out.setdefault(r["endpoint"], {"pending": 0, "failed": 0})[r["status"]] = r["n"]
    return out


def prune(conn: sqlite3.Connection, delivered_before: float) -> int:
    """Forget deliveries delivered before ``delivered_before`` (failed and pending ones are kept)."""
    return conn.execute("DELETE FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < ?",
                        (delivered_before,)).rowcount
