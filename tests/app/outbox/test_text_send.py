"""The plain text send's path without the models (service/http/views/text_send.py) against the models themselves:
it takes exactly the bodies the model would take as a plain text, with the same values, and answers with what
``MessageOut`` shows, for rows as the store writes them (SQLite, or PostgreSQL with WA_TEST_DATABASE)."""

from __future__ import annotations

import pytest

from service.errors import BadRequest
from service.http.models import MessageOut, SendRequest
from service.http.models.base import parse
from service.http.views.text_send import plain_text, public_message
from service.store import outbox
from service.store.outbox_ids import OutboundExtra, OutboundMedia
from tests.helpers.fake_worker import P1, A, accept

MAX = 20

BODIES = [
    {"phone_number": P1, "message": "hi"},
    {"phone_number": " +1 (555) 000-2222 ", "message": "  spaced  "},
    {"phone_number": "+15550002222", "message": "x" * MAX},
    {"phone_number": "+15550002222", "message": "x" * (MAX + 1)},  # too long
    {"phone_number": "+15550002222", "message": "   "},  # empty
    {"phone_number": "+15550002222", "message": "a\x00b"},
    {"phone_number": "+15550002222", "message": "\ud800"},
    {"phone_number": "15550002222", "message": "hi"},  # no +
    {"phone_number": "+0555000222", "message": "hi"},
    {"phone_number": "+٣٣٣٣٣٣٣٣", "message": "hi"},  # Arabic-Indic digits
    {"phone_number": "+9990002222", "message": "hi"},  # no such country code
    {"phone_number": 15550002222, "message": "hi"},
    {"phone_number": P1, "message": 7},
    {"phone_number": P1, "message": None},
    {"phone_number": None, "message": "hi"},
    {"phone_number": P1},
    {"message": "hi"},
    {"phone_number": P1, "message": "hi", "reply_to": "m1"},
    {"phone_number": P1, "message": "hi", "caption": "c"},
    {"phone_number": P1, "message": "hi", "extra": 1},
    {"group_id": "120363012345678901@g.us", "message": "hi"},
]


@pytest.mark.parametrize("body", BODIES)
def test_a_plain_text_is_taken_exactly_when_the_model_takes_it_as_one(body):
    try:
        model = parse(SendRequest, body, max_message_chars=MAX)
    except BadRequest:
        model = None
    plain = plain_text(body, MAX)
    simple = set(body) == {"phone_number", "message"}
    if model is None or not simple:
        assert plain is None  # the model answers: its own 400, or a richer send
    else:
        assert plain == (model.recipient, model.message)


def _rows(db):
    text, _ = accept(db, text="hello")
    yield text
    sending = db.call(outbox.mark_sending, text["id"], 1000.0, False)
    yield sending
    yield db.call(outbox.set_status, A, text["id"], "read", 1001.0)
    waiting = db.call(outbox.accept, account=A, phone_number=P1, body="later", idempotency_key=None, now=1000.0,
                      ttl=60.0, max_outbox=100, wait_reason="not_connected")[0]
    yield waiting
    yield db.call(outbox.cancel, A, waiting["id"], 1002.0)
    group = db.call(outbox.accept, account=A, phone_number="120363012345678901@g.us", body="all", idempotency_key=None,
                    now=1000.0, ttl=60.0, max_outbox=100)[0]
    yield group
    media = OutboundMedia(kind="image", sha256="ab" * 32, mimetype="image/png", size=3, filename=None, ptt=False,
                          identity="image:url")
    yield db.call(outbox.accept, account=A, phone_number=P1, body="a caption", idempotency_key=None, now=1000.0,
                  ttl=60.0, max_outbox=100, media=media)[0]
    extra = OutboundExtra(action="location", content='{"worker": {}, "public": {"latitude": 1.5}}', identity="x",
                          reply_to=text["id"])
    yield db.call(outbox.accept, account=A, phone_number=P1, body="", idempotency_key=None, now=1000.0, ttl=60.0,
                  max_outbox=100, extra=extra)[0]


def test_the_answer_is_what_the_model_shows_for_every_kind_of_row(db):
    rows = list(_rows(db))
    assert len(rows) == 8
    for row in rows:
        assert public_message(row) == MessageOut.from_row(row, with_body=False).public(), row["status"]
        assert list(public_message(row)) == list(MessageOut.from_row(row, with_body=False).public())
