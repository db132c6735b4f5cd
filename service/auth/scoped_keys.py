"""Keys scoped to one account: made here, stored hashed (service/store/accounts.py), checked by the key
middleware from an in-memory table so a request needs no database round trip.

A key is ``wak_`` + 43 URL-safe characters (256 random bits). Only its SHA-256 (hex) is stored, with
its first 12 characters (``wak_`` + 8) as a prefix to recognise it in a listing; the value is shown
once, in the answer to ``POST /accounts/{account}/keys``, and never logged. A hash lookup needs no
constant-time compare: the table is keyed by the digest of what was presented, so timing can tell an
attacker at most something about digests, never about a key.

The table is loaded on first use and dropped by ``invalidate()``, which every change to the keys or
to the registry must call (create, revoke, delete an account). There is one gateway process, so an
in-process invalidation is all it takes; a load that raced with an invalidation is thrown away.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from concurrent.futures import Future
from dataclasses import dataclass

import structlog

from service.store import accounts as store
from service.store.db import Database

log = structlog.get_logger("gateway.keys")

KEY_PREFIX = "wak_"
PREFIX_CHARS = len(KEY_PREFIX) + 8
TOUCH_EVERY = 60.0  # last_used_at is written at most this often per key


@dataclass(frozen=True, slots=True)
class ScopedKey:
    id: str
    account: str


def new_key() -> tuple[str, str, str]:
    """(key, sha256 hex, prefix) of a fresh key."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)  # ASCII: hash_key's digest, never its None
    return key, hashlib.sha256(key.encode("ascii")).hexdigest(), key[:PREFIX_CHARS]


def hash_key(key: str) -> str | None:
    """SHA-256 hex of a presented key; None when it is no ASCII (then it is no key of ours)."""
    try:
        return hashlib.sha256(key.encode("ascii")).hexdigest()
    except UnicodeEncodeError:
        return None


class ScopedKeys:
    """digest -> (id, account) of every key that authenticates now."""

    def __init__(self, touch_every: float = TOUCH_EVERY, max_age: float | None = None):
        self.touch_every = touch_every
        # In a cluster another instance may change the keys: its NOTIFY invalidates the table here
        # (service/cluster/pg_notify.py); ``max_age`` bounds how stale it can be if a notification was missed.
        self.max_age = max_age
        self._loaded_at = 0.0
        self.loads = 0  # table loads from the database (tests)
        self._table: dict[str, ScopedKey] | None = None
        self._generation = 0
        self._touched: dict[str, float] = {}  # key id -> when last_used_at was last written

    def invalidate(self) -> None:
        self._generation += 1
        self._table = None

    async def _load(self, db: Database) -> dict[str, ScopedKey]:
        while self._table is None:
            generation = self._generation
            rows = await db.run(store.active_keys)
            self.loads += 1
            if generation == self._generation:  # else a change landed meanwhile: read again
                self._table = {digest: ScopedKey(key_id, account) for digest, key_id, account in rows}
                self._loaded_at = time.monotonic()
        return self._table

    async def lookup(self, db: Database, presented: list[str]) -> ScopedKey | None:
        """The first presented value that is a live scoped key."""
        if self._table is not None and self.max_age is not None and time.monotonic() - self._loaded_at > self.max_age:
            self.invalidate()
        table = self._table if self._table is not None else await self._load(db)
        for value in presented:
            digest = hash_key(value) if value else None
            if digest is not None and digest in table:
                return table[digest]
        return None

    def touch(self, db: Database, key: ScopedKey, now: float | None = None) -> Future[None] | None:
        """Record a use, at most once per ``touch_every`` per key; fire and forget (the write joins the
        next group commit, the request does not wait for it)."""
        now = time.time() if now is None else now
        last = self._touched.get(key.id)
        if last is not None and now - last < self.touch_every:
            return None
        self._touched[key.id] = now
        future = db.submit(store.touch_key, key.id, now)
        future.add_done_callback(_log_touch_failure)
        return future


def _log_touch_failure(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("account_key.touch_failed", error=type(future.exception()).__name__)
