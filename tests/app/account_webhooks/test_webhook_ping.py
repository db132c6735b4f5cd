"""POST /webhooks/test, which the Python client, its CLI and `selftest` rely on: a signed test ping to webhooks,
in-process against a real SQLite file and real HTTP receivers on loopback ports (every request verified with
the ``standardwebhooks`` reference package)."""

from __future__ import annotations

import time
from datetime import datetime

from standardwebhooks import Webhook

from tests.helpers.account_webhooks import KEY as HOOK_KEY
from tests.helpers.account_webhooks import SALES, SUPPORT, scoped_key
from tests.helpers.stack import free_port
from tests.helpers.webhook_harness import SECRET
from tests.helpers.webhook_receiver import HANG, Receiver

ADMIN = {"X-API-Key": HOOK_KEY}


# --- POST /webhooks/test (in-process) -----------------------------------------------------------------

def pinged_event(rec: Receiver, result: dict) -> dict:
    """The ping the receiver got for one result, verified with the reference package."""
    [record] = rec.by_id(result["webhook_id"])
    assert record.event is not None, record.error
    return record.event


async def test_a_url_gets_one_signed_ping_now_and_nothing_is_stored(h, api, capsys):
    good, wrong = h.receiver(), h.receiver(secret="whsec_" + "A" * 32)  # the other one holds a wrong secret
    client = await api()
    started = time.time()
    results = []
    for rec in (good, wrong):
        res = await client.post("/webhooks/test", json={"url": rec.url + "?token=abc"}, headers=ADMIN)
        assert res.status == 200, await res.text()
        [result] = (await res.json())["results"]
        results.append(result)
    result = results[0]
    assert result["ok"] is True and result["status_code"] == 200 and result["error"] is None
    assert result["endpoint"] == good.url + "?***" and result["id"] is None
    assert result["webhook_id"].startswith("evt_") and 0 <= result["elapsed_ms"] < 5000
    event = pinged_event(good, result)
    assert event["id"] == result["webhook_id"] and event["type"] == "webhook.test" and event["account"] is None
    assert event["data"] == {"account": None, "endpoint": good.url + "?***"}
    assert event["timestamp"].endswith("Z")
    assert started - 1 <= datetime.fromisoformat(event["timestamp"]).timestamp() <= time.time() + 1
    [record] = good.snapshot()
    Webhook(SECRET).verify(record.body, record.headers)  # the body as sent, byte for byte
    assert record.headers["content-type"] == "application/json"
    # Signed with the gateway's secret: a receiver holding another one rejects it (and still answers 200).
    [bad] = wrong.snapshot()
    assert bad.event is None and "signature" in bad.error.lower(), bad.error
    assert results[1]["ok"] is True
    assert h.db.call(lambda c: c.execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone()[0]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "webhook.test" in line]
    assert len(lines) == 2 and good.url + "?***" in lines[0] and "status_code" in lines[0]
    assert SECRET not in out and "token=abc" not in out and record.headers["webhook-signature"] not in out


async def test_failing_endpoints_are_reported_not_raised(h, api):
    failing = h.receiver(script=lambda record: 500)
    hanging = h.receiver(script=lambda record: HANG)
    client = await api(WA_WEBHOOK_TIMEOUT="0.3")
    closed = f"http://127.0.0.1:{free_port()}/hook"
    expected = {failing.url: (500, "HTTP 500"), closed: (None, "connect: "), hanging.url: (None, "timeout")}
    for url, (status_code, error) in expected.items():
        res = await client.post("/webhooks/test", json={"url": url}, headers=ADMIN)
        assert res.status == 200
        [result] = (await res.json())["results"]
        assert result["ok"] is False and result["status_code"] == status_code, result
        assert result["error"].startswith(error), result
        assert result["elapsed_ms"] < 2000, result  # bounded by WA_WEBHOOK_TIMEOUT (0.3 s here)
    assert len(failing.snapshot()) == 1  # once: a test is never retried


async def test_configured_endpoints_and_who_may_ping_them(h, api):
    glob, sales, support = h.receiver(), h.receiver(), h.receiver()
    client = await api()
    assert await (await client.post("/webhooks/test", headers=ADMIN)).json() == {"results": []}  # none yet
    await h.stop_services()
    client = await api([glob.url])
    made = {}
    for account, rec in ((SALES, sales), (SUPPORT, support)):
        res = await client.post(f"/accounts/{account}/webhooks", json={"url": rec.url + "?k=v"}, headers=ADMIN)
        assert res.status == 201
        made[account] = (await res.json())["id"]
        rec.trust((await res.json())["secret"])  # an account webhook signs with its own secret

    res = await client.post("/webhooks/test", data=b"", headers=ADMIN)  # no body at all: every endpoint
    results = (await res.json())["results"]
    assert [(r["endpoint"], r["id"], r["ok"]) for r in results] == [
        (glob.url, None, True), (sales.url + "?***", made[SALES], True), (support.url + "?***", made[SUPPORT], True)]
    assert pinged_event(sales, results[1])["data"] == {"account": SALES, "endpoint": sales.url + "?***"}
    assert pinged_event(sales, results[1])["account"] == SALES
    assert pinged_event(glob, results[0])["account"] is None

    res = await client.post(f"/accounts/{SALES}/webhooks/test", json={}, headers=ADMIN)
    assert [r["id"] for r in (await res.json())["results"]] == [made[SALES]]
    for given in (made[SUPPORT], support.url + "?k=v", support.url + "?***"):  # its id, its URL, as listed
        res = await client.post("/webhooks/test", json={"endpoint": given}, headers=ADMIN)
        assert [r["id"] for r in (await res.json())["results"]] == [made[SUPPORT]], given
    res = await client.post("/webhooks/test", json={"endpoint": glob.url}, headers=ADMIN)
    assert [r["endpoint"] for r in (await res.json())["results"]] == [glob.url]

    # A key scoped to sales: its own endpoints, nothing else.
    key = scoped_key(h, SALES)
    res = await client.post(f"/accounts/{SALES}/webhooks/test", json={"endpoint": made[SALES]}, headers=key)
    assert res.status == 200 and [r["ok"] for r in (await res.json())["results"]] == [True]
    for path, body in ((f"/accounts/{SUPPORT}/webhooks/test", {}), ("/webhooks/test", {}),
                       ("/webhooks/test", {"url": sales.url})):
        res = await client.post(path, json=body, headers=key)
        assert res.status == 403 and (await res.json())["error"]["code"] == "forbidden", path

    refused = [
        (f"/accounts/{SALES}/webhooks/test", {"endpoint": made[SUPPORT]}, key, 404, "webhook_not_found"),
        (f"/accounts/{SALES}/webhooks/test", {"url": sales.url}, key, 400, "url_not_allowed"),
        (f"/accounts/{SALES}/webhooks/test", {"url": sales.url}, ADMIN, 400, "url_not_allowed"),
        ("/webhooks/test", {"endpoint": "whe_nope"}, ADMIN, 404, "webhook_not_found"),
        ("/webhooks/test", {"url": "ftp://example.com/x"}, ADMIN, 400, "invalid_url"),
        ("/webhooks/test", {"url": "http://"}, ADMIN, 400, "invalid_url"),
        ("/webhooks/test", {"url": 5}, ADMIN, 400, "invalid_url"),
        ("/webhooks/test", {"url": sales.url, "endpoint": made[SALES]}, ADMIN, 400, "invalid_request"),
        ("/accounts/nobody/webhooks/test", {}, ADMIN, 404, "account_not_found"),
    ]
    before = {rec.url: len(rec.snapshot()) for rec in (glob, sales, support)}
    for path, body, headers, status, code in refused:
        res = await client.post(path, json=body, headers=headers)
        assert (res.status, (await res.json())["error"]["code"]) == (status, code), (path, body)
    assert before == {rec.url: len(rec.snapshot()) for rec in (glob, sales, support)}  # 4xx: nothing sent
    for rec in (glob, sales, support):
        assert all(r.event is not None for r in rec.snapshot())
