"""deploy/receiver: the example webhook receiver verifying a delivery signed by the gateway's own signing code, run
as a server on a loopback port, and its image pinning a verifier the gateway allows."""

from __future__ import annotations

import configparser
import http.client
import importlib.util
import json
import os
import re
import sys
import threading
import time
from urllib.parse import urlsplit

import pytest

from service.webhooks import secret as webhook_secret
from service.webhooks.delivery import headers_for
from tests.helpers.deploy import RECEIVER_FILE, compose_raw, delivery
from tests.helpers.stack import REPO


# --- the example receiver --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def receiver():
    spec = importlib.util.spec_from_file_location("deploy_receiver", RECEIVER_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_the_receiver_accepts_the_gateways_signature_and_nothing_else(receiver):
    secret = webhook_secret.generate()
    hooks = receiver.verifiers(secret)
    body, headers = delivery(secret)
    assert receiver.verify(hooks, body.encode(), headers)["type"] == "message.received"
    # rotation: any of the configured secrets
    assert receiver.verify(receiver.verifiers(f"{webhook_secret.generate()},{secret}"), body.encode(), headers)
    forged = [
        (body.replace("hello", "hullo").encode(), headers),  # the body changed on the way
        (body.encode(), delivery(webhook_secret.generate())[1]),  # signed with another secret
        (body.encode(), {**headers, "webhook-id": "msg_other"}),  # the id is signed too
        (body.encode(), {k: v for k, v in headers.items() if k != "webhook-signature"}),
        (body.encode(), {**headers, "webhook-signature": "v1,garbage"}),
        (body.encode(), {**headers, "webhook-signature": "nonsense"}),
    ]
    stale_body, stale_headers = delivery(secret, at=time.time() - 600)  # replayed ten minutes later
    forged.append((stale_body.encode(), stale_headers))
    for forged_body, forged_headers in forged:
        with pytest.raises(receiver.Rejected):
            receiver.verify(hooks, forged_body, forged_headers)
    with pytest.raises(SystemExit):
        receiver.verifiers("")


def test_the_receiver_logs_type_and_id_never_the_body(receiver, capsys):
    secret = webhook_secret.generate()
    server = receiver.make_server("127.0.0.1", 0, secret)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    path = urlsplit(compose_raw()["services"]["gateway"]["environment"]["WA_WEBHOOK_URL"]).path

    def post(body: str | bytes, headers: dict) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        try:
            conn.request("POST", path, body=body, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    marker = "body-text-" + os.urandom(6).hex()
    try:
        body, headers = delivery(secret, text=marker)
        assert post(body, headers) == 204
        assert post(body, headers) == 204  # a retry: acknowledged, handled once
        assert post(body.replace(marker, "x"), headers) == 401
        not_json = "not json " + marker
        assert post(not_json, headers_for((secret,), "msg_2", int(time.time()), not_json)) == 400
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    out = capsys.readouterr()
    records = [json.loads(line) for line in out.out.splitlines()]
    assert [r["event"] for r in records] == ["webhook.received", "webhook.duplicate", "webhook.rejected",
                                             "webhook.invalid"]
    assert records[0] | {"type": "message.received", "id": "evt-1", "webhook_id": "msg_test1"} == records[0]
    assert all({"timestamp", "level", "event", "program"} <= r.keys() for r in records)
    assert marker not in out.out + out.err and secret not in out.out + out.err


def test_the_receiver_image_pins_a_verifier_the_gateway_allows():
    from packaging.specifiers import SpecifierSet

    pinned = re.search(r"standardwebhooks==([\d.]+)", (RECEIVER_FILE.parent / "Dockerfile").read_text())
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    (wanted,) = [r for r in setup["options"]["install_requires"].split() if r.startswith("standardwebhooks")]
    assert pinned and pinned.group(1) in SpecifierSet(wanted.removeprefix("standardwebhooks"))
