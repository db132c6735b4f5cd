"""GET /qr, which the Python client, its CLI and `selftest` rely on: the QR code as an image or text. It needs a
worker in state `qr`: one sandbox stack (real Baileys against the emulator) serves every QR test, and each
format is decoded back to the worker's payload with zxing-cpp (PNG and SVG rasterised here, the terminal
text drawn as it would show on its terminal)."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
import zlib

import pytest
import zxingcpp

from tests.helpers.stack import Stack

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
