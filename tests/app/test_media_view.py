"""GET /media/{id} and /accounts/{account}/media/{id} in-process (no worker): the bytes of a message's media through
the media store, with HTTP's validators and ranges (ETag, If-None-Match, one Range, If-Range, 416), the contract's
errors for media not (or no longer) there, the keys' scopes as on /messages, a contact's hostile filename and
mimetype kept harmless, and the media object on GET /messages without the worker's descriptor."""

from __future__ import annotations

import hashlib
import time

import pytest

from service.http.app import create_app
from service.http.appkeys import DATABASE, MEDIA_STORE
from service.store import inbound_media, outbox
from tests.helpers.inbound_media import stored_media
from tests.helpers.inprocess import AUTH, settings

DATA = bytes(range(256)) * 40  # 10240 bytes
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    return await aiohttp_client(create_app(settings(tmp_path)))


async def stored(client, data=DATA, n=1, **media):
    return await stored_media(client.app[DATABASE], client.app[MEDIA_STORE], data, n, **media)


async def error_of(res, status, code):
    body = await res.json()
    assert res.status == status and body["error"]["code"] == code, body
    return body["error"]


async def test_the_bytes_stream_with_type_length_etag_and_an_attachment(client):
    message_id = await stored(client)
    for path in (f"/media/{message_id}", f"/accounts/default/media/{message_id}"):
        res = await client.get(path, headers=AUTH)
        assert res.status == 200 and await res.read() == DATA
        h = res.headers
        assert (h["Content-Type"], h["Content-Length"], h["ETag"]) == ("image/jpeg", str(len(DATA)), f'"{SHA}"')
        assert h["Accept-Ranges"] == "bytes" and h["X-Content-Type-Options"] == "nosniff"
        assert h["Content-Disposition"] == f'attachment; filename="{message_id}.jpg"'
        assert "sandbox" in h["Content-Security-Policy"] and h["Cache-Control"].startswith("private")
        assert "X-Request-ID" in h


@pytest.mark.parametrize("header,status,part", [
    ("bytes=0-9", 206, (0, 10)),
    ("bytes=10240-", 416, None),
    ("bytes=10000-", 206, (10000, 10240)),
    ("bytes=-5", 206, (10235, 10240)),
    ("bytes=100-999999", 206, (100, 10240)),  # clamped to the end
    ("bytes=0-1,5-6", 200, (0, 10240)),  # several ranges: the whole file
    ("bytes=9-2", 200, (0, 10240)),  # malformed: ignored
    ("pages=1-2", 200, (0, 10240)),
])
async def test_one_range_is_206_past_the_end_416_anything_else_the_whole(client, header, status, part):
    message_id = await stored(client)
    res = await client.get(f"/media/{message_id}", headers={**AUTH, "Range": header})
    assert res.status == status
    if status == 416:
        await error_of(res, 416, "range_not_satisfiable")
        assert res.headers["Content-Range"] == f"bytes */{len(DATA)}"
        return
    body = await res.read()
    assert part is not None and body == DATA[part[0]:part[1]]
    assert res.headers["Content-Length"] == str(len(body))
    if status == 206:
        assert res.headers["Content-Range"] == f"bytes {part[0]}-{part[1] - 1}/{len(DATA)}"
    else:
        assert "Content-Range" not in res.headers


async def test_if_range_sends_the_range_only_for_this_etag(client):
    message_id = await stored(client)
    same = await client.get(f"/media/{message_id}", headers={**AUTH, "Range": "bytes=0-3", "If-Range": f'"{SHA}"'})
    assert same.status == 206 and await same.read() == DATA[:4]
    other = await client.get(f"/media/{message_id}", headers={**AUTH, "Range": "bytes=0-3", "If-Range": '"other"'})
    assert other.status == 200 and await other.read() == DATA


@pytest.mark.parametrize("tag,status", [(f'"{SHA}"', 304), (f'W/"{SHA}"', 304), ("*", 304), (f'"x", "{SHA}"', 304),
                                        ('"other"', 200)])
async def test_if_none_match_answers_304_for_its_etag(client, tag, status):
    message_id = await stored(client)
    res = await client.get(f"/media/{message_id}", headers={**AUTH, "If-None-Match": tag})
    assert res.status == status
    if status == 304:
        assert await res.read() == b"" and res.headers["ETag"] == f'"{SHA}"'


async def test_media_not_there_answers_the_contracts_errors(client):
    db = client.app[DATABASE]
    waiting = await stored(client, n=1, settle=False)
    res = await client.get(f"/media/{waiting}", headers=AUTH)
    await error_of(res, 409, "media_not_ready")
    assert res.headers["Retry-After"].isdigit()
    failed = await stored(client, n=2, settle=False)
    await db.run(lambda conn: inbound_media.failed(conn, "default", failed, "media_gone", time.time()))
    assert (await error_of(await client.get(f"/media/{failed}", headers=AUTH), 410, "media_failed"))["reason"] == \
        "media_gone"
    pruned = await stored(client, b"pruned by the retention", n=3)
    await db.run(lambda conn: conn.execute("UPDATE inbound_media SET pruned_at = ? WHERE message_id = ?",
                                           (time.time(), pruned)))
    await error_of(await client.get(f"/media/{pruned}", headers=AUTH), 410, "media_pruned")
    gone = await stored(client, b"deleted under the row", n=4)
    await client.app[MEDIA_STORE].remove(hashlib.sha256(b"deleted under the row").hexdigest())
    await error_of(await client.get(f"/media/{gone}", headers=AUTH), 410, "media_pruned")
    await error_of(await client.get("/media/nope", headers=AUTH), 404, "media_not_found")
    await error_of(await client.get(f"/accounts/default/media/{failed}x", headers=AUTH), 404, "media_not_found")


async def test_keys_are_scoped_as_on_messages(client):
    message_id = await stored(client)
    assert (await client.post("/accounts", json={"name": "sales"}, headers=AUTH)).status == 201
    keys = {}
    for account in ("sales", "default"):
        res = await client.post(f"/accounts/{account}/keys", json={}, headers=AUTH)
        keys[account] = {"X-API-Key": (await res.json())["key"]}
    await error_of(await client.get(f"/media/{message_id}", headers=keys["sales"]), 403, "forbidden")
    await error_of(await client.get(f"/accounts/default/media/{message_id}", headers=keys["sales"]), 403, "forbidden")
    # Its own account's path: the id is another account's media, so there is none.
    await error_of(await client.get(f"/accounts/sales/media/{message_id}", headers=keys["sales"]), 404,
                   "media_not_found")
    await error_of(await client.get(f"/accounts/sales/media/{message_id}", headers=AUTH), 404, "media_not_found")
    assert (await client.get(f"/media/{message_id}", headers=keys["default"])).status == 200
    assert (await client.get(f"/media/{message_id}")).status == 401


@pytest.mark.parametrize("filename,expected", [
    ("invoice.pdf", 'attachment; filename="invoice.pdf"'),
    ("résumé 2026.pdf", "attachment; filename=\"r_sum_ 2026.pdf\"; filename*=utf-8''r%C3%A9sum%C3%A9%202026.pdf"),
    ('../../etc/pass"wd\r\nSet-Cookie: a=b.pdf',
     "attachment; filename=\"pass_wdSet-Cookie: a=b.pdf\"; filename*=utf-8''pass%22wdSet-Cookie%3A%20a%3Db.pdf"),
    ("C:\\Users\\x\\evil\u202egpj.exe", 'attachment; filename="evilgpj.exe"'),  # no path, no RTL override
    ("%41%0d%0a.pdf", "attachment; filename=\"_41_0d_0a.pdf\"; filename*=utf-8''%2541%250d%250a.pdf"),
    ("\u0000\r\n", None),  # nothing left: the id and the type's extension
])
async def test_a_hostile_filename_is_one_safe_header(client, filename, expected):
    message_id = await stored(client, kind="document", mimetype="application/pdf", filename=filename)
    res = await client.get(f"/media/{message_id}", headers=AUTH)
    assert res.status == 200
    assert res.headers.getall("Content-Disposition") == [expected or f'attachment; filename="{message_id}.pdf"']
    assert "Set-Cookie" not in res.headers


@pytest.mark.parametrize("mimetype,served", [
    ("audio/ogg; codecs=opus", "audio/ogg; codecs=opus"),
    ("text/html", "text/html"),
    ("text/html\r\nX-Evil: 1", "application/octet-stream"),
    ("no type", "application/octet-stream"),
    (None, "application/octet-stream"),
])
async def test_the_declared_mimetype_is_served_only_when_plain(client, mimetype, served):
    message_id = await stored(client, mimetype=mimetype)
    res = await client.get(f"/media/{message_id}", headers=AUTH)
    assert res.headers["Content-Type"] == served and "X-Evil" not in res.headers
    assert res.headers["Content-Disposition"].startswith("attachment;")  # never rendered on our origin


async def test_messages_show_the_media_and_never_the_descriptor(client):
    db = client.app[DATABASE]
    message_id = await stored(client)
    waiting = await stored(client, b"still downloading", n=2, settle=False)
    key = (await db.run(inbound_media.get, "default", message_id))["descriptor"]
    one = await client.get(f"/messages/{message_id}", headers=AUTH)
    text = await one.text()
    shown = await one.json()
    assert shown["type"] == "image" and shown["media"]["state"] == "stored"
    assert shown["media"]["url"] == f"/media/{message_id}" and shown["media"]["sha256"] == SHA
    listed = await client.get("/messages?direction=in", headers=AUTH)
    states = {m["id"]: m["media"]["state"] for m in (await listed.json())["messages"]}
    assert states == {message_id: "stored", waiting: "downloading"}
    for body in (text, await listed.text(), await (await client.get("/events", headers=AUTH)).text()):
        assert "media_key" not in body and "direct_path" not in body and key not in body


async def test_a_sent_messages_media_is_served_too(client):
    db, store = client.app[DATABASE], client.app[MEDIA_STORE]
    async with store.writer(len(DATA)) as writer:
        writer.write(DATA)
        await writer.commit()
    row, _ = await db.run(outbox.accept, account="default", phone_number="+15550002222", body="", idempotency_key=None,
                          now=time.time(), ttl=3600.0, max_outbox=100)
    await db.run(lambda conn: conn.execute(
        "UPDATE messages SET media_kind = 'document', media_sha256 = ?, media_mimetype = 'application/pdf',"
        " media_size = ?, media_filename = 'report.pdf' WHERE id = ?", (SHA, len(DATA), row["id"])))
    res = await client.get(f"/media/{row['id']}", headers={**AUTH, "Range": "bytes=1-2"})
    assert res.status == 206 and await res.read() == DATA[1:3]
    assert res.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'
    await db.run(lambda conn: conn.execute("UPDATE messages SET media_pruned_at = 1 WHERE id = ?", (row["id"],)))
    await error_of(await client.get(f"/media/{row['id']}", headers=AUTH), 410, "media_pruned")
