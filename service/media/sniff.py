"""The type of media from its first bytes (``filetype``), checked against the kind and the declared mimetype.

The bytes decide: a declared mimetype that is not what the bytes are is 400 ``media_type_mismatch``; bytes of a
type WhatsApp does not take for the kind (a PDF as an image) are 400 ``media_type_not_allowed``. A document may
be anything, but a declared type ``filetype`` knows (a PDF, a ZIP) must then be found in the bytes. A voice note
(``ptt``) must be OGG whose first packet is an ``OpusHead`` (RFC 7845: the Ogg stream's identification header).
"""

from __future__ import annotations

import re

import filetype  # type: ignore[import-untyped]

from service.media.errors import MediaTypeMismatch, MediaTypeNotAllowed
from service.media.kinds import ALLOWED, PTT_MIMETYPE, Kind, normalize_mimetype

KNOWN = frozenset(t.mime for t in filetype.types)  # the types ``filetype`` can recognise
DOCUMENT_DEFAULT = "application/octet-stream"
_MIMETYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def detect(head: bytes) -> str | None:
    """The mimetype the bytes are, or None when ``filetype`` does not know them (plain text, CSV, ...)."""
    found = filetype.guess_mime(head) if head else None
    return str(found) if found else None


def is_opus(head: bytes) -> bool:
    """An Ogg stream whose first page carries the Opus identification header (``OpusHead``)."""
    if len(head) < 27 or not head.startswith(b"OggS"):
        return False
    segments = head[26]
    start = 27 + segments
    return head[start:start + 8] == b"OpusHead"


def check(head: bytes, kind: Kind, declared: str | None = None, *, ptt: bool = False) -> str:
    """The mimetype to send the media with; raises when the bytes, the kind and the declaration disagree."""
    found = detect(head)
    wanted = normalize_mimetype(declared) if declared else None
    if wanted is not None and not _MIMETYPE.fullmatch(wanted):
        raise MediaTypeMismatch("the declared mimetype is not a type/subtype")
    if wanted is not None and found is not None and wanted != found:
        raise MediaTypeMismatch(f"the media was declared {wanted} but is {found}")
    if ptt:
        if kind != "audio" or not is_opus(head):
            raise MediaTypeNotAllowed("a voice note (ptt) must be audio in OGG/Opus")
        return PTT_MIMETYPE
    allowed = ALLOWED[kind]
    if allowed is None:  # a document: the bytes' type, else the declared one if no magic could confirm it
        if found is None and wanted is not None and wanted in KNOWN:
            raise MediaTypeMismatch(f"the media was declared {wanted} but is not")
        return found or wanted or DOCUMENT_DEFAULT
    if found is None or found not in allowed:
        raise MediaTypeNotAllowed(f"{kind} media must be {' or '.join(sorted(allowed))}; "
                                  f"these bytes are {found or 'of an unknown type'}")
    if found == "audio/ogg" and is_opus(head):
        return PTT_MIMETYPE  # an OGG/Opus audio: WhatsApp wants the codec named
    return found
