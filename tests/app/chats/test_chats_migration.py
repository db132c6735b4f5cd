"""Migration 019 on a gateway that stored messages before it (SQLite): its messages are indexed into chats (ours and
the contacts', groups apart, actions left out), each chat's last message is its newest, earlier messages count as
read, and the contacts that wrote get a profile."""

from __future__ import annotations

import shutil

from service.store import chat_reads, contact_profiles
from service.store.db import MIGRATIONS, connect, migrate

GROUP = "120363000000000001@g.us"


def _old_store(tmp_path):
    """A database at migration 018 with a few rows of each kind, as an older gateway left it."""
    old = tmp_path / "old"
    old.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql"))[:18]:
        shutil.copy(path, old / path.name)
    conn = connect(tmp_path / "gateway.db")
    migrate(conn, old)
    out = ("INSERT INTO messages (account, id, wa_id, direction, phone_number, body, status, expires_at, request_hash,"
           " created_at, action) VALUES ('default', ?, ?, 'out', ?, ?, 'sent', 9e9, 'h', ?, ?)")
    conn.execute(out, ("OUT1", "W-OUT1", "+15550002222", "hello", 100.0, None))
    conn.execute(out, ("OUT2", "W-OUT2", "+15550002222", "", 300.0, "reaction"))  # an action: no message of its own
    conn.execute(out, ("OUT3", "W-OUT3", GROUP, "all", 150.0, None))
    inbound = ("INSERT INTO inbound_messages (account, id, wa_id, chat_jid, phone_number, lid, push_name, kind, body,"
               " sent_at, received_at, group_id) VALUES ('default', ?, ?, ?, ?, ?, ?, 'text', ?, ?, ?, ?)")
    conn.execute(inbound, ("IN1", "W-IN1", "15550002222@s.whatsapp.net", "+15550002222", "1@lid", "Ann", "hi", 200.0,
                           200.0, None))
    conn.execute(inbound, ("IN2", "W-IN2", "15550003333@s.whatsapp.net", "+15550003333", None, "Bo", "in group",
                           120.0, 120.0, GROUP))
    return conn


def test_migration_019_indexes_what_an_older_gateway_stored(tmp_path):
    conn = _old_store(tmp_path)
    assert migrate(conn) == [v for v in range(19, len(sorted(MIGRATIONS.glob('*.sql'))) + 1)]
    chats = chat_reads.list_chats(conn, "default", limit=10)
    assert [(c["id"], c["kind"], c["unread_count"], c["last_message_id"]) for c in chats] == [
        ("+15550002222", "contact", 0, "IN1"), (GROUP, "group", 0, "OUT3")]
    messages = chat_reads.chat_messages(conn, "default", "+15550002222", limit=10)
    assert [m["row"]["id"] for m in messages] == ["IN1", "OUT1"]
    assert [m["row"]["id"] for m in chat_reads.chat_messages(conn, "default", GROUP, limit=10)] == ["OUT3", "IN2"]
    ann = contact_profiles.get(conn, "default", "+15550002222")
    assert (ann["push_name"], ann["lid"], ann["last_message_at"]) == ("Ann", "1@lid", 200.0)
    assert contact_profiles.get(conn, "default", "+15550003333") is None  # wrote only in a group
