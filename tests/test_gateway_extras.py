"""What the Python client, its CLI and `selftest` rely on: the QR code as an image or text (GET /qr), a signed
test ping to webhooks (POST /webhooks/test), and whether the store takes writes (GET /health's `store`).

The webhook pings and the store probe run in-process against a real SQLite file and real HTTP receivers on
loopback ports (every request verified with the ``standardwebhooks`` reference package). The QR code needs a
worker in state `qr`: one sandbox stack (real Baileys against the emulator) serves every QR test, and each
format is decoded back to the worker's payload with zxing-cpp (PNG and SVG rasterised here, the terminal
text drawn as it would show on its terminal).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import struct
import time
import xml.etree.ElementTree as ET
import zlib
from datetime import datetime

import pytest
import zxingcpp
from standardwebhooks import Webhook

from service.http.app import create_app
from service.http.appkeys import DATABASE
from service.http.views import health as health_view
from service.settings import Settings
from tests.stack import Stack, free_port
from tests.test_account_webhooks import KEY as HOOK_KEY
from tests.test_account_webhooks import SALES, SUPPORT, api, h, scoped_key  # noqa: F401 - fixtures
from tests.test_webhooks import SECRET
from tests.webhook_receiver import HANG, Receiver

ADMIN = {"X-API-Key": HOOK_KEY}


# --- decoding what the gateway draws -----------------------------------------------------------------

def decode(rows: list[list[bool]]) -> list[str]:
    """The QR texts zxing finds in a module matrix (True: dark), drawn 4 px per module, not trying inverted."""
    scale, height, width = 4, len(rows), len(rows[0])
    pixels = b"".join(bytes(0 if dark else 255 for dark in row for _ in range(scale)) * scale for row in rows)
    image = memoryview(pixels).cast("B", (height * scale, width * scale))
    return [found.text for found in zxingcpp.read_barcodes(image, try_invert=False)]


def png_rows(data: bytes) -> list[list[bool]]:
    """The pixels of a non-interlaced greyscale PNG (what segno writes), True where dark."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + chunk) == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    width, height, depth, color, _, _, interlace = header
    assert color == 0 and depth in (1, 8) and interlace == 0, header
    raw, stride = zlib.decompress(idat), (width * depth + 7) // 8
    prev, rows = bytearray(stride), []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a, b, c = (line[i - 1] if i else 0), prev[i], (prev[i - 1] if i else 0)
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)  # Paeth: distances from a + b - c
            paeth = a if pa <= pb and pa <= pc else b if pb <= pc else c
            predictor = [0, a, b, (a + b) // 2, paeth]
            line[i] = (line[i] + predictor[kind]) & 255
        prev = line
        rows.append([v < 128 for v in line[:width]] if depth == 8 else
                    [not (line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
    return rows


def svg_rows(svg: bytes) -> list[list[bool]]:
    """The modules of segno's SVG: one stroked path of horizontal runs (M/m moves, h draws), 8 px a module."""
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == ns + "svg"
    [line] = [p for p in root.iter(ns + "path") if p.get("stroke")]
    size = int(float(root.get("width")) / 8)
    rows = [[False] * size for _ in range(size)]
    x = y = 0.0
    for cmd, a, b in re.findall(r"([MmHh])\s*(-?[\d.]+)(?:[ ,](-?[\d.]+))?", line.get("d")):
        if cmd in "Mm":
            x, y = (float(a), float(b)) if cmd == "M" else (x + float(a), y + float(b))
        else:
            end = float(a) if cmd == "H" else x + float(a)
            for col in range(int(x), int(end)):
                rows[int(y)][col] = True
            x = end
    return rows


def terminal_rows(text: str, background: str) -> list[list[bool]]:
    """The text as a terminal with that background shows it: a character is two module rows, its upper and
    lower half in the text colour (light on a dark background, dark on a light one) or left blank."""
    halves = {"\u2588": (True, True), "\u2580": (True, False), "\u2584": (False, True), " ": (False, False)}
    ink_is_dark = background == "light"
    rows = []
    for line in text.splitlines():
        for half in (0, 1):
            rows.append([halves[ch][half] == ink_is_dark for ch in line])
    return rows


# --- GET /qr (one sandbox stack) ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def qr_stack():
    with Stack(sandbox=True) as stack:
        yield stack


@pytest.mark.system
def test_the_qr_in_every_format_then_409_once_linked(qr_stack):
    stack = qr_stack
    status = stack.post("/connect").json()
    if status["state"] != "qr":
        status = stack.wait_state("qr", 20)
    payload = stack.status()["qr"]

    raw = stack.get("/qr?format=raw")
    assert raw.status == 200 and raw.headers["Content-Type"].startswith("text/plain")
    assert raw.headers["Cache-Control"] == "no-store"
    assert raw.raw.decode() == payload

    png = stack.get("/qr")  # png is the default
    assert png.status == 200 and png.headers["Content-Type"] == "image/png", png.raw[:200]
    assert png.headers["Cache-Control"] == "no-store"
    assert decode(png_rows(png.raw)) == [payload]

    svg = stack.get("/accounts/default/qr?format=svg")
    assert svg.status == 200 and svg.headers["Content-Type"] == "image/svg+xml"
    assert decode(svg_rows(svg.raw)) == [payload]

    for background in ("dark", "light"):
        res = stack.get("/qr?format=terminal" + ("&background=light" if background == "light" else ""))
        assert res.status == 200 and res.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert res.headers["Cache-Control"] == "no-store"
        text = res.raw.decode("utf-8")
        assert set(text) <= set("\u2588\u2580\u2584 \n"), "plain text: half blocks and spaces, no escape codes"
        lines = text.split("\n")
        assert lines[-1] == "" and len({len(line) for line in lines[:-1]}) == 1  # a rectangle, newline-ended
        assert decode(terminal_rows(text, background)) == [payload], background  # reads dark on light there
        other = "light" if background == "dark" else "dark"
        assert decode(terminal_rows(text, other)) == [], "each drawing is meant for its own background"

    for query, code in (("format=jpeg", "invalid_format"), ("format=terminal&background=blue", "invalid_background")):
        res = stack.get("/qr?" + query)
        assert res.status == 400 and res.json()["error"]["code"] == code, res.raw
    assert stack.get("/accounts/nobody/qr").json()["error"]["code"] == "account_not_found"

    # Keys scoped to an account: their own account's QR only.
    assert stack.post("/accounts", {"name": "other"}).status == 201
    other = {"X-API-Key": stack.post("/accounts/other/keys", {}).json()["key"]}
    mine = {"X-API-Key": stack.post("/accounts/default/keys", {}).json()["key"]}
    for path in ("/qr", "/accounts/default/qr"):
        assert stack.get(path, headers=other).status == 403
        assert stack.get(path + "?format=raw", headers=mine).raw.decode() == payload
    assert stack.get("/accounts/other/qr", headers=mine).status == 403
    res = stack.get("/accounts/other/qr", headers=other)  # never connected: nothing to scan
    assert res.status == 409 and res.json()["error"]["code"] == "qr_unavailable", res.raw
    assert res.json()["error"]["state"] == "stopped"

    scanned = stack.emu("POST", "/phone/scan", {"phone_number": "+15550001111", "qr": payload})
    assert scanned.status == 200, scanned.raw
    stack.wait_state("connected", 30)
    res = stack.get("/qr?format=svg")
    assert res.status == 409, res.raw
    error = res.json()["error"]
    assert error["code"] == "qr_unavailable" and error["state"] == "connected" and error["message"]
    assert payload.split("#", 1)[1] not in stack.logs()  # the QR secret is never logged


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


# --- GET /health: the store takes writes ---------------------------------------------------------------

def app_settings(tmp_path) -> Settings:
    return Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_RUN_DIR": str(tmp_path / "run"),
                              "WA_API_KEY": HOOK_KEY})


async def test_health_says_whether_the_store_takes_writes(aiohttp_client, tmp_path, monkeypatch):
    monkeypatch.setattr(health_view, "STORE_TIMEOUT", 0.3)
    monkeypatch.setattr(health_view, "STORE_REUSE", 0.0)
    client = await aiohttp_client(create_app(app_settings(tmp_path)))
    db = client.app[DATABASE]

    def writes() -> int:
        row = db.call(lambda c: c.execute("SELECT writes FROM health_probe").fetchone())
        return row[0] if row else 0

    body = await (await client.get("/health", headers=ADMIN)).json()
    assert body["store"] == {"writable": True}
    assert not any("store" in r for r in body["reasons"])
    assert writes() == 1  # a real write, committed
    anonymous = await (await client.get("/health")).json()
    assert "store" not in anonymous and writes() == 2

    # Another process holds the write lock past the timeout: no commit, no waiting beyond it.
    blocker = sqlite3.connect(tmp_path / "data" / "gateway.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        body = await (await client.get("/health", headers=ADMIN)).json()
        assert time.monotonic() - started < 2.0
        assert body["status"] == "degraded"
        assert body["store"] == {"writable": False, "error": "no commit within 0.3 s"}
        assert "store is not writable: no commit within 0.3 s" in body["reasons"]
        anonymous = await (await client.get("/health")).json()
        assert anonymous["status"] == "degraded" and "store is not writable" in anonymous["reasons"]
        assert "store" not in anonymous
        assert (await client.get("/health/live")).status == 200
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    async def writable_again() -> dict:
        for _ in range(100):
            body = await (await client.get("/health", headers=ADMIN)).json()
            if body["store"]["writable"]:
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"the store stayed unwritable: {body['store']}")

    await writable_again()
    # A store that refuses writes outright: the reason is SQLite's, without a path.
    await db.run(lambda c: c.execute("PRAGMA query_only = ON"))
    try:
        body = await (await client.get("/health", headers=ADMIN)).json()
        assert body["store"] == {"writable": False, "error": "attempt to write a readonly database"}
        assert str(tmp_path) not in str(body)
    finally:  # not through db.run: its BEGIN IMMEDIATE is refused now; the writer thread is idle meanwhile
        db._conn.execute("PRAGMA query_only = OFF")
    await writable_again()
