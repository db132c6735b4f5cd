"""The pairing QR code drawn for people: PNG, SVG, or text for a terminal (``GET /qr``). No HTTP here.

The payload is the worker's ``qr`` string (WhatsApp's ``ref,noiseKey,identityKey,advSecret,...``): it
links a device to the account, so it is a secret while it is valid. It is never logged.

The terminal form is plain UTF-8 text, no escape codes: two module rows per line, drawn with the
half blocks ``▀ ▄ █`` and spaces. Plain text cannot colour its background, so the drawing depends on the
terminal's: on a dark background (the default) the *light* modules and the quiet zone are drawn (the
text colour is light) and the dark ones are left blank; ``background=light`` draws the dark modules
instead. Either way the code reads dark-on-light with its quiet zone, as scanners expect.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded at the first drawing: most gateways never draw a QR once linked (0.8 MB of RSS)
    import segno

FORMATS = {"png": "image/png", "svg": "image/svg+xml", "terminal": "text/plain", "raw": "text/plain"}
BACKGROUNDS = ("dark", "light")
SCALE = 8  # pixels per module in the PNG and the SVG (a WhatsApp QR is 45-57 modules with its border)
BORDER = 4  # the quiet zone, in modules, that the QR specification asks for
# (ink in the upper row, ink in the lower row) -> the character that draws it in the text colour.
_HALF_BLOCKS = {(True, True): "\u2588", (True, False): "\u2580", (False, True): "\u2584", (False, False): " "}


def _code(payload: str) -> segno.QRCode:
    import segno

    return segno.make_qr(payload, error="l", boost_error=True)  # always a full QR code, never a Micro QR


def terminal(code: segno.QRCode, background: str = "dark") -> str:
    """The code as lines of half blocks, each ending in a newline; see the module's docstring."""
    ink_is_dark = background == "light"
    rows = [[bool(m) == ink_is_dark for m in row] for row in code.matrix_iter(scale=1, border=BORDER)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))  # below the code: the terminal's own background
    return "".join(
        "".join(_HALF_BLOCKS[pair] for pair in zip(upper, lower, strict=True)) + "\n"
        for upper, lower in zip(rows[0::2], rows[1::2], strict=True)
    )


def render(payload: str, fmt: str, background: str = "dark") -> tuple[bytes, str]:
    """(body, content type) of ``payload`` in ``fmt`` (one of ``FORMATS``)."""
    if fmt == "raw":
        return payload.encode("utf-8"), "text/plain"
    code = _code(payload)
    if fmt == "terminal":
        return terminal(code, background).encode("utf-8"), "text/plain"
    out = io.BytesIO()
    if fmt == "png":
        code.save(out, kind="png", scale=SCALE, border=BORDER)
    elif fmt == "svg":
        # An opaque light background: a transparent one vanishes into a dark page and will not scan.
        code.save(out, kind="svg", scale=SCALE, border=BORDER, dark="#000", light="#fff")
    else:
        raise ValueError(f"unknown QR format {fmt!r}")
    return out.getvalue(), FORMATS[fmt]
