"""The chats routes' statements stay index lookups (issue 27: fast at a million messages). Each route's store
function runs on a store of 2,000 messages built like bench/chats.py's (bench/chats_build.py); every statement it
ran is EXPLAINed on SQLite: none may walk a message table by ``account`` alone (what a page did before migration
021: every message of the account, per page), nor scan one. The message search is left out: a substring needs a
walk of the account's messages (measured in docs/benchmarks.md, not held here).
"""

from __future__ import annotations

import re

import pytest

from bench import chats, chats_build
from service.store import chat_index
from service.store.db import Database

MESSAGE_TABLES = ("messages", "inbound_messages", "history_messages", "chat_messages")
# "SEARCH <table or alias> USING [COVERING ]INDEX <name> (account=?)": the account's whole range of that index.
ACCOUNT_ONLY = re.compile(r"^SEARCH (\w+) USING (?:COVERING )?INDEX \w+ \(account=\?\)$")
ALIASES = {"cm": "chat_messages", "m": "messages", "i": "inbound_messages", "h": "history_messages"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    db = Database(tmp_path_factory.mktemp("chats") / "gateway.db", synchronous="OFF").open()
    chats_build.build(db, 2000, progress=lambda _line: None)
    target = chats_build.busiest(db)
    try:
        yield chats.explain(db, target)
    finally:
        db.close()


def _walks(plan_line: str) -> str | None:
    """The message table a plan line walks whole (per account, or all of it), or None."""
    match = ACCOUNT_ONLY.match(plan_line)
    table = ALIASES.get(match.group(1), match.group(1)) if match else None
    if table in MESSAGE_TABLES:
        return table
    scan = re.match(r"^SCAN (\w+)", plan_line)
    table = ALIASES.get(scan.group(1), scan.group(1)) if scan else None
    return table if table in MESSAGE_TABLES else None


@pytest.mark.parametrize("route", [r for r in chats.INDEXED if r != "search_hit"])
def test_route_statements_are_lookups(built, route):
    statements = built[route]
    assert statements, f"{route}: its store function ran no SELECT"
    walked = [(s["sql"], line) for s in statements for line in s["plan"] if _walks(line)]
    assert not walked, f"{route} walks a message table: {walked}"


def test_fill_sees_many_ids(built):
    """The guard above means something only if a page fills many rows from one table (five ids or more is where
    SQLite preferred the account's whole range)."""
    fills = [s["sql"] for s in built["messages_busy"] if re.search(r"FROM (messages|inbound_messages) WHERE", s["sql"])]
    assert any(s.count("?") >= 6 for s in fills), fills


@pytest.mark.parametrize("route", ["read_nothing_unread", "read_unread"])
def test_newest_unread_walks_unread_messages_only(built, route):
    """``POST /chats/{chat}/read`` finds the chat's newest unread message in the partial index of unread messages
    ordered by time (migration 022), not by walking the chat's messages newest first until one is unread (every
    message of a chat with nothing unread)."""
    plan = [line for s in built[route] for line in s["plan"]]
    assert any("INDEX chat_messages_unread (account=? AND chat=?)" in line for line in plan), plan
    assert not any("chat_messages_chat" in line for line in plan), plan


def test_marking_messages_read_probes_them_by_id(tmp_path):
    """A read (ours or the phone's) marks its messages read by their ids, one probe each, not by walking the partial
    index of every unread message of the account (176 ms with 15,818 unread, measured by bench/chats.py). On a store
    without statistics, as SQLite plans before any ANALYZE, with five ids or more."""
    db = Database(tmp_path / "gateway.db", synchronous="OFF").open()
    try:
        def run(conn):
            ids = [f"M{n}" for n in range(8)]
            for n, message_id in enumerate(ids):
                conn.execute("INSERT INTO chat_messages (account, chat, source, message_id, at, unread)"
                             " VALUES (?, '+15550001111', 'in', ?, ?, 1)", (chats.ACCOUNT, message_id, float(n)))
            recorder = chats.Recorder(conn)
            chat_index.mark_read(recorder, chats.ACCOUNT, ids)
            return [(sql, chats._explain_one(conn, sql, args)) for sql, args in recorder.statements
                    if "message_id IN" in sql]
        plans = db.call(run)
    finally:
        db.close()
    assert plans
    for sql, plan in plans:
        assert any("chat_messages_message (account=? AND message_id=?)" in line for line in plan), (sql, plan)
