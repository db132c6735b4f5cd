"""Opaque page cursors and the ``limit`` query, shared by every listing endpoint.

A cursor is the ``seq`` of a page's last row with a prefix naming the listing, base64url'd: opaque to
clients (they pass ``next_cursor`` back), and a cursor of one listing is refused by another.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from service.errors import BadRequest


def encode(prefix: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{prefix}:{seq}".encode()).decode().rstrip("=")


def decode(prefix: str, cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, _, number = text.partition(":")
        if found != prefix or not number.isdigit():
            raise ValueError
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor must be a next_cursor from an earlier page.", code="invalid_cursor") from None


def limit(query: Mapping[str, str], maximum: int, default: int = 50) -> int:
    raw = query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be a whole number from 1 to {maximum}.", code="invalid_limit")
    return int(raw)
