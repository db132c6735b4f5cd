"""Small real media samples for the media intake's tests: built from bytes here (PNG, JPEG, WebP, MP4, PDF,
OGG/Vorbis headers), or read from tests/fixtures/media/ (an OGG/Opus voice note: see its README)."""

from __future__ import annotations

import struct
import zlib

from tests.helpers.stack import REPO

FIXTURES = REPO / "tests" / "fixtures" / "media"


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def jpeg() -> bytes:
    """A JFIF header (SOI, APP0) and end of image: what the sniffing reads of a JPEG."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xd9"


def webp() -> bytes:
    """A RIFF/WEBP container with a lossless (VP8L) 1x1 image."""
    vp8l = b"\x2f\x00\x00\x00\x00\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


def mp4() -> bytes:
    """An ISO base media file: an ``ftyp`` box (isom, mp42) and an empty ``mdat``."""
    ftyp = b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41mp42"
    return struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp + struct.pack(">I", 8) + b"mdat"


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def opus() -> bytes:
    """A real OGG/Opus voice note (0.2 s)."""
    return (FIXTURES / "voice.opus").read_bytes()


def ogg_vorbis() -> bytes:
    """An Ogg page whose first packet is a Vorbis identification header: OGG, but not Opus."""
    data = opus()
    return data.replace(b"OpusHead", b"\x01vorbis\x00", 1)[:200]
