"""A gateway store with N messages over realistic chats, for bench/chats.py (issue 27): written through the store's
own write functions, as the gateway writes them, batched in transactions.

What it holds (seeded, so two builds of one size are the same): 5,000 contacts and 50 groups; activity skewed
(chat k of the shuffled ranking gets a share proportional to 1/(k+1), so the busiest chat holds about 11% of the
messages, and most contacts a handful); a year of time. The oldest 15% arrived as a history sync at link time
(``history.sync`` events of 100 messages, with the chats and contacts they name); the rest are live: a contact's
message (``message`` events, 55% of a contact chat's, 80% of a group's, each group message from one of its
members) or ours (``outbox.accept``, then a ``read`` or ``delivered`` receipt through ``outbox.advance``). Before
we answer a chat, the phone reads it (a ``chat.read`` event), so unread messages are those after our last answer.
10% of contacts write with a LID: half of them with their phone known from the start, a quarter known only by
their LID (their chat stays ``<digits>@lid``), a quarter whose phone a ``contact.updated`` (lid_mapping) names
halfway through (their LID chat merges into the phone's). 60% of contacts have a name from the phone's address book
(``contact.updated`` at link time). Text messages only: media rows would make a started gateway try to download.
"""

from __future__ import annotations

import bisect
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

from service.store import event_log, inbound, outbox

ACCOUNT = "default"
CONTACTS = 5000
GROUPS = 50
HISTORY_SHARE = 0.15
YEAR = 365 * 86400.0
BATCH = 2000  # messages per transaction
WORDS = ("hello", "thanks", "tomorrow", "meeting", "invoice", "price", "order", "delivery", "photo", "call", "later",
         "address", "payment", "ticket", "dinner", "weekend", "office", "report", "flight", "hotel", "coffee", "ok",
         "yes", "no", "maybe", "please", "sorry", "great", "when", "where", "today", "morning", "evening", "train")
HIT = "invoice"  # in about one message in six: a search whose first page is found near the newest messages
MISS = "zebracorn"  # in no message: a search that reads every message of the account


@dataclass
class Contact:
    phone: str
    lid: str | None = None
    lid_mode: str = "none"  # none, both (phone and LID from the start), lid_only, merged (phone learned later)
    name: str | None = None
    push_name: str = ""


@dataclass
class Chat:
    id: str  # the phone, the group's jid, or the LID
    contact: Contact | None = None
    members: list[Contact] = field(default_factory=list)
    last_in_wa_id: str | None = None  # the newest inbound message not read yet (what chat.read names)
    jid: str = ""


def contacts_and_chats(rng: random.Random) -> tuple[list[Contact], list[Chat]]:
    contacts = []
    for k in range(CONTACTS):
        c = Contact(phone=f"+1555{2000000 + k:07d}", push_name=f"{rng.choice(WORDS).title()} {k}")
        if rng.random() < 0.6:
            c.name = f"Contact {k}"
        if rng.random() < 0.1:
            c.lid = f"{90000000000000 + k}@lid"
            c.lid_mode = rng.choice(("both", "both", "lid_only", "merged"))
        contacts.append(c)
    chats = [Chat(id=c.lid if c.lid_mode in ("lid_only", "merged") else c.phone, contact=c,
                  jid=c.lid if c.lid_mode in ("lid_only", "merged") else f"{c.phone[1:]}@s.whatsapp.net")
             for c in contacts]
    for g in range(GROUPS):
        jid = f"1203630000000{g:05d}@g.us"
        chats.append(Chat(id=jid, members=rng.sample(contacts, rng.randint(3, 60)), jid=jid))
    rng.shuffle(chats)
    return contacts, chats


def text(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(3, 14))
    if rng.random() < 0.03:
        words.insert(rng.randrange(len(words)), HIT)
    return " ".join(words)


class Builder:
    """The store's events and calls for ``n`` messages, in time order, applied ``BATCH`` at a time."""

    def __init__(self, n: int, seed: int = 27):
        self.n, self.rng = n, random.Random(seed)
        self.contacts, self.chats = contacts_and_chats(self.rng)
        weights = [1.0 / (k + 1) for k in range(len(self.chats))]
        self.cumulative = list(itertools.accumulate(weights))
        self.start = time.time() - YEAR
        self.ids = itertools.count()
        self.counts = {"history": 0, "in": 0, "out": 0, "chat_read": 0, "contact_updated": 0}

    def pick(self) -> Chat:
        return self.chats[bisect.bisect(self.cumulative, self.rng.random() * self.cumulative[-1])]

    def at(self, i: int) -> float:
        return self.start + YEAR * i / self.n

    # --- history -----------------------------------------------------------------------------
    def _history_item(self, chat: Chat, i: int) -> dict[str, Any]:
        group = chat.id.endswith("@g.us")
        sender = self.rng.choice(chat.members) if group else chat.contact
        assert sender is not None
        from_me = self.rng.random() < (0.2 if group else 0.45)
        contact = chat.contact
        phone = None if group or (contact and contact.lid_mode in ("lid_only", "merged")) else chat.id
        return {"wa_id": f"H{next(self.ids):012X}", "chat_jid": chat.jid, "phone_number": phone,
                "lid": contact.lid if contact else None, "group_id": chat.id if group else None, "from_me": from_me,
                "participant": {"phone_number": sender.phone, "lid": None} if group and not from_me else None,
                "push_name": None if from_me else sender.push_name, "sent_at": self.at(i), "kind": "text",
                "text": text(self.rng), "content": None, "status": "read" if from_me else None}

    def history_parts(self, upto: int) -> list[dict[str, Any]]:
        messages = [self._history_item(self.pick(), i) for i in range(upto)]
        parts = [messages[k:k + 100] for k in range(0, len(messages), 100)] or [[]]
        events = []
        for number, part in enumerate(parts, 1):
            chats = [{"chat_jid": c.jid, "phone_number": None, "lid": None, "group_id": c.id,
                      "name": f"Group {c.id[-10:-5]}", "unread_count": 0, "timestamp": None}
                     for c in self.chats if c.id.endswith("@g.us")] if number == 1 else []
            events.append({"type": "history.sync", "sync_type": "INITIAL_BOOTSTRAP", "progress": None,
                           "is_latest": number == len(parts), "part": number, "parts": len(parts),
                           "chats": chats, "contacts": [], "messages": part})
        return events

    # --- live --------------------------------------------------------------------------------
    def address_book(self, merged: bool) -> list[dict[str, Any]]:
        """contact.updated events: the phone's names (``merged`` False), or the LID <-> phone pairs learned later."""
        if merged:
            items = [{"phone_number": c.phone, "lid": c.lid} for c in self.contacts if c.lid_mode == "merged"]
            source = "lid_mapping"
        else:
            items = [{"phone_number": c.phone, "lid": c.lid if c.lid_mode == "both" else None, "name": c.name}
                     for c in self.contacts if c.name]
            source = "contacts"
        return [{"type": "contact.updated", "contacts": items[k:k + 200], "source": source}
                for k in range(0, len(items), 200)]

    def live(self, i: int) -> tuple[str, Chat, float]:
        chat = self.pick()
        group = chat.id.endswith("@g.us")
        lid_chat = chat.contact is not None and chat.id.endswith("@lid")
        out = not lid_chat and self.rng.random() < (0.2 if group else 0.45)
        return ("out" if out else "in"), chat, self.at(i)

    def inbound_event(self, chat: Chat, at: float) -> dict[str, Any]:
        group = chat.id.endswith("@g.us")
        sender = self.rng.choice(chat.members) if group else chat.contact
        assert sender is not None
        lid_only = sender.lid_mode in ("lid_only", "merged") and not group
        wa_id = f"L{next(self.ids):012X}"
        chat.last_in_wa_id = wa_id
        return {"type": "message", "id": wa_id, "from_jid": chat.jid, "from": None if lid_only else sender.phone,
                "lid": sender.lid if sender.lid_mode != "none" and not group else None, "push_name": sender.push_name,
                "timestamp": at, "kind": "text", "text": text(self.rng), "group_id": chat.id if group else None,
                "event_id": f"e{wa_id}"}

    def read_event(self, chat: Chat, at: float) -> dict[str, Any]:
        """The phone read the chat up to its newest inbound message (before we answer it)."""
        wa_id, chat.last_in_wa_id = chat.last_in_wa_id, None
        contact = chat.contact
        return {"type": "chat.read", "from_jid": chat.jid, "from": contact.phone if contact else None,
                "lid": contact.lid if contact else None, "ids": [wa_id], "timestamp": at, "event_id": f"r{wa_id}"}


def _apply_live(conn: Any, steps: list[tuple[str, Any, float]]) -> None:
    """One transaction's worth of live steps: worker events as the gateway stores them, our sends as it accepts
    them (then their receipt)."""
    for kind, item, at in steps:
        if kind == "event":
            inbound.store_worker_event(conn, ACCOUNT, item, at)
        else:
            chat, body, status = item
            row, _ = outbox.accept(conn, account=ACCOUNT, phone_number=chat, body=body, idempotency_key=None, now=at,
                                   ttl=86400.0, max_outbox=10**9)
            outbox.advance(conn, ACCOUNT, row["id"], status, at + 2.0)


def _apply_history(conn: Any, events: list[dict[str, Any]], now: float) -> None:
    for event in events:
        inbound.store_worker_event(conn, ACCOUNT, event, now)


def build(db: Any, n: int, progress: Any = print) -> dict[str, Any]:
    """Writes ``n`` messages into ``db`` (an opened store); returns the counts and the time taken."""
    started = time.monotonic()
    b = Builder(n)
    link = int(n * HISTORY_SHARE)
    link_at = b.at(link)
    parts = b.history_parts(link)
    for k in range(0, len(parts), 20):
        db.call(_apply_history, parts[k:k + 20], link_at)
    b.counts["history"] = link
    db.call(_apply_history, b.address_book(merged=False), link_at)
    steps: list[tuple[str, Any, float]] = []
    merge_at = link + (n - link) // 2
    for i in range(link, n):
        if i == merge_at:
            db.call(_apply_history, b.address_book(merged=True), b.at(i))
        direction, chat, at = b.live(i)
        if direction == "in":
            steps.append(("event", b.inbound_event(chat, at), at))
        else:
            if chat.last_in_wa_id is not None:
                steps.append(("event", b.read_event(chat, at), at))
                b.counts["chat_read"] += 1
            steps.append(("send", (chat.contact.phone if chat.contact else chat.id, text(b.rng),
                                   "read" if b.rng.random() < 0.7 else "delivered"), at))
        b.counts[direction] += 1
        if len(steps) >= BATCH:
            db.call(_apply_live, steps)
            steps = []
            if (i - link) % (BATCH * 50) < BATCH:
                progress(f"  {i:,} of {n:,} messages, {time.monotonic() - started:.0f} s")
    if steps:
        db.call(_apply_live, steps)
    # A running gateway keeps 30 days of events (service/runtime/retention.py): pruned now as it would have been,
    # not by the measured gateway's first retention pass.
    db.call(event_log.prune, time.time() - 30 * 86400.0)
    return {"n": n, "counts": b.counts, "build_s": round(time.monotonic() - started, 1),
            "chats": len(b.chats), "contacts": len(b.contacts)}


def busiest(db: Any) -> dict[str, Any]:
    """What the measurements address: the busiest chat, a chat with unread messages, one without, a stored
    contact, and the positions of deep pages (the 4,000th chat, the busy chat's 10,000th-newest message, or the
    middle one when there are fewer: a page after the last one would be empty, and cheap at any size)."""
    def query(conn: Any) -> dict[str, Any]:
        one = conn.execute
        chat = one("SELECT chat, COUNT(*) FROM chat_messages WHERE account = ? GROUP BY chat ORDER BY 2 DESC LIMIT 1",
                   (ACCOUNT,)).fetchone()
        deep_msg = one("SELECT at, seq FROM chat_messages WHERE account = ? AND chat = ? ORDER BY at DESC, seq DESC"
                       " LIMIT 1 OFFSET ?", (ACCOUNT, chat[0], min(10000, chat[1] // 2))).fetchone()
        total = one("SELECT COUNT(*) FROM chats WHERE account = ?", (ACCOUNT,)).fetchone()[0]
        deep_chat = one("SELECT last_activity_at, id FROM chats WHERE account = ? ORDER BY last_activity_at DESC,"
                        " id DESC LIMIT 1 OFFSET ?", (ACCOUNT, min(4000, total // 2))).fetchone()
        unread = [r[0] for r in one("SELECT id FROM chats WHERE account = ? AND kind = 'contact' AND unread_count > 0"
                                    " AND id LIKE '+%' ORDER BY id LIMIT 200", (ACCOUNT,))]
        read = one("SELECT id FROM chats WHERE account = ? AND kind = 'contact' AND unread_count = 0 AND id LIKE '+%'"
                   " ORDER BY last_activity_at DESC LIMIT 1", (ACCOUNT,)).fetchone()
        contact = one("SELECT key FROM contact_profiles WHERE account = ? AND key LIKE '+%' AND name IS NOT NULL"
                      " ORDER BY key LIMIT 1 OFFSET 1000", (ACCOUNT,)).fetchone()
        sizes = {t: one(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in
                 ("chat_messages", "messages", "inbound_messages", "history_messages", "chats", "contact_profiles",
                  "events")}
        return {"busy_chat": chat[0], "busy_chat_messages": chat[1], "deep_message": tuple(deep_msg),
                "chats": total, "deep_chat": tuple(deep_chat), "unread_chats": unread, "read_chat": read[0],
                "contact": contact[0], "rows": sizes}
    return db.call(query)
