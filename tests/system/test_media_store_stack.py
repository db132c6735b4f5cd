"""The whole sandbox stack (supervisord, gateway, worker with the real Baileys, the emulator's media host) with its
media in a bucket (WA_MEDIA_STORE=s3 on moto's standalone server, tests/helpers/s3_server.py) or in PostgreSQL
(WA_MEDIA_STORE=postgres, the tests' server): an image sent by base64 and one a contact sends are each stored
under its sha256, and once the local copies are gone (as on an instance of a cluster that received neither)
GET /media/{id} still serves the very bytes from the store, and the same content sent again (adopted again: kept,
its age renewed) reaches its contact."""

from __future__ import annotations

import base64
import hashlib
import secrets
import shutil

import pytest

from tests.helpers import media_samples as samples
from tests.helpers import s3_server
from tests.helpers.sandbox import CONTACT, PHONE, pair
from tests.helpers.stack import Stack, wait_for

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def s3():
    server = s3_server.S3Server().start()
    yield server
    server.stop()


def _objects(s3, bucket: str) -> set[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=s3.url, region_name=s3_server.REGION,
                          aws_access_key_id=s3_server.ACCESS_KEY_ID, aws_secret_access_key=s3_server.SECRET_ACCESS_KEY)
    return {item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def _drop_local_copies(stack: Stack) -> None:
    media = stack.data_dir / "media"
    for entry in media.iterdir():
        if entry.name != "tmp":
            shutil.rmtree(entry)


def _stored(where: str, request, sha256: str) -> bool:
    if where == "s3":
        s3, bucket = request.getfixturevalue("s3"), request.node.bucket
        return f"media/{sha256}" in _objects(s3, bucket)
    import asyncio

    import asyncpg

    async def look() -> bool:
        conn = await asyncpg.connect(request.node.database_url)
        try:
            return bool(await conn.fetchval("SELECT 1 FROM media_blobs WHERE sha256 = $1", sha256))
        finally:
            await conn.close()
    return asyncio.run(look())


def _env(where: str, request) -> dict[str, str]:
    if where == "s3":
        s3 = request.getfixturevalue("s3")
        request.node.bucket = "wa-" + secrets.token_hex(6)
        s3.create_bucket(request.node.bucket)
        return s3.env(request.node.bucket)
    request.node.database_url = request.getfixturevalue("url")
    return {"WA_DATABASE_URL": request.node.database_url, "WA_MEDIA_STORE": "postgres"}


@pytest.mark.parametrize("where", ["s3", "postgres"])
def test_media_both_ways_lives_in_the_store(where, request):
    with Stack(_env(where, request), sandbox=True) as stack:
        pair(stack)
        image = samples.png(7, 4)
        sha_out = hashlib.sha256(image).hexdigest()
        body = {"phone_number": CONTACT, "image": {"base64": base64.b64encode(image).decode()}}
        sent = stack.post("/send?wait=10", body)
        assert sent.status == 200, sent.raw
        assert _stored(where, request, sha_out)  # adopted before the answer

        incoming = samples.png(3, 8)
        sha_in = hashlib.sha256(incoming).hexdigest()
        res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "media": {
            "kind": "image", "base64": base64.b64encode(incoming).decode(), "mimetype": "image/png"}})
        assert res.status == 200, res.raw
        stored = stack.wait_event(lambda e: e["type"] == "media.stored" and e["media"]["sha256"] == sha_in, 60,
                                  "the contact's image stored")
        assert _stored(where, request, sha_in)

        _drop_local_copies(stack)  # as on an instance that received neither
        for url, sha in ((sent.json()["media"]["url"], sha_out), (stored["media"]["url"], sha_in)):
            served = stack.get(url)
            assert served.status == 200 and hashlib.sha256(served.raw).hexdigest() == sha
            part = stack.get(url, headers={"Range": "bytes=1-4"})
            assert part.status == 206 and len(part.raw) == 4
        again = stack.post("/send?wait=10", {**body, "phone_number": "+15550219999"})
        assert again.status == 200, again.raw

        def arrived():
            inbox = stack.emu("GET", "/contacts/+15550219999/messages").json()
            return next((m for m in inbox if m.get("media")), None)
        assert wait_for(arrived, 30, "the image sent again")["media"]["sha256"] == sha_out
        assert s3_server.SECRET_ACCESS_KEY not in stack.logs() and "media.adopt_failed" not in stack.logs()
