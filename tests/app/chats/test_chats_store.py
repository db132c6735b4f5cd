"""The chats' store (issue 27, service/store/chat_*.py), on SQLite and PostgreSQL: a chat kept in the transaction of
each message (ours accepted, a contact's stored, a history sync), unread counts (live inbound only; zeroed by our
read and by the phone's), history stored once and never as a new message, and a contact's LID and phone one chat
whichever way the gateway learns the pair."""

from __future__ import annotations

import time

from service.store import chat_index, chat_reads, contact_profiles, inbound, outbox, outbox_targets
from tests.helpers.fake_worker import P1, P2, A, accept

LID = "99887766554433@lid"
JID1 = P1.lstrip("+") + "@s.whatsapp.net"


def _inbound(db, wa_id, *, phone=P1, lid=None, text="hi", at=None, push_name=None, group=None):
    jid = lid if phone is None else phone.lstrip("+") + "@s.whatsapp.net"
    event = {"type": "message", "id": wa_id, "from": phone, "lid": lid, "from_jid": jid, "text": text,
             "timestamp": at or time.time(), "push_name": push_name, "event_id": f"ev-{wa_id}"}
    if group:
        event["group_id"] = group
    return db.call(inbound.store_worker_event, A, event, time.time())


def _chats(db):
    return db.call(chat_reads.list_chats, A, limit=50)


def _messages(db, chat):
    return [(m["source"], m["row"]["id"]) for m in db.call(chat_reads.chat_messages, A, chat, limit=50)]


def _events(db):
    return db.call(lambda c: [r[0] for r in c.execute("SELECT type FROM events WHERE account = ?", (A,))])


def _history(wa_id, *, phone=P1, lid=None, from_me=False, text="old", at=1_700_000_000, group=None):
    jid = group or (phone.lstrip("+") + "@s.whatsapp.net" if phone else lid)
    return {"wa_id": wa_id, "chat_jid": jid, "phone_number": phone, "lid": lid, "group_id": group,
            "from_me": from_me, "participant": None, "push_name": None if from_me else "Old Ann", "sent_at": at,
            "kind": "text", "text": text, "content": None, "status": "read" if from_me else None}


def _sync(db, messages, chats=(), contacts=()):
    event = {"type": "history.sync", "sync_type": "INITIAL_BOOTSTRAP", "progress": 100, "is_latest": True, "part": 1,
             "parts": 1, "chats": list(chats), "contacts": list(contacts), "messages": list(messages),
             "event_id": "hist-1"}
    return db.call(inbound.store_worker_event, A, event, time.time())


def test_each_message_keeps_its_chat_in_its_own_transaction(db):
    sent, _ = accept(db, phone=P1, text="hello", now=time.time() - 10)
    _inbound(db, "IN-1", phone=P2, push_name="Bo")
    chats = _chats(db)
    assert [c["id"] for c in chats] == [P2, P1]  # newest activity first
    assert chats[0]["unread_count"] == 1 and chats[0]["last"]["row"]["wa_id"] == "IN-1"
    assert chats[0]["profile"]["push_name"] == "Bo"
    assert chats[1]["unread_count"] == 0 and chats[1]["last"]["row"]["id"] == sent["id"]
    _inbound(db, "IN-2", phone=P1)
    assert _messages(db, P1)[0][0] == "in" and _chats(db)[0]["id"] == P1


def test_an_action_is_not_a_message_of_the_chat(db):
    accept(db, phone=P1, text="x")
    db.call(chat_index.outbound, A, P1, "01ACTIONACTIONACTIONACTION", "reaction", time.time())
    assert len(_messages(db, P1)) == 1


def test_our_read_and_the_phones_read_zero_the_unread_count(db):
    for n in range(3):
        _inbound(db, f"R-{n}")
    assert _chats(db)[0]["unread_count"] == 3
    newest = db.call(chat_index.newest_unread, A, P1)
    assert newest["wa_id"] == "R-2"
    db.call(outbox_targets.accept_read, account=A, phone_number=P1, body="", idempotency_key=None, now=time.time(),
            ttl=60.0, max_outbox=100, chat_phone=P1, upto_seq=newest["seq"], upto_wa_id="R-2",
            extra=outbox.OutboundExtra(action="read", content="{}", identity="read", target_id=newest["id"]))
    assert _chats(db)[0]["unread_count"] == 0 and db.call(chat_index.newest_unread, A, P1) is None
    _inbound(db, "R-3")
    _inbound(db, "R-4")
    read = {"type": "chat.read", "from": P1, "lid": None, "from_jid": P1.lstrip("+") + "@s.whatsapp.net",
            "ids": ["R-3"], "timestamp": time.time(), "event_id": "read-1"}
    db.call(inbound.store_worker_event, A, read, time.time())
    assert _chats(db)[0]["unread_count"] == 1  # R-4 came after the message the phone read


def test_history_is_stored_once_and_is_never_a_new_message(db):
    _inbound(db, "LIVE-1", text="live")
    before = _events(db)
    old = [_history("H-1"), _history("H-2", from_me=True, text="ours"), _history("LIVE-1", text="live")]
    _sync(db, old)
    _sync(db, old)  # the phone sends it again: idempotent
    assert _events(db) == before  # no message.received, nothing of the log
    rows = db.call(chat_reads.chat_messages, A, P1, limit=50)
    assert sorted((r["source"], r["row"]["wa_id"]) for r in rows) == [
        ("history", "H-1"), ("history", "H-2"), ("in", "LIVE-1")]
    chat = _chats(db)[0]
    assert chat["unread_count"] == 1 and chat["last"]["row"]["wa_id"] == "LIVE-1"  # history is older, not unread
    assert db.call(lambda c: c.execute("SELECT COUNT(*) FROM messages").fetchone()[0]) == 0  # no outbox row


def test_one_message_seen_by_history_and_live_under_either_jid_is_stored_once(db):
    _sync(db, [_history("BOTH-1", phone=P1, lid=LID, text="old")])
    before = _events(db)
    assert _inbound(db, "BOTH-1", phone=P1, text="old")["event"] is None  # live after history: no new message
    assert _events(db) == before
    _inbound(db, "BOTH-2", phone=None, lid=LID, text="by lid")  # live by LID, then the history names it by phone
    _sync(db, [{**_history("BOTH-2", phone=P1, text="by lid"), "chat_jid": P1.lstrip("+") + "@s.whatsapp.net"}])
    rows = db.call(chat_reads.chat_messages, A, P1, limit=50)
    assert sorted((r["source"], r["row"]["wa_id"]) for r in rows) == [("history", "BOTH-1"), ("in", "BOTH-2")]
    assert _chats(db)[0]["unread_count"] == 1


def test_a_lid_chat_merges_into_the_phone_chat_when_an_inbound_message_names_both(db):
    _inbound(db, "L-1", phone=None, lid=LID, push_name="Ann")
    accept(db, phone=P1, text="to the phone")
    assert {c["id"] for c in _chats(db)} == {LID, P1}
    assert db.call(chat_index.resolve, A, LID) == LID
    _inbound(db, "L-2", phone=P1, lid=LID)
    chats = _chats(db)
    assert [c["id"] for c in chats] == [P1] and chats[0]["unread_count"] == 2 and chats[0]["lid"] == LID
    assert len(_messages(db, P1)) == 3
    assert db.call(chat_index.resolve, A, LID) == P1
    assert db.call(contact_profiles.get, A, P1)["push_name"] == "Ann"  # the LID's profile folded in
    merged = db.call(inbound.list_messages, A, phone_number=P1)
    assert {m["wa_id"] for m in merged} == {"L-1", "L-2"}  # the LID's message has its phone number now


def test_contact_updated_and_history_teach_the_pair_too(db):
    _inbound(db, "L-1", phone=None, lid=LID)
    event = {"type": "contact.updated", "source": "lid_mapping", "event_id": "cu-1",
             "contacts": [{"phone_number": P1, "lid": LID}, {"phone_number": P2, "name": "Bob"}]}
    db.call(inbound.store_worker_event, A, event, time.time())
    assert [c["id"] for c in _chats(db)] == [P1]
    assert db.call(contact_profiles.get, A, P2)["name"] == "Bob"
    other = "11223344556677@lid"
    _inbound(db, "L-9", phone=None, lid=other)
    _sync(db, [_history("H-9", phone="+15550009999", lid=other)])
    assert "+15550009999" in {c["id"] for c in _chats(db)} and other not in {c["id"] for c in _chats(db)}


def test_a_group_message_is_the_groups_chat(db):
    group = "120363000000000001@g.us"
    _inbound(db, "G-1", phone=P2, group=group)
    accept(db, phone=group, text="to all")
    assert [c["id"] for c in _chats(db)] == [group]
    _sync(db, [], chats=[{"chat_jid": group, "group_id": group, "name": "Team", "timestamp": 1_700_000_000}])
    assert _chats(db)[0]["name"] == "Team" and _chats(db)[0]["kind"] == "group"
    renamed = {"type": "group.updated", "group_id": group, "subject": "Team (EU)", "event_id": "g-1"}
    db.call(inbound.store_worker_event, A, renamed, time.time())
    assert _chats(db)[0]["name"] == "Team (EU)"


def test_a_group_we_are_put_in_is_a_named_chat_before_its_first_message(db):
    group = "120363000000000002@g.us"
    created = {"type": "group.participants", "group_id": group, "action": "create", "subject": "Launch",
               "participants": [{"phone_number": P1, "lid": None}], "event_id": "g-2"}
    db.call(inbound.store_worker_event, A, created, time.time())
    assert [(c["id"], c["name"], c["kind"]) for c in _chats(db)] == [(group, "Launch", "group")]
    _inbound(db, "G-2", phone=P1, group=group)
    assert [(c["id"], c["name"]) for c in _chats(db)] == [(group, "Launch")]  # still one chat, still named


def test_a_reply_in_the_second_of_our_message_comes_after_it_and_an_offline_one_keeps_its_second(db):
    second = float(int(time.time()) - 60)
    accept(db, text="which size?", now=second + 0.5)
    for wa_id, sent_at, stored_at in (("R-1", second, second + 0.8), ("R-0", second - 30, second + 5)):
        event = {"type": "message", "id": wa_id, "from": P1, "from_jid": JID1, "text": "M", "timestamp": sent_at,
                 "event_id": f"ev-{wa_id}"}
        db.call(inbound.store_worker_event, A, event, stored_at)
    thread = db.call(chat_reads.chat_messages, A, P1, limit=50)  # newest first
    assert [(m["source"], m["row"].get("wa_id") if m["source"] == "in" else None) for m in thread] == [
        ("in", "R-1"), ("out", None), ("in", "R-0")]  # the reply after ours; the late one in its own second


def test_search_finds_text_in_both_directions_and_history(db):
    accept(db, phone=P1, text="Meet at NOON")
    _inbound(db, "S-1", text="noon works")
    _sync(db, [_history("S-2", text="no, at noon_ish")])
    _inbound(db, "S-3", phone=P2, text="midnight")
    found, go_on = db.call(chat_reads.search, A, contact_profiles.like("noon"), chat=None, limit=50)
    assert len(found) == 3 and go_on is None
    assert len(db.call(chat_reads.search, A, contact_profiles.like("t_n"), chat=None, limit=50)[0]) == 0
    assert len(db.call(chat_reads.search, A, contact_profiles.like("noon_"), chat=P1, limit=50)[0]) == 1


def test_a_search_reads_a_bounded_window_per_request_and_its_cursor_goes_on_to_every_match(db):
    start = time.time() - 1000
    for n in range(8):  # only the oldest and the fifth say the word
        accept(db, text="the needle" if n in (0, 4) else f"hay {n}", now=start + n)
    pages, before = [], None
    for _ in range(10):
        rows, go_on = db.call(chat_reads.search, A, contact_profiles.like("needle"), chat=None, limit=5,
                              before=before, window=3)
        pages.append([r["row"]["body"] for r in rows])
        if go_on is None:
            break
        before = go_on
    assert pages == [[], ["the needle"], ["the needle"]]  # 3 messages read per request: 8 in three requests
