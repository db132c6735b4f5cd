"""What an accept costs the store, counted in statements (each one a round trip on PostgreSQL), and that the
PostgreSQL accept in one statement (service/store/outbox_pg.py) still does all that the eight did: the key, the
depth row, the chat, and the notification the serving instance waits for. SQLite, or PostgreSQL with
WA_TEST_DATABASE=postgresql."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.store import chat_index, outbox
from tests.helpers import postgres
from tests.helpers.fake_worker import P1, A


class Counting:
    """The connection, with the statements run through it counted."""

    def __init__(self, conn: Any):
        self._conn = conn
        self.statements: list[str] = []

    def execute(self, sql: str, params: Any = ()) -> Any:
        self.statements.append(sql)
        return self._conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def counted_accept(db, key: str | None, text: str = "hi", max_outbox: int = 100):
    def run(conn):
        counting = Counting(conn)
        result = outbox.accept(counting, account=A, phone_number=P1, body=text, idempotency_key=key, now=1000.0,
                               ttl=60.0, max_outbox=max_outbox)
        return result, counting.statements
    return db.call(run)


def test_a_new_message_costs_one_statement_on_postgresql_and_six_on_sqlite(db):
    counted_accept(db, "first")  # the account's depth row is made by its first accept
    (row, created), statements = counted_accept(db, "second", text="hello")
    assert created and row["body"] == "hello" and row["status"] == "queued" and row["idempotency_key"] == "second"
    assert len(statements) == (1 if db.dialect == "postgresql" else 6), statements
    assert db.call(outbox.depth, A) == 2
    assert db.call(chat_index.get, A, P1)["last_message_id"] == row["id"]
    again, created = counted_accept(db, "second", text="hello")[0]
    assert not created and again["id"] == row["id"]
    with pytest.raises(outbox.KeyReused):
        counted_accept(db, "second", text="another")
    (_, created), statements = counted_accept(db, None)
    assert created and len(statements) == (1 if db.dialect == "postgresql" else 4)
    assert db.call(outbox.depth, A) == 3 and db.call(outbox.pending_count, A) == 3


def test_a_full_outbox_leaves_no_key_behind(db):
    counted_accept(db, "a", max_outbox=1)
    with pytest.raises(outbox.OutboxFull):
        counted_accept(db, "b", max_outbox=1)
    assert not db.call(outbox.key_in_use, A, "b", 1000.0)
    (_, created), _ = counted_accept(db, "b", max_outbox=2)
    assert created


@pytest.mark.skipif(not postgres.wanted(), reason="PostgreSQL only: WA_TEST_DATABASE=postgresql")
async def test_the_one_statement_accept_notifies_the_serving_instance(db, tmp_path):
    import asyncpg

    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(postgres._BY_PATH[str(tmp_path / "data" / "gateway.db")])
    try:
        await listener.add_listener("wa_outbox", lambda *args: heard.put_nowait(args[-1]))
        await db.run(lambda conn: outbox.accept(conn, account=A, phone_number=P1, body="x", idempotency_key=None,
                                                now=1000.0, ttl=60.0, max_outbox=10))
        assert await asyncio.wait_for(heard.get(), 5) == f"{A}\t{P1}"
        await db.run(lambda conn: outbox.accept(conn, account=A, phone_number=P1, body="y", idempotency_key="k",
                                                now=1000.0, ttl=60.0, max_outbox=10))
        assert await asyncio.wait_for(heard.get(), 5) == f"{A}\t{P1}"
    finally:
        await listener.close()
