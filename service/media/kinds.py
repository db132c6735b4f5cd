"""The media kinds /send accepts, the mimetypes WhatsApp takes for each, and their default size limits.

The mimetypes are WhatsApp's own (its Business Platform's "supported media types", which the apps and Baileys
follow): images JPEG and PNG; video MP4 and 3GPP (H.264/AAC); audio AAC, AMR, MP3, MP4 audio and OGG (Opus for a
voice note); stickers WebP; a document may be anything. A WebP or GIF is not sent as an image: send a WebP as a
sticker, anything else as a document.

The default limits (bytes; each a setting, docs/configuration.md): 16 MiB for images, video and audio (what the
apps send inline; the Cloud API says 5 MiB for images, but the apps and Baileys send up to 16), 100 MiB for a
document (WhatsApp allows 2 GB; 100 MiB keeps one request's disk and upload time sane: raise it if needed) and
1 MiB for a sticker (WhatsApp's are 100 KB static, 500 KB animated).
"""

from __future__ import annotations

from typing import Literal, TypeGuard, get_args

Kind = Literal["image", "video", "audio", "document", "sticker"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# The kinds that carry a caption at the contact (WhatsApp shows none under audio or a sticker).
CAPTIONED: frozenset[Kind] = frozenset({"image", "video", "document"})

MIB = 1024 * 1024
DEFAULT_LIMITS: dict[Kind, int] = {
    "image": 16 * MIB, "video": 16 * MIB, "audio": 16 * MIB, "document": 100 * MIB, "sticker": 1 * MIB,
}

# The types a kind's bytes may be (as ``filetype`` names them); None: any (a document).
ALLOWED: dict[Kind, frozenset[str] | None] = {
    "image": frozenset({"image/jpeg", "image/png"}),
    "video": frozenset({"video/mp4", "video/3gpp"}),
    "audio": frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
    "sticker": frozenset({"image/webp"}),
    "document": None,
}

# Other spellings of the same type a caller may declare (after parameters are dropped and case folded).
ALIASES = {
    "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "audio/mp3": "audio/mpeg", "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4", "audio/opus": "audio/ogg", "application/ogg": "audio/ogg", "video/3gp": "video/3gpp",
    "audio/x-aac": "audio/aac", "audio/aacp": "audio/aac",
}

# The mimetype a voice note is sent with (WhatsApp plays only this as a push-to-talk note).
PTT_MIMETYPE = "audio/ogg; codecs=opus"


def is_kind(value: object) -> TypeGuard[Kind]:
    return isinstance(value, str) and value in KINDS


def normalize_mimetype(declared: str) -> str:
    """``"Audio/OGG; codecs=opus"`` -> ``"audio/ogg"``: the type compared with the bytes' type."""
    base = declared.split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)
